/* Waker threads: see mlpfast_wake.h for what they are for. */
#define _POSIX_C_SOURCE 200809L
#include "mlpfast_wake.h"

#if (defined(__unix__) || defined(__APPLE__)) && (defined(__GNUC__) || defined(__clang__))
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define MLP_WAKE_MAX_HELPERS 255
/* A sched_yield() that returns after this long (ns) gave the CPU to another
 * thread: the waker has done its job for this hold. */
#define MLP_WAKE_RAN_NS 20000
/* What `top -H` and /proc/<pid>/task/<tid>/comm show for a waker (Linux). */
#define MLP_WAKE_NAME "mlpfast-waker"
#define MLP_WAKE_STACK (256 * 1024)
/* The longest hold (s): a hold is meant to bridge milliseconds. */
#define MLP_WAKE_MAX_SECONDS 60.0

/* Under mlp_wake_lock: */
static pthread_mutex_t mlp_wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t mlp_wake_cond = PTHREAD_COND_INITIALIZER;
static int mlp_wake_helpers = 0;       /* waker threads started in this process */
static int mlp_wake_failed = 0;        /* starting one failed: no more tries */
static unsigned long mlp_wake_gen = 0; /* holds taken so far */
static int mlp_wake_atfork = 0;        /* the fork handler is registered */
/* Atomic: */
static long mlp_wake_holds = 0;    /* holds not yet released */
static long mlp_wake_spins = 0;    /* spins started */
static int64_t mlp_wake_spin_ns = 0; /* their time, ended ones */
static int64_t mlp_wake_until = 0; /* the outstanding holds' last end (ns) */
static int mlp_wake_team = 0;      /* wakers the latest hold asked for */
static int mlp_wake_enabled = 1;

static int64_t mlp_wake_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Whether waker `index` (0, 1, ...) is wanted now. */
static int mlp_wake_spinning(int index)
{
    return __atomic_load_n(&mlp_wake_holds, __ATOMIC_ACQUIRE) > 0
           && index < __atomic_load_n(&mlp_wake_team, __ATOMIC_RELAXED)
           && mlp_wake_now() < __atomic_load_n(&mlp_wake_until, __ATOMIC_RELAXED);
}

/* Waker `index`: asleep until a hold wants it, then yielding its CPU to
 * whatever else wants it until the holds are released, their time is up or
 * another thread has run on that CPU. */
static void *mlp_waker(void *arg)
{
    int index = (int)(intptr_t)arg;
    unsigned long seen = 0; /* a new waker serves the hold that started it */
#ifdef __linux__
    prctl(PR_SET_NAME, MLP_WAKE_NAME, 0, 0, 0);
#endif
    pthread_mutex_lock(&mlp_wake_lock);
    for (;;) {
        while (mlp_wake_gen == seen)
            pthread_cond_wait(&mlp_wake_cond, &mlp_wake_lock);
        seen = mlp_wake_gen;
        pthread_mutex_unlock(&mlp_wake_lock);
        if (mlp_wake_spinning(index)) {
            int64_t start = mlp_wake_now(), before = start, after;
            __atomic_add_fetch(&mlp_wake_spins, 1, __ATOMIC_RELAXED);
            for (;;) {
                sched_yield();
                after = mlp_wake_now();
                /* another thread ran here meanwhile: the CPU is awake, the team's
                   worker likely on it; keep out of its way */
                if (after - before > MLP_WAKE_RAN_NS || !mlp_wake_spinning(index))
                    break;
                before = after;
            }
            __atomic_add_fetch(&mlp_wake_spin_ns, after - start, __ATOMIC_RELAXED);
        }
        pthread_mutex_lock(&mlp_wake_lock);
    }
    return NULL;
}

/* In a forked child only the forking thread exists: no wakers, no holds. */
static void mlp_wake_after_fork(void)
{
    pthread_mutex_init(&mlp_wake_lock, NULL);
    pthread_cond_init(&mlp_wake_cond, NULL);
    mlp_wake_helpers = 0;
    mlp_wake_holds = 0;
    mlp_wake_team = 0;
}

/* Starts waker `index`, detached, with every signal blocked (signals are the
 * Python thread's business); returns 0 on success. Under the lock. */
static int mlp_wake_start_one(int index)
{
    pthread_t thread;
    pthread_attr_t attr;
    sigset_t all, old;
    size_t stack = MLP_WAKE_STACK;
    int err;
#ifdef PTHREAD_STACK_MIN
    if (stack < (size_t)PTHREAD_STACK_MIN)
        stack = (size_t)PTHREAD_STACK_MIN;
#endif
    if (pthread_attr_init(&attr) != 0)
        return -1;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, stack);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&thread, &attr, mlp_waker, (void *)(intptr_t)index);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return err;
}

int mlp_wake_hold(int n_threads, double seconds)
{
    int want = n_threads - 1;
    int64_t until;
    if (want < 1 || !__atomic_load_n(&mlp_wake_enabled, __ATOMIC_RELAXED))
        return 0;
    if (want > MLP_WAKE_MAX_HELPERS)
        want = MLP_WAKE_MAX_HELPERS;
    if (!(seconds > 0)) /* NaN too */
        return 0;
    if (seconds > MLP_WAKE_MAX_SECONDS)
        seconds = MLP_WAKE_MAX_SECONDS;
    until = mlp_wake_now() + (int64_t)(seconds * 1e9);
    pthread_mutex_lock(&mlp_wake_lock);
    if (!mlp_wake_atfork && pthread_atfork(NULL, NULL, mlp_wake_after_fork) == 0)
        mlp_wake_atfork = 1;
    while (mlp_wake_atfork && !mlp_wake_failed && mlp_wake_helpers < want) {
        if (mlp_wake_start_one(mlp_wake_helpers) != 0)
            mlp_wake_failed = 1;
        else
            mlp_wake_helpers++;
    }
    if (mlp_wake_helpers == 0) {
        pthread_mutex_unlock(&mlp_wake_lock);
        return 0;
    }
    /* concurrent holds: spin until the last of them ends, with the latest
       hold's team (the holds of one process ask for the same) */
    if (__atomic_load_n(&mlp_wake_holds, __ATOMIC_RELAXED) == 0
        || until > __atomic_load_n(&mlp_wake_until, __ATOMIC_RELAXED))
        __atomic_store_n(&mlp_wake_until, until, __ATOMIC_RELAXED);
    __atomic_store_n(&mlp_wake_team, want, __ATOMIC_RELAXED);
    __atomic_add_fetch(&mlp_wake_holds, 1, __ATOMIC_RELEASE);
    mlp_wake_gen++;
    pthread_cond_broadcast(&mlp_wake_cond);
    pthread_mutex_unlock(&mlp_wake_lock);
    return 1;
}

void mlp_wake_release(void)
{
    long holds = __atomic_load_n(&mlp_wake_holds, __ATOMIC_RELAXED);
    /* never below zero: a hold taken before a fork is released in the child too */
    while (holds > 0 && !__atomic_compare_exchange_n(&mlp_wake_holds, &holds, holds - 1, 0,
                                                     __ATOMIC_RELEASE, __ATOMIC_RELAXED))
        ;
}

int mlp_wake_set_enabled(int enabled)
{
    return __atomic_exchange_n(&mlp_wake_enabled, enabled ? 1 : 0, __ATOMIC_RELAXED);
}

void mlp_wake_stats(int *helpers, long *taken, long *holds, long *spins, double *spin_seconds)
{
    pthread_mutex_lock(&mlp_wake_lock);
    *helpers = mlp_wake_helpers;
    *taken = (long)mlp_wake_gen;
    pthread_mutex_unlock(&mlp_wake_lock);
    *holds = __atomic_load_n(&mlp_wake_holds, __ATOMIC_RELAXED);
    *spins = __atomic_load_n(&mlp_wake_spins, __ATOMIC_RELAXED);
    *spin_seconds = 1e-9 * (double)__atomic_load_n(&mlp_wake_spin_ns, __ATOMIC_RELAXED);
}

#else /* no POSIX threads (or no GCC-style atomics): nothing to keep awake */

int mlp_wake_hold(int n_threads, double seconds)
{
    (void)n_threads;
    (void)seconds;
    return 0;
}

void mlp_wake_release(void) {}

int mlp_wake_set_enabled(int enabled)
{
    (void)enabled;
    return 0;
}

void mlp_wake_stats(int *helpers, long *taken, long *holds, long *spins, double *spin_seconds)
{
    *helpers = 0;
    *taken = 0;
    *holds = 0;
    *spins = 0;
    *spin_seconds = 0;
}

#endif
