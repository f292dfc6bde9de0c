# Declarations of csrc/mlpfast_kernels.h for Cython (see that header for the contracts).

from libc.stdint cimport uint64_t


cdef extern from "mlpfast_kernels.h" nogil:
    enum:
        MLP_ACT_IDENTITY
        MLP_ACT_LOGISTIC
        MLP_ACT_TANH
        MLP_ACT_RELU
        MLP_ACT_LEAKY_RELU
        MLP_ACT_ELU
        MLP_ACT_SELU
        MLP_ACT_SOFTPLUS
        MLP_ACT_GELU
        MLP_ACT_PRELU
        MLP_ACT_SINE
        MLP_ACT_MAXOUT
        MLP_N_ACTIVATIONS
        MLP_OUT_IDENTITY_SQUARED
        MLP_OUT_LOGISTIC_BINARY
        MLP_OUT_SOFTMAX_MULTI
        MLP_OUT_EXP_POISSON
        MLP_OUT_IDENTITY_HUBER
        MLP_OUT_IDENTITY_ABSOLUTE
        MLP_OUT_HINGE
        MLP_OUT_SQUARED_HINGE
        MLP_OUT_MULTI_HINGE
        MLP_OUT_MULTI_SQUARED_HINGE
        MLP_N_OUTPUTS
        MLP_SOLVER_SGD
        MLP_SOLVER_ADAM
        MLP_REDUCE_CHUNK
        MLP_TEAM
        MLP_ISA_BASELINE
        MLP_ISA_AVX2
        MLP_ISA_AVX512

    double MLP_LEAKY_SLOPE
    double MLP_ELU_ALPHA
    double MLP_SINE_OMEGA
    int MLP_MAXOUT_PIECES
    double MLP_PRELU_SLOPE
    double MLP_SELU_ALPHA
    double MLP_SELU_SCALE

    uint64_t mlp_key(uint64_t key, uint64_t place)

    struct mlp_act:
        int code
        int pieces
        double param

    struct mlp_optimizer:
        int solver
        double learning_rate
        double momentum
        int nesterov
        double beta1
        double beta2
        double epsilon
        long t
        void *state1
        void *state2

    int mlp_isa_supported(int isa)
    int mlp_set_isa(int isa)
    int mlp_get_isa()
    int mlp_calls_change(int delta)
    int mlp_calls_active()
    int mlp_watch_fork()
    int mlp_in_forked_child()
    int mlp_team(int n_threads)
    int mlp_openmp_enabled()
    int mlp_max_threads()
    double mlp_monotonic_seconds()
    void mlp_omp_barrier()
    int mlp_claim(int *counter)
    void mlp_publish(int *flag)
    void mlp_await(const int *flag)

    int mlp_act_keeps_z(int act)
    int mlp_normal_tail_table(const double **num, const double **den, double *amax)
    int mlp_all_finite_f32(const float *x, Py_ssize_t n, int n_threads)
    void mlp_gather_rows_f32(float *out, const float *X, const Py_ssize_t *idx, Py_ssize_t N,
                             Py_ssize_t D)
    void mlp_csr_matmul_f32(float *Z, const float *data, const Py_ssize_t *indices,
                            const Py_ssize_t *indptr, const Py_ssize_t *rows, Py_ssize_t row0,
                            Py_ssize_t N, const float *W, Py_ssize_t O)
    void mlp_csr_matmul_tn_f32(float *dW, const float *data, const Py_ssize_t *indices,
                               const Py_ssize_t *indptr, const Py_ssize_t *rows,
                               Py_ssize_t row0, Py_ssize_t N, const float *D, Py_ssize_t O,
                               Py_ssize_t i0, Py_ssize_t i1)
    void mlp_act_forward_f32(float *A, float *Z, const float *b, const float *slope,
                             const mlp_act *act, Py_ssize_t N, Py_ssize_t O)
    void mlp_act_backward_f32(float *dZ, float *dS, const float *dA, const float *Z, const float *A,
                              const float *slope, const mlp_act *act, Py_ssize_t N,
                              Py_ssize_t O)
    void mlp_perturb_forward_f32(float *H, const float *A, const Py_ssize_t *rows,
                                  Py_ssize_t row0, uint64_t key, double p, double sigma,
                                  Py_ssize_t N, Py_ssize_t O)
    void mlp_perturb_backward_f32(float *dA, const Py_ssize_t *rows, Py_ssize_t row0,
                                   uint64_t key, double p, Py_ssize_t N, Py_ssize_t O)
    void mlp_add_noise_f32(float *out, const float *x, Py_ssize_t n, uint64_t key, double sigma,
                            int n_threads)
    void mlp_column_sums_f32(float *s, const float *X, Py_ssize_t N, Py_ssize_t O)
    void mlp_output_forward_f32(float *Z, const float *b, int out, Py_ssize_t N, Py_ssize_t K)
    void mlp_output_loss_backward_f32(float *dZ, float *Z, double *row_loss, const float *b,
                                      const float *Y, const float *sw, int out, double param,
                                      Py_ssize_t N, Py_ssize_t K)
    double mlp_sum_squares_f32(const float *x, Py_ssize_t n, double *partial, int n_threads)
    double mlp_finish_grad_f32(float *grad, const float *slots, Py_ssize_t n_slots,
                               const float *params, double *partial, Py_ssize_t n,
                               Py_ssize_t n_coef, double alpha, double sw_sum, int n_threads)
    double mlp_step_f32(float *params, float *grad, const float *slots, Py_ssize_t n_slots,
                        double *partial, Py_ssize_t n, Py_ssize_t n_coef, double alpha,
                        double sw_sum, mlp_optimizer *opt, int n_threads)

    int mlp_all_finite_f64(const double *x, Py_ssize_t n, int n_threads)
    void mlp_gather_rows_f64(double *out, const double *X, const Py_ssize_t *idx, Py_ssize_t N,
                             Py_ssize_t D)
    void mlp_csr_matmul_f64(double *Z, const double *data, const Py_ssize_t *indices,
                            const Py_ssize_t *indptr, const Py_ssize_t *rows, Py_ssize_t row0,
                            Py_ssize_t N, const double *W, Py_ssize_t O)
    void mlp_csr_matmul_tn_f64(double *dW, const double *data, const Py_ssize_t *indices,
                               const Py_ssize_t *indptr, const Py_ssize_t *rows,
                               Py_ssize_t row0, Py_ssize_t N, const double *D, Py_ssize_t O,
                               Py_ssize_t i0, Py_ssize_t i1)
    void mlp_act_forward_f64(double *A, double *Z, const double *b, const double *slope,
                             const mlp_act *act, Py_ssize_t N, Py_ssize_t O)
    void mlp_act_backward_f64(double *dZ, double *dS, const double *dA, const double *Z, const double *A,
                              const double *slope, const mlp_act *act, Py_ssize_t N,
                              Py_ssize_t O)
    void mlp_perturb_forward_f64(double *H, const double *A, const Py_ssize_t *rows,
                                  Py_ssize_t row0, uint64_t key, double p, double sigma,
                                  Py_ssize_t N, Py_ssize_t O)
    void mlp_perturb_backward_f64(double *dA, const Py_ssize_t *rows, Py_ssize_t row0,
                                   uint64_t key, double p, Py_ssize_t N, Py_ssize_t O)
    void mlp_add_noise_f64(double *out, const double *x, Py_ssize_t n, uint64_t key, double sigma,
                            int n_threads)
    void mlp_column_sums_f64(double *s, const double *X, Py_ssize_t N, Py_ssize_t O)
    void mlp_output_forward_f64(double *Z, const double *b, int out, Py_ssize_t N, Py_ssize_t K)
    void mlp_output_loss_backward_f64(double *dZ, double *Z, double *row_loss, const double *b,
                                      const double *Y, const double *sw, int out, double param,
                                      Py_ssize_t N, Py_ssize_t K)
    double mlp_sum_squares_f64(const double *x, Py_ssize_t n, double *partial, int n_threads)
    double mlp_finish_grad_f64(double *grad, const double *slots, Py_ssize_t n_slots,
                               const double *params, double *partial, Py_ssize_t n,
                               Py_ssize_t n_coef, double alpha, double sw_sum, int n_threads)
    double mlp_step_f64(double *params, double *grad, const double *slots, Py_ssize_t n_slots,
                        double *partial, Py_ssize_t n, Py_ssize_t n_coef, double alpha,
                        double sw_sum, mlp_optimizer *opt, int n_threads)
