/* Instantiates mlpfast_kernels_impl.h for float and double, once for the
 * compiler's baseline target and, with GCC or clang on x86-64, twice more, for
 * AVX2 + FMA and for AVX-512 (twice the vector width again); the public entry
 * points call whichever mlp_set_isa chose. Every instantiation gives
 * bit-identical results: the build turns off floating-point contraction
 * (-ffp-contract=off), so FMA is never fused into a * b + c, every operation
 * used is correctly rounded on every instruction set, and every reduction's
 * order is written out in the source (MLP_LANES running sums). */
#define _POSIX_C_SOURCE 200112L
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "mlpfast_kernels.h"

#if defined(__unix__) || defined(__APPLE__)
#include <sched.h>
#define MLP_YIELD() sched_yield()
#else
#define MLP_YIELD() ((void)0)
#endif

#ifdef _OPENMP
#include <omp.h>
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define MLP_HAVE_ATFORK 1
#endif
#endif

/* Below this many elements a whole-buffer kernel runs on one thread: forking
 * costs more. */
#define MLP_OMP_MIN_WORK 65536
/* Rows per block of the output activation (a block's outputs stay in cache). */
#define MLP_OUT_BLOCK 64
/* Running sums in the vectorised reductions (a multiple of every vector width). */
#define MLP_LANES 16
/* Elements per chunk of the threaded finiteness check (256 KiB of float32). */
#define MLP_FINITE_CHUNK 65536

#define MLP_CAT_(a, b) a##_##b
#define MLP_CAT(a, b) MLP_CAT_(a, b)

/* x86 with GCC or clang: the AVX2 and AVX-512 instantiations are built too */
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define MLP_HAVE_AVX 1
#endif

/* How far ahead (bytes of rows) mlp_gather_rows prefetches. */
#define MLP_GATHER_AHEAD 2048

/* Asks for the cache lines of p[0:bytes) ahead of their use (a hint). */
static inline void mlp_prefetch(const void *p, ptrdiff_t bytes)
{
#if defined(__GNUC__) || defined(__clang__)
    const char *c = (const char *)p, *end = c + bytes;
    for (; c < end; c += 64)
        __builtin_prefetch(c, 0, 3);
#else
    (void)p;
    (void)bytes;
#endif
}

/* The instruction set the public entry points dispatch to. */
static int mlp_isa = MLP_ISA_BASELINE;

int mlp_isa_supported(int isa)
{
    if (isa == MLP_ISA_BASELINE)
        return 1;
#ifdef MLP_HAVE_AVX
    if (isa == MLP_ISA_AVX2 || isa == MLP_ISA_AVX512) {
        __builtin_cpu_init();
        if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
            return 0;
        return isa == MLP_ISA_AVX2
               || (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
                   && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"));
    }
#endif
    return 0;
}

int mlp_set_isa(int isa)
{
    if (!mlp_isa_supported(isa))
        return -1;
    mlp_isa = isa;
    return 0;
}

int mlp_get_isa(void)
{
    return mlp_isa;
}

/* for (i = 0; i < count; i++) BODY (a braced block, which declares its own
 * variables), shared out over the n_threads OpenMP threads when `parallel` holds,
 * else run by the calling thread without entering any OpenMP region: even a
 * one-thread region costs about half a microsecond, a few percent of a small
 * batch. With n_threads MLP_TEAM every thread of the enclosing region makes
 * the call and they share the loop out (no region of its own: a barrier at
 * its end). The pragma names the caller's variable `n_threads`. */
#define MLP_FOR(i, count, parallel, n_threads_, ...)                              \
    do {                                                                         \
        if ((n_threads_) == MLP_TEAM) {                                          \
            _Pragma("omp for schedule(static)")                                  \
            for (i = 0; i < (count); i++)                                        \
                __VA_ARGS__                                                      \
        } else if ((parallel) && (n_threads_) > 1) {                             \
            _Pragma("omp parallel for schedule(static) num_threads(mlp_team(n_threads))") \
            for (i = 0; i < (count); i++)                                        \
                __VA_ARGS__                                                      \
        } else {                                                                 \
            for (i = 0; i < (count); i++)                                        \
                __VA_ARGS__                                                      \
        }                                                                        \
    } while (0)

/* The calling thread's number in the team of a MLP_TEAM call, else 0. */
static inline int mlp_team_thread(int n_threads)
{
#ifdef _OPENMP
    return n_threads == MLP_TEAM ? omp_get_thread_num() : 0;
#else
    (void)n_threads;
    return 0;
#endif
}

/* Counter-based random numbers: every draw is a fixed function of a key and
 * of its place (data row, unit, index), so no result depends on which thread
 * draws it or in what order. mlp_mix64 is splitmix64's finaliser (a bijection
 * of 64 bits with full avalanche); mlp_hash32, Wellons' lowbias32, is a
 * cheaper one of 32 bits that vectorises across a row's units. */
static inline uint64_t mlp_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

static inline uint32_t mlp_hash32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    return x ^ (x >> 16);
}

#define MLP_GOLDEN64 0x9e3779b97f4a7c15u
#define MLP_GOLDEN32 0x9e3779b9u

uint64_t mlp_key(uint64_t key, uint64_t place)
{
    return mlp_mix64(key ^ mlp_mix64(place + MLP_GOLDEN64));
}

/* A standard normal number from 64 random bits (Box and Muller: two
 * uniforms, the first in (0, 1), the second in [0, 1)). */
static inline double mlp_gaussian(uint64_t bits)
{
    const double u1 = ((double)(bits & 0xffffffffu) + 0.5) * 0x1p-32;
    const double u2 = (double)(bits >> 32) * 0x1p-32;
    return sqrt(-2 * log(u1)) * cos(6.283185307179586476925286766559 * u2);
}

/* The dropout threshold of rate p in [0, 1): a unit is kept when its 32 random
 * bits are at least this, which happens with probability 1 - p (to 2^-32). */
static inline uint32_t mlp_drop_threshold(double p)
{
    return p > 0 ? (uint32_t)(p * 4294967296.0) : 0;
}

/* Whether dropout keeps unit o of the row whose key's low bits are lo: the
 * one mask the forward and backward kernels both draw. */
static inline int mlp_kept(uint32_t lo, ptrdiff_t o, uint32_t threshold)
{
    return mlp_hash32(lo + (uint32_t)o * MLP_GOLDEN32) >= threshold;
}

int mlp_act_keeps_z(int act)
{
    /* the others' derivatives are written with the activation's output */
    return act == MLP_ACT_SOFTPLUS || act == MLP_ACT_GELU || act == MLP_ACT_PRELU
           || act == MLP_ACT_SINE || act == MLP_ACT_MAXOUT;
}

static int mlp_calls = 0;

int mlp_calls_change(int delta)
{
#if defined(__GNUC__) || defined(__clang__)
    return __atomic_add_fetch(&mlp_calls, delta, __ATOMIC_RELAXED);
#else
    int now;
#pragma omp atomic capture
    now = mlp_calls += delta;
    return now;
#endif
}

int mlp_calls_active(void)
{
#if defined(__GNUC__) || defined(__clang__)
    return __atomic_load_n(&mlp_calls, __ATOMIC_RELAXED);
#else
    int now;
#pragma omp atomic read
    now = mlp_calls;
    return now;
#endif
}

/* A child created by fork() has only the thread that forked. Once a process
 * has run a team of more than one thread, GNU OpenMP keeps a record of its
 * pool, and in a child a new team would wait for the missing threads forever;
 * so the child of such a process runs every kernel on one thread, which
 * computes the very same results. The child of a process that never ran a
 * team (a forkserver, a master that only imported mlpfast) keeps its threads. */
static volatile int mlp_teamed = 0;
static volatile int mlp_forked = 0;

int mlp_team(int n_threads)
{
    if (n_threads > 1 && !mlp_teamed)
        mlp_teamed = 1;
    return n_threads;
}

#ifdef MLP_HAVE_ATFORK
static void mlp_after_fork_in_child(void)
{
    if (mlp_teamed)
        mlp_forked = 1;
    mlp_calls = 0; /* the calls under way belong to threads the child lacks */
}
#endif

int mlp_watch_fork(void)
{
#ifdef MLP_HAVE_ATFORK
    static int registered = 0;
    if (!registered && pthread_atfork(NULL, NULL, mlp_after_fork_in_child) != 0)
        return -1;
    registered = 1;
#endif
    return 0;
}

int mlp_in_forked_child(void)
{
    return mlp_forked;
}

int mlp_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int mlp_max_threads(void)
{
#ifdef _OPENMP
    return mlp_forked ? 1 : omp_get_max_threads();
#else
    return 1;
#endif
}

int mlp_claim(int *counter)
{
#if defined(__GNUC__) || defined(__clang__)
    return __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
#else
    int claimed;
#pragma omp atomic capture
    claimed = (*counter)++;
    return claimed;
#endif
}

void mlp_publish(int *flag)
{
#if defined(__GNUC__) || defined(__clang__)
    __atomic_store_n(flag, 1, __ATOMIC_RELEASE);
#else
#pragma omp flush
#pragma omp atomic write
    *flag = 1;
#endif
}

/* Spins a while, then yields the CPU at every look: the thread that is to
 * publish may be waiting for this very CPU. */
#define MLP_AWAIT_SPINS 4096

void mlp_await(const int *flag)
{
    int spins = 0, set;
    for (;;) {
#if defined(__GNUC__) || defined(__clang__)
        set = __atomic_load_n(flag, __ATOMIC_ACQUIRE);
#else
#pragma omp atomic read
        set = *flag;
#pragma omp flush
#endif
        if (set)
            return;
        if (++spins > MLP_AWAIT_SPINS)
            MLP_YIELD();
    }
}

void mlp_omp_barrier(void)
{
#ifdef _OPENMP
#pragma omp barrier
#endif
}

double mlp_monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define ISA baseline
#include "mlpfast_kernels_dtypes.h"
#undef ISA

#ifdef MLP_HAVE_AVX
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
#define ISA avx2
#include "mlpfast_kernels_dtypes.h"
#undef ISA
#if defined(__clang__)
#pragma clang attribute pop
#pragma clang attribute push(__attribute__((target("avx2,fma,avx512f,avx512dq,avx512bw,avx512vl"))), apply_to = function)
#else
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma,avx512f,avx512dq,avx512bw,avx512vl")
#endif
#define ISA avx512
#include "mlpfast_kernels_dtypes.h"
#undef ISA
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

#define REAL float
#define SUF f32
#include "mlpfast_dispatch_impl.h"
#undef REAL
#undef SUF

#define REAL double
#define SUF f64
#include "mlpfast_dispatch_impl.h"
#undef REAL
#undef SUF

int mlp_normal_tail_table(const double **num, const double **den, double *amax)
{
    *num = mlp_ncdf_num_f64;
    *den = mlp_ncdf_den_f64;
    *amax = MLP_NCDF_AMAX_f64;
    return MLP_NCDF_DEGREE_f64;
}
