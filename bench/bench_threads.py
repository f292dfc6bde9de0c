"""mlpfast's default threads against one thread, on an idle machine and under load.

``test_threads[<call>-<dtype>-<load>]``: in paired rounds, the same call with
mlpfast's default OpenMP threads and with
``threadpoolctl``'s ``limit(1, user_api="openmp")``, the order alternating by
round; the figure is the median per-round ratio default / one thread. Calls:
the ``small`` and ``tabular`` fits, and the ``tabular`` model predicting
20000 rows. ``load``:

* ``idle``: nothing else runs; the default threads should be at least as
  fast as one (ratio <= 1.0);
* ``pauses``: a process takes a random CPU for PAUSE_SECONDS about every
  PAUSE_EVERY seconds, as a shared VM's host or a laptop's background tasks
  do; no target, the figure shows what such pauses cost the choice of threads;
* ``busy``: a busy-loop process pinned to one CPU takes it for the whole test,
  as another program would; the default threads should then cost at most 1.2x
  one thread's time.

Nothing here waits for an idle machine (``common.settle``): both arms are
mlpfast, so no other library's spinning workers are left to wait out, and
under load waiting would hide the load. Calls run back to back, as in a
user's loop.
"""

import os
import subprocess
import sys
import time

import pytest
from threadpoolctl import ThreadpoolController

from common import (CASES, check_predict, check_same_fit, data, fit, fitted, median_ratio,
                    n_threads, paired_rounds, require_valid)

ROUNDS = 15
PREDICT_ROWS = 20000
CALLS = ("small-fit", "tabular-fit", "tabular-predict")
# The busy loop is killed when its test ends; should pytest die first, the
# loop still ends on its own: when its parent is gone, or after LOAD_SECONDS
# (a test takes a fraction of it).
LOAD_SECONDS = 120
BUSY_LOOP = f"""
import os, time
parent, end = os.getppid(), time.monotonic() + {LOAD_SECONDS}
print(flush=True)
while os.getppid() == parent and time.monotonic() < end:
    for _ in range(1_000_000):
        pass
"""


PAUSE_SECONDS = 0.003
PAUSE_EVERY = 0.1
PAUSE_LOOP = f"""
import os, random, time
parent, end = os.getppid(), time.monotonic() + {LOAD_SECONDS}
rng, cpus = random.Random(0), sorted(os.sched_getaffinity(0))
print(flush=True)
while os.getppid() == parent and time.monotonic() < end:
    time.sleep(rng.expovariate(1 / {PAUSE_EVERY}))
    os.sched_setaffinity(0, {{rng.choice(cpus)}})
    stop = time.perf_counter() + {PAUSE_SECONDS}
    while time.perf_counter() < stop:
        pass
"""


def _cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load_process(script, pin):
    """Runs script in a process (pinned to the last CPU this process may use
    when pin), killed when the test ends; yields a function returning its CPU
    seconds so far and whether it still runs."""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        if pin and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(proc.pid, {max(os.sched_getaffinity(0))})
        proc.stdout.readline()  # started
        yield lambda: (_cpu_seconds(proc.pid), proc.poll() is None)
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def busy_cpu():
    """A busy-loop process pinned to one CPU for the whole test."""
    yield from _load_process(BUSY_LOOP, pin=True)


@pytest.fixture
def pausing_cpus():
    """A process that takes a random CPU for PAUSE_SECONDS about every
    PAUSE_EVERY seconds (Linux: it moves itself with sched_setaffinity)."""
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("needs os.sched_setaffinity")
    yield from _load_process(PAUSE_LOOP, pin=False)


def call_and_check(call, dtype):
    """The validated ``() -> result`` of a call and the check of its result."""
    case_name, op = call.split("-")
    require_valid("mlpfast", case_name, dtype)
    X, y = data(case_name, dtype)
    if op == "fit":
        return (lambda: fit("mlpfast", CASES[case_name], X, y),
                lambda est: check_same_fit(est, "mlpfast", case_name, dtype))
    est, rows = fitted("mlpfast", case_name, dtype), slice(0, PREDICT_ROWS)
    return (lambda: est.predict(X[rows]),
            lambda labels: check_predict(labels, case_name, dtype, rows))


# Every idle case runs before the loaded ones, and the pauses before the busy
# loop: a fit takes the thread verdict of the fits of the last second as its
# start (README, Threads).
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("load", ["idle", "pauses", "busy"])
def test_threads(benchmark, request, call, dtype, load):
    default = n_threads()
    if default < 2:
        pytest.skip("mlpfast runs one thread here: nothing to compare")
    benchmark.group = f"threads {call} {dtype} {load}"
    benchmark.extra_info.update(op="threads", case=call, dtype=dtype, peer=load,
                                threads=default, rounds=ROUNDS)
    run, check = call_and_check(call, dtype)
    controller = ThreadpoolController()

    # One thread's time leaves out setting the limit: the call times itself.
    own = []

    def one_thread():
        with controller.limit(limits=1, user_api="openmp"):
            assert n_threads() == 1
            t0 = time.perf_counter()
            result = run()
            own.append(time.perf_counter() - t0)
        return result

    fixture = {"busy": "busy_cpu", "pauses": "pausing_cpus"}.get(load)
    probe = request.getfixturevalue(fixture) if fixture else None
    cpu0, wall0 = (probe()[0] if probe else None), time.monotonic()
    times, last = paired_rounds(benchmark, {"default": run, "one": one_thread}, ROUNDS,
                                warmup=True)
    wall = time.monotonic() - wall0
    times["one"] = own[-ROUNDS:]
    if probe:
        cpu1, alive = probe()
        assert alive, f"the {load} process ended before the measurement did"
        if cpu0 is not None and load == "busy":  # it really held a CPU throughout
            share = (cpu1 - cpu0) / wall
            benchmark.extra_info["load_cpu_share"] = share
            assert share > 0.25, f"the busy loop had only {share:.0%} of a CPU"
    for result in last.values():
        check(result)
    benchmark.extra_info.update(times=times,
                                ratios={"default/one": median_ratio(times["default"],
                                                                    times["one"])})
