#!/usr/bin/env bash
# Compile-only checks of the C core wherever a wheel would be built: every csrc/*.c with
# gcc and clang (zig's clang) for x86-64 Linux, warnings as errors, and for aarch64 Linux
# and macOS (zig cross-compilers; the CPython bindings are left out there, as the Python
# headers are this machine's). No linking, no running. Needs .venv with the project and
# ziglang installed. Usage: bash .ci/compile_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
OB_INC=$($PY -c 'import scipy_openblas32 as s; print(s.get_include_dir())')
NP_INC=$($PY -c 'import numpy; print(numpy.get_include())')
PY_INC=$($PY -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
FLAGS=(-std=c11 -O2 -fno-math-errno -fno-trapping-math -Wall -Wextra -Werror -Wno-psabi
       -DNPY_NO_DEPRECATED_API=NPY_1_20_API_VERSION -Icsrc -I"$OB_INC")
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

check() {  # check NAME COMPILER... -- EXTRA_FLAGS...: compile every source, stop at the first error
    local name=$1; shift
    local cc=() extra=()
    while [ "$1" != "--" ]; do cc+=("$1"); shift; done; shift
    extra=("$@")
    local n=0
    for src in csrc/*.c; do
        # CPython bindings (module.c, py_*.c) only where this machine's Python headers fit
        if grep -q '#include <Python.h>' "$src" && [[ " ${extra[*]} " != *" -I$PY_INC "* ]]; then continue; fi
        "${cc[@]}" "${FLAGS[@]}" "${extra[@]}" -c "$src" -o "$OUT/$(basename "$src").o"
        n=$((n + 1))
    done
    echo "compile check $name: $n files, no warnings"
}

check "gcc x86_64-linux" gcc -- -I"$NP_INC" -I"$PY_INC"
check "clang x86_64-linux" $PY -m ziglang cc -target x86_64-linux-gnu -- -I"$NP_INC" -I"$PY_INC"
check "clang aarch64-linux" $PY -m ziglang cc -target aarch64-linux-gnu --
# the wheel's OpenBLAS header is this platform's (Linux): its Linux-only affinity calls
# name cpu_set_t, which macOS lacks
check "clang aarch64-macos" $PY -m ziglang cc -target aarch64-macos -- -Dcpu_set_t=void
if command -v clang >/dev/null; then check "system $(clang --version | head -1)" clang -- -I"$NP_INC" -I"$PY_INC"; fi
