"""Build of mlpfast's compiled engine: csrc/ kernels + the Cython modules.

OpenMP is used when the compiler accepts it. Set MLPFAST_NO_OPENMP=1 to build
without it on purpose; when the compiler lacks it the build goes on serially
and says so.
"""
import os
import sys
import tempfile
import textwrap

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }
    """
)


def _openmp_flags(compiler):
    """Compile and link flags for OpenMP, or None when the compiler lacks it."""
    if compiler.compiler_type == "msvc":
        candidates = [(["/openmp"], [])]
    elif sys.platform == "darwin":
        candidates = [(["-Xpreprocessor", "-fopenmp"], ["-lomp"])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]
    for cflags, ldflags in candidates:
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "probe.c")
            with open(src, "w") as f:
                f.write(OPENMP_PROBE)
            try:
                objs = compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
                compiler.link_executable(
                    objs, "probe", output_dir=tmp, extra_postargs=ldflags
                )
            except Exception:
                continue
        return cflags, ldflags
    return None


class BuildExt(build_ext):
    def build_extensions(self):
        cflags, ldflags = [], []
        if self.compiler.compiler_type != "msvc":
            # No errno from sqrt (lets it vectorise) and no floating-point traps
            # (lets the selects in the kernels' exp vectorise); neither changes a
            # result. No fused multiply-adds, so the AVX2 + FMA kernels give the
            # very same results as the baseline ones.
            cflags += ["-std=c99", "-O3", "-fno-math-errno", "-fno-trapping-math",
                       "-ffp-contract=off", "-Wno-unknown-pragmas"]
        if os.environ.get("MLPFAST_NO_OPENMP", "0") not in ("", "0"):
            print("mlpfast: MLPFAST_NO_OPENMP is set; building without OpenMP (serial).")
        else:
            found = _openmp_flags(self.compiler)
            if found is None:
                print(
                    "WARNING mlpfast: the compiler does not support OpenMP; the kernels "
                    "are built serially (BLAS still uses its own threads).",
                    file=sys.stderr,
                )
            else:
                cflags += found[0]
                ldflags += found[1]
        for ext in self.extensions:
            ext.extra_compile_args = cflags + ext.extra_compile_args
            ext.extra_link_args = ldflags + ext.extra_link_args
        super().build_extensions()


def extensions():
    from Cython.Build import cythonize

    engine = Extension(
        "mlpfast._engine",
        sources=["mlpfast/_engine.pyx", "csrc/mlpfast_kernels.c"],
        include_dirs=["csrc"],
        depends=[
            "csrc/mlpfast_kernels.h",
            "csrc/mlpfast_kernels_impl.h",
            "csrc/mlpfast_kernels_dtypes.h",
            "csrc/mlpfast_dispatch_impl.h",
            "csrc/mlpfast_normal_impl.h",
        ],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    return cythonize([engine], compiler_directives={"language_level": 3})


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
