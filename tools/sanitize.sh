#!/usr/bin/env bash
# Sanitizer job: builds mlpfast's engine with AddressSanitizer and
# UndefinedBehaviorSanitizer, then runs the kernel, gradient, sparse, error,
# alignment and fork tests on that build. Any sanitizer report, or any failing
# test, fails the job.
#
# The build happens in a copy of the checkout's sources under a temporary
# directory, removed at exit: the checkout's own in-place build (if any) is
# neither overwritten nor deleted, and nothing sanitized is left behind that a
# later `pytest tests` could import without the sanitizer runtime preloaded.
#
# Needs GCC (its libasan and libubsan), git, and Cython and setuptools in the
# Python that runs it (python3 on PATH, e.g. an active virtual environment).
set -euo pipefail

checkout="$(cd "$(dirname "$0")/.." && pwd)"
start=$SECONDS

work=""
finish() {
    status=$?
    [ -z "$work" ] || rm -rf "$work"
    echo "== sanitizer job: $([ "$status" -eq 0 ] && echo passed || echo FAILED)" \
         "in $((SECONDS - start)) s =="
}
trap finish EXIT

echo "== mlpfast sanitizer job: ASan + UBSan build, then tests =="

python="$(python3 -c 'import sys; print(sys.executable)')"
if ! "$python" -c 'import Cython, setuptools' 2>/dev/null; then
    echo "sanitize: $python lacks Cython or setuptools, which the build needs" >&2
    exit 1
fi
libasan="$(gcc -print-file-name=libasan.so)"
libubsan="$(gcc -print-file-name=libubsan.so)"
if [ ! -e "$libasan" ] || [ ! -e "$libubsan" ]; then
    echo "sanitize: gcc has no libasan.so or libubsan.so" >&2
    exit 1
fi
echo "checkout: $checkout"
echo "python:   $python"
echo "compiler: $(gcc --version | head -n 1)"

work="$(mktemp -d "${TMPDIR:-/tmp}/mlpfast-sanitize.XXXXXX")"

# The sources as they are in the working tree, tracked or new, without ignored
# files (so without any build products); tar warns of a tracked file deleted.
src="$work/src"
mkdir "$src"
(cd "$checkout" && git ls-files -z --cached --others --exclude-standard) |
    (cd "$checkout" && tar --null --files-from=- --ignore-failed-read -cf -) |
    tar -C "$src" -xf -

# The flags go in CC itself, as setuptools uses CC alone to link the OpenMP
# probe; with the flags only in CFLAGS that probe would fail to link and the
# build would quietly drop OpenMP. -fno-wrapv undoes Python's -fwrapv, which
# would otherwise hide signed overflow from UBSan.
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g"
echo "== build: gcc $sanitize =="
built=$SECONDS
(cd "$src" && CC="gcc $sanitize" CFLAGS="-fno-wrapv" \
    "$python" setup.py --quiet build_ext --inplace >"$work/build.log" 2>&1) || {
    cat "$work/build.log"
    echo "sanitize: the build failed" >&2
    exit 1
}
echo "built in $((SECONDS - built)) s"

export PYTHONPATH="$src"
export PYTHONMALLOC=malloc
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
sanitized=(env LD_PRELOAD="$libasan $libubsan" "$python")

cd "$src"
"${sanitized[@]}" -c '
import os, sys, mlpfast._engine as e
assert e.__file__.startswith(os.path.join(sys.argv[1], "")), e.__file__
assert e.openmp_enabled(), "the sanitized build lacks OpenMP"
print("engine:  ", e.__file__)
' "$src"

tests=(tests/test_kernels.py tests/test_gradients.py tests/test_sparse.py tests/test_errors.py
       tests/test_alignment.py tests/test_fork.py)
echo "== tests: ${tests[*]} =="
status=0
# --capture=sys: pytest's default capture of file descriptor 2 would swallow a
# report (written there by the C runtime) when the report aborts the process.
"${sanitized[@]}" -m pytest -p no:cacheprovider -q --capture=sys "${tests[@]}" 2>&1 |
    tee "$work/tests.log" || status=$?

# A report aborts its process; this also catches one from a child process
# whose exit status a test let pass.
if grep -Eq 'runtime error: |==[0-9]+==ERROR: |Sanitizer:DEADLYSIGNAL' "$work/tests.log"; then
    echo "sanitize: a sanitizer report fired (above)" >&2
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "sanitize: the tests failed (pytest exit status $status)" >&2
    exit "$status"
fi
