/* How long a cache line takes to go from one CPU to another and back, sampled
 * over time: two threads pinned to CPUs 0 and 1 hand a flag back and forth.
 * On a VM the host may move the virtual CPUs between physical cores; where the
 * two land on cores that share no cache, every line written by one thread and
 * read by the other costs several times more (bench/README.md, "This
 * machine's modes"). Linux only.
 *
 *     cc -O2 -pthread bench/pingpong.c -o /tmp/pingpong && /tmp/pingpong [samples]
 *
 * Prints one round-trip time in ns per sample (20000 round trips, 0.1 s apart),
 * then the count of samples above twice the fastest. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define ROUND_TRIPS 20000

static _Alignas(64) atomic_int ball = 0;
static _Alignas(64) atomic_int stop = 0;

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) {
        fprintf(stderr, "cannot pin to CPU %d\n", cpu);
        exit(1);
    }
}

static void *returner(void *unused)
{
    (void)unused;
    pin(1);
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        if (atomic_load_explicit(&ball, memory_order_acquire) == 1)
            atomic_store_explicit(&ball, 0, memory_order_release);
    return NULL;
}

int main(int argc, char **argv)
{
    int samples = argc > 1 ? atoi(argv[1]) : 100, slow = 0;
    double *ns = malloc(sizeof(double) * (samples > 0 ? samples : 1)), fastest = 1e30;
    pthread_t thread;
    if (samples < 1 || ns == NULL)
        return 1;
    pthread_create(&thread, NULL, returner, NULL);
    pin(0);
    for (int s = 0; s < samples; s++) {
        double start = seconds();
        for (int i = 0; i < ROUND_TRIPS; i++) {
            atomic_store_explicit(&ball, 1, memory_order_release);
            while (atomic_load_explicit(&ball, memory_order_acquire) == 1)
                ;
        }
        ns[s] = (seconds() - start) / ROUND_TRIPS * 1e9;
        fastest = ns[s] < fastest ? ns[s] : fastest;
        printf("%.0f ", ns[s]);
        fflush(stdout);
        usleep(100000);
    }
    atomic_store(&stop, 1);
    pthread_join(thread, NULL);
    for (int s = 0; s < samples; s++)
        slow += ns[s] > 2 * fastest;
    printf("\n%d of %d samples above twice the fastest (%.0f ns)\n", slow, samples, fastest);
    free(ns);
    return 0;
}
