"""Build the C core `nas_eval._core` against NumPy and PyPI's scipy-openblas32.

Nothing is needed from the system beyond a C compiler and Python headers: OpenBLAS's
headers and shared library come from the `scipy-openblas32` wheel, and the extension
finds that library at run time through a relative rpath (site-packages/scipy_openblas32/lib)
or, failing that, because `nas_eval` preloads it before importing `_core`.
"""
import glob
import hashlib
import os
import sys

import numpy
import scipy_openblas32
from setuptools import Extension, setup

# Portable flags for a distributable build: no -march=native. The hot kernels exist once per
# instruction set (csrc/kern_*.c) and one set is picked at load time (csrc/kernels.h).
extra_compile_args = ["-std=c11", "-O3", "-fno-math-errno", "-fno-trapping-math",
                      "-Wall", "-Wextra", "-Wno-psabi"]
extra_link_args = []
if sys.platform.startswith("linux"):
    extra_link_args.append("-Wl,-rpath,$ORIGIN/../scipy_openblas32/lib")
    extra_link_args.append("-Wl,-rpath," + scipy_openblas32.get_lib_dir())
if os.environ.get("NAS_EVAL_DEBUG"):
    extra_compile_args += ["-O0", "-g", "-fsanitize=address,undefined"]
    extra_link_args += ["-fsanitize=address,undefined"]



def source_sha():
    """SHA-256 (16 hex digits) of the C core's sources: compiled in, so that a Dask driver
    can refuse workers whose core was built from other sources (nas_eval.build_info)."""
    h = hashlib.sha256()
    for path in sorted(glob.glob("csrc/*.c") + glob.glob("csrc/*.h")):
        h.update(os.path.basename(path).encode() + b"\0")
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


core = Extension(
    "nas_eval._core",
    sources=sorted(glob.glob("csrc/*.c")),
    depends=sorted(glob.glob("csrc/*.h")),
    include_dirs=["csrc", numpy.get_include(), scipy_openblas32.get_include_dir()],
    library_dirs=[scipy_openblas32.get_lib_dir()],
    libraries=[scipy_openblas32.get_library(), "m"],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_20_API_VERSION"),
                   ("NAS_EVAL_SOURCE_SHA", '"%s"' % source_sha())],
    extra_compile_args=extra_compile_args,
    extra_link_args=extra_link_args,
)

setup(ext_modules=[core])
