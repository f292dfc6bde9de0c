/* Public entry points name_SUF: each calls the instantiation name_SUF_ISA for
 * the instruction set chosen by mlp_set_isa. Included by mlpfast_kernels.c
 * once per dtype, after every instantiation. No include guard on purpose. */

#ifdef MLP_HAVE_AVX2
#define PICK(name) \
    (mlp_isa == MLP_ISA_AVX2 ? MLP_CAT(MLP_CAT(name, SUF), avx2) : MLP_CAT(MLP_CAT(name, SUF), baseline))
#else
#define PICK(name) MLP_CAT(MLP_CAT(name, SUF), baseline)
#endif
#define PUB(name) MLP_CAT(name, SUF)

int PUB(mlp_all_finite)(const REAL *x, ptrdiff_t n, int n_threads)
{
    return PICK(mlp_all_finite)(x, n, n_threads);
}

void PUB(mlp_gather_rows)(REAL *out, const REAL *X, const ptrdiff_t *idx, ptrdiff_t N,
                          ptrdiff_t D, int n_threads)
{
    PICK(mlp_gather_rows)(out, X, idx, N, D, n_threads);
}

void PUB(mlp_csr_matmul)(REAL *Z, const REAL *data, const ptrdiff_t *indices,
                         const ptrdiff_t *indptr, const ptrdiff_t *rows, ptrdiff_t row0,
                         ptrdiff_t N, const REAL *W, ptrdiff_t O, int n_threads)
{
    PICK(mlp_csr_matmul)(Z, data, indices, indptr, rows, row0, N, W, O, n_threads);
}

void PUB(mlp_csr_matmul_tn)(REAL *dW, const REAL *data, const ptrdiff_t *indices,
                            const ptrdiff_t *indptr, const ptrdiff_t *rows, ptrdiff_t row0,
                            ptrdiff_t N, const REAL *D, ptrdiff_t I, ptrdiff_t O,
                            int n_threads)
{
    PICK(mlp_csr_matmul_tn)(dW, data, indices, indptr, rows, row0, N, D, I, O, n_threads);
}

void PUB(mlp_bias_act_forward)(REAL *Z, const REAL *b, int act, ptrdiff_t N, ptrdiff_t O,
                               int n_threads)
{
    PICK(mlp_bias_act_forward)(Z, b, act, N, O, n_threads);
}

void PUB(mlp_act_backward)(REAL *dZ, REAL *db, const REAL *A, int act, ptrdiff_t N,
                           ptrdiff_t O, int n_threads)
{
    PICK(mlp_act_backward)(dZ, db, A, act, N, O, n_threads);
}

void PUB(mlp_output_forward)(REAL *Z, const REAL *b, int out, ptrdiff_t N, ptrdiff_t K,
                             int n_threads)
{
    PICK(mlp_output_forward)(Z, b, out, N, K, n_threads);
}

double PUB(mlp_output_loss_backward)(REAL *dZ, REAL *db, REAL *Z, double *row_loss,
                                     const REAL *b, const REAL *Y, const REAL *sw, int out,
                                     ptrdiff_t N, ptrdiff_t K, int n_threads)
{
    return PICK(mlp_output_loss_backward)(dZ, db, Z, row_loss, b, Y, sw, out, N, K,
                                          n_threads);
}

double PUB(mlp_sum_squares)(const REAL *x, ptrdiff_t n, double *partial, int n_threads)
{
    return PICK(mlp_sum_squares)(x, n, partial, n_threads);
}

void PUB(mlp_finish_grad)(REAL *grad, const REAL *params, ptrdiff_t n, ptrdiff_t n_coef,
                          double alpha, double sw_sum, int n_threads)
{
    PICK(mlp_finish_grad)(grad, params, n, n_coef, alpha, sw_sum, n_threads);
}

double PUB(mlp_sgd_step)(REAL *params, REAL *velocity, const REAL *grad, double *partial,
                         ptrdiff_t n, ptrdiff_t n_coef, double alpha, double sw_sum,
                         double lr, double momentum, int nesterov, int n_threads)
{
    return PICK(mlp_sgd_step)(params, velocity, grad, partial, n, n_coef, alpha, sw_sum, lr,
                              momentum, nesterov, n_threads);
}

double PUB(mlp_adam_step)(REAL *params, REAL *m, REAL *v, const REAL *grad, double *partial,
                          ptrdiff_t n, ptrdiff_t n_coef, double alpha, double sw_sum,
                          double lr, double beta1, double beta2, double eps, int n_threads)
{
    return PICK(mlp_adam_step)(params, m, v, grad, partial, n, n_coef, alpha, sw_sum, lr,
                               beta1, beta2, eps, n_threads);
}

void PUB(mlp_evict_for_step)(const REAL *params, ptrdiff_t n, int n_threads)
{
    PICK(mlp_evict_for_step)(params, n, n_threads);
}

#undef PICK
#undef PUB
