# Declarations of csrc/mlpfast_kernels.h for Cython (see that header for the contracts).

cdef extern from "mlpfast_kernels.h" nogil:
    enum:
        MLP_ACT_IDENTITY
        MLP_ACT_LOGISTIC
        MLP_ACT_TANH
        MLP_ACT_RELU
        MLP_OUT_IDENTITY_SQUARED
        MLP_OUT_LOGISTIC_BINARY
        MLP_OUT_SOFTMAX_MULTI
        MLP_OUT_EXP_POISSON
        MLP_REDUCE_CHUNK
        MLP_ISA_BASELINE
        MLP_ISA_AVX2

    int mlp_isa_supported(int isa)
    int mlp_set_isa(int isa)
    int mlp_get_isa()
    int mlp_openmp_enabled()
    int mlp_max_threads()
    double mlp_monotonic_seconds()
    void mlp_omp_barrier()

    int mlp_all_finite_f32(const float *x, Py_ssize_t n, int n_threads)
    int mlp_all_finite_f64(const double *x, Py_ssize_t n, int n_threads)
    void mlp_gather_rows_f32(float *out, const float *X, const Py_ssize_t *idx,
                             Py_ssize_t N, Py_ssize_t D, int n_threads)
    void mlp_gather_rows_f64(double *out, const double *X, const Py_ssize_t *idx,
                             Py_ssize_t N, Py_ssize_t D, int n_threads)
    void mlp_csr_matmul_f32(float *Z, const float *data, const Py_ssize_t *indices,
                            const Py_ssize_t *indptr, const Py_ssize_t *rows,
                            Py_ssize_t row0, Py_ssize_t N, const float *W, Py_ssize_t O,
                            int n_threads)
    void mlp_csr_matmul_f64(double *Z, const double *data, const Py_ssize_t *indices,
                            const Py_ssize_t *indptr, const Py_ssize_t *rows,
                            Py_ssize_t row0, Py_ssize_t N, const double *W, Py_ssize_t O,
                            int n_threads)
    void mlp_csr_matmul_tn_f32(float *dW, const float *data, const Py_ssize_t *indices,
                               const Py_ssize_t *indptr, const Py_ssize_t *rows,
                               Py_ssize_t row0, Py_ssize_t N, const float *D, Py_ssize_t I,
                               Py_ssize_t O, int n_threads)
    void mlp_csr_matmul_tn_f64(double *dW, const double *data, const Py_ssize_t *indices,
                               const Py_ssize_t *indptr, const Py_ssize_t *rows,
                               Py_ssize_t row0, Py_ssize_t N, const double *D, Py_ssize_t I,
                               Py_ssize_t O, int n_threads)
    void mlp_bias_act_forward_f32(float *Z, const float *b, int act, Py_ssize_t N,
                                  Py_ssize_t O, int n_threads)
    void mlp_bias_act_forward_f64(double *Z, const double *b, int act, Py_ssize_t N,
                                  Py_ssize_t O, int n_threads)
    void mlp_act_backward_f32(float *dZ, float *db, const float *A, int act,
                              Py_ssize_t N, Py_ssize_t O, int n_threads)
    void mlp_act_backward_f64(double *dZ, double *db, const double *A, int act,
                              Py_ssize_t N, Py_ssize_t O, int n_threads)
    void mlp_output_forward_f32(float *Z, const float *b, int out, Py_ssize_t N,
                                Py_ssize_t K, int n_threads)
    void mlp_output_forward_f64(double *Z, const double *b, int out, Py_ssize_t N,
                                Py_ssize_t K, int n_threads)
    double mlp_output_loss_backward_f32(float *dZ, float *db, float *Z, double *row_loss,
                                        const float *b, const float *Y, const float *sw,
                                        int out, Py_ssize_t N, Py_ssize_t K, int n_threads)
    double mlp_output_loss_backward_f64(double *dZ, double *db, double *Z, double *row_loss,
                                        const double *b, const double *Y, const double *sw,
                                        int out, Py_ssize_t N, Py_ssize_t K, int n_threads)
    double mlp_sum_squares_f32(const float *x, Py_ssize_t n, double *partial, int n_threads)
    double mlp_sum_squares_f64(const double *x, Py_ssize_t n, double *partial, int n_threads)
    void mlp_finish_grad_f32(float *grad, const float *params, Py_ssize_t n,
                             Py_ssize_t n_coef, double alpha, double sw_sum, int n_threads)
    void mlp_finish_grad_f64(double *grad, const double *params, Py_ssize_t n,
                             Py_ssize_t n_coef, double alpha, double sw_sum, int n_threads)
    void mlp_evict_for_step_f32(const float *params, Py_ssize_t n, int n_threads)
    void mlp_evict_for_step_f64(const double *params, Py_ssize_t n, int n_threads)
    double mlp_sgd_step_f32(float *params, float *velocity, const float *grad,
                            double *partial, Py_ssize_t n, Py_ssize_t n_coef,
                            double alpha, double sw_sum, double lr, double momentum,
                            int nesterov, int n_threads)
    double mlp_sgd_step_f64(double *params, double *velocity, const double *grad,
                            double *partial, Py_ssize_t n, Py_ssize_t n_coef,
                            double alpha, double sw_sum, double lr, double momentum,
                            int nesterov, int n_threads)
    double mlp_adam_step_f32(float *params, float *m, float *v, const float *grad,
                             double *partial, Py_ssize_t n, Py_ssize_t n_coef,
                             double alpha, double sw_sum, double lr, double beta1,
                             double beta2, double eps, int n_threads)
    double mlp_adam_step_f64(double *params, double *m, double *v, const double *grad,
                             double *partial, Py_ssize_t n, Py_ssize_t n_coef,
                             double alpha, double sw_sum, double lr, double beta1,
                             double beta2, double eps, int n_threads)


# csrc/mlpfast_wake.h: the waker threads that keep idle CPUs awake for a team.
cdef extern from "mlpfast_wake.h" nogil:
    int mlp_wake_hold(int n_threads, double seconds)
    void mlp_wake_release()
    int mlp_wake_set_enabled(int enabled)
    void mlp_wake_stats(int *helpers, long *taken, long *holds, long *spins,
                        double *spin_seconds)
