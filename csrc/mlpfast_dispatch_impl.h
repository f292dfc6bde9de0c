/* Public entry points name_SUF: each calls the instantiation name_SUF_ISA for
 * the instruction set chosen by mlp_set_isa. Included by mlpfast_kernels.c
 * once per dtype, after every instantiation. No include guard on purpose. */

#ifdef MLP_HAVE_AVX
#define PICK(name)                                                                   \
    (mlp_isa == MLP_ISA_AVX512 ? MLP_CAT(MLP_CAT(name, SUF), avx512)                 \
     : mlp_isa == MLP_ISA_AVX2 ? MLP_CAT(MLP_CAT(name, SUF), avx2)                   \
                               : MLP_CAT(MLP_CAT(name, SUF), baseline))
#else
#define PICK(name) MLP_CAT(MLP_CAT(name, SUF), baseline)
#endif
#define PUB(name) MLP_CAT(name, SUF)

int PUB(mlp_all_finite)(const REAL *x, ptrdiff_t n, int n_threads)
{
    return PICK(mlp_all_finite)(x, n, n_threads);
}

void PUB(mlp_gather_rows)(REAL *out, const REAL *X, const ptrdiff_t *idx, ptrdiff_t N,
                          ptrdiff_t D)
{
    PICK(mlp_gather_rows)(out, X, idx, N, D);
}

void PUB(mlp_csr_matmul)(REAL *Z, const REAL *data, const ptrdiff_t *indices,
                         const ptrdiff_t *indptr, const ptrdiff_t *rows, ptrdiff_t row0,
                         ptrdiff_t N, const REAL *W, ptrdiff_t O)
{
    PICK(mlp_csr_matmul)(Z, data, indices, indptr, rows, row0, N, W, O);
}

void PUB(mlp_csr_matmul_tn)(REAL *dW, const REAL *data, const ptrdiff_t *indices,
                            const ptrdiff_t *indptr, const ptrdiff_t *rows, ptrdiff_t row0,
                            ptrdiff_t N, const REAL *D, ptrdiff_t O, ptrdiff_t i0,
                            ptrdiff_t i1)
{
    PICK(mlp_csr_matmul_tn)(dW, data, indices, indptr, rows, row0, N, D, O, i0, i1);
}

void PUB(mlp_act_forward)(REAL *A, REAL *Z, const REAL *b, const REAL *slope,
                          const struct mlp_act *act, ptrdiff_t N, ptrdiff_t O)
{
    PICK(mlp_act_forward)(A, Z, b, slope, act, N, O);
}

void PUB(mlp_act_backward)(REAL *dZ, REAL *dS, const REAL *dA, const REAL *Z, const REAL *A,
                           const REAL *slope, const struct mlp_act *act, ptrdiff_t N,
                           ptrdiff_t O)
{
    PICK(mlp_act_backward)(dZ, dS, dA, Z, A, slope, act, N, O);
}

void PUB(mlp_perturb_forward)(REAL *H, const REAL *A, const ptrdiff_t *rows, ptrdiff_t row0,
                              uint64_t key, double p, double sigma, ptrdiff_t N, ptrdiff_t O)
{
    PICK(mlp_perturb_forward)(H, A, rows, row0, key, p, sigma, N, O);
}

void PUB(mlp_perturb_backward)(REAL *dA, const ptrdiff_t *rows, ptrdiff_t row0, uint64_t key,
                               double p, ptrdiff_t N, ptrdiff_t O)
{
    PICK(mlp_perturb_backward)(dA, rows, row0, key, p, N, O);
}

void PUB(mlp_add_noise)(REAL *out, const REAL *x, ptrdiff_t n, uint64_t key, double sigma,
                        int n_threads)
{
    PICK(mlp_add_noise)(out, x, n, key, sigma, n_threads);
}

void PUB(mlp_column_sums)(REAL *s, const REAL *X, ptrdiff_t N, ptrdiff_t O)
{
    PICK(mlp_column_sums)(s, X, N, O);
}

void PUB(mlp_output_forward)(REAL *Z, const REAL *b, int out, ptrdiff_t N, ptrdiff_t K)
{
    PICK(mlp_output_forward)(Z, b, out, N, K);
}

void PUB(mlp_output_loss_backward)(REAL *dZ, REAL *Z, double *row_loss, const REAL *b,
                                   const REAL *Y, const REAL *sw, int out, double param,
                                   ptrdiff_t N, ptrdiff_t K)
{
    PICK(mlp_output_loss_backward)(dZ, Z, row_loss, b, Y, sw, out, param, N, K);
}

double PUB(mlp_sum_squares)(const REAL *x, ptrdiff_t n, double *partial, int n_threads)
{
    return PICK(mlp_sum_squares)(x, n, partial, n_threads);
}

double PUB(mlp_finish_grad)(REAL *grad, const REAL *slots, ptrdiff_t n_slots,
                            const REAL *params, double *partial, ptrdiff_t n, ptrdiff_t n_coef,
                            double alpha, double sw_sum, int n_threads)
{
    return PICK(mlp_finish_grad)(grad, slots, n_slots, params, partial, n, n_coef, alpha, sw_sum,
                                 n_threads);
}

double PUB(mlp_step)(REAL *params, REAL *grad, const REAL *slots, ptrdiff_t n_slots,
                     double *partial, ptrdiff_t n, ptrdiff_t n_coef, double alpha,
                     double sw_sum, struct mlp_optimizer *opt, int n_threads)
{
    return PICK(mlp_step)(params, grad, slots, n_slots, partial, n, n_coef, alpha, sw_sum, opt,
                          n_threads);
}

#undef PICK
#undef PUB
