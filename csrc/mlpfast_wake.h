/* Keeping the other CPUs awake while an OpenMP team is about to start.
 *
 * On some virtual machines a CPU that has been idle for a while is halted, and
 * the first OpenMP region after that waits milliseconds for its worker. On the
 * 2-vCPU EPYC VM the benchmarks ran on (a 250 Hz guest kernel, guest halt
 * polling off), a two-thread region over 200000 doubles took 3.9-7.8 ms after
 * 0.2 s idle and the region after it another 4 ms, against 0.05 ms back to
 * back: multiples of the 4 ms tick, as if the halted CPU saw the wake-up only
 * at its next timer interrupt. A thread of ours that is already running on
 * the idle CPU, and that yields to any other thread there, lets the worker
 * run at once (0.12 and 0.06 ms). So before a threaded computation the
 * caller holds "waker" threads awake; each spins on sched_yield() until the
 * last hold is released, the holds' time is up or another thread has run on
 * its CPU, then sleeps until the next hold. They touch no data: results never
 * depend on them.
 *
 * On Linux the threads are named "mlpfast-waker". POSIX threads only;
 * elsewhere (or when the threads cannot be created) holds do nothing.
 * Thread-safe; holds from several threads overlap. Safe across fork(): the
 * child starts with no waker threads and makes its own.
 */
#ifndef MLPFAST_WAKE_H
#define MLPFAST_WAKE_H

/* Hold the other CPUs awake for an OpenMP team of n_threads threads (the
 * caller caps it by the CPUs): makes sure n_threads - 1 waker threads exist
 * (at most 255; on the first call, and again when a larger team asks) and
 * sets that many spinning until mlp_wake_release() has been called once for
 * every mlp_wake_hold(), or until the outstanding holds' time is up (each
 * hold's: `seconds` from its call, at most 60), whichever comes first.
 * Does nothing when n_threads < 2, seconds is not positive, waking is off or
 * no waker thread could be started (then it does not try again). Returns 1
 * when it took a hold (then call mlp_wake_release once), else 0. */
int mlp_wake_hold(int n_threads, double seconds);
/* Gives back one hold taken by mlp_wake_hold. */
void mlp_wake_release(void);
/* Turns the waker threads on (1, the default) or off (0) for later holds;
 * returns the previous setting. */
int mlp_wake_set_enabled(int enabled);
/* The waker threads that exist, the holds taken so far and those not yet
 * released, the spins started so far (a spin: a waker running for a hold; a
 * hold released before its waker runs has none) and the seconds the ended
 * spins lasted, into the five pointers. */
void mlp_wake_stats(int *helpers, long *taken, long *holds, long *spins,
                    double *spin_seconds);

#endif
