#!/usr/bin/env bash
# Runs the C core on aarch64, under qemu-user, against the same core on this x86 machine.
# tests/core_driver.c trains a discrete cell and DARTS's mixed cell for three steps without
# Python; it is built natively (gcc) and for aarch64 Linux (zig's clang, static, musl), and
# run with the NEON kernels and the generic ones on 1 and 2 threads under qemu, and with
# neon-emu (the NEON table compiled for x86) and generic here. It checks that
#   - every aarch64 run repeats itself bit for bit (the same level and threads twice);
#   - every run agrees with every other to float32 rounding (rel. 1e-5 on losses, gradient
#     norms and parameter sums). Bits differ between the platforms: clang contracts
#     multiply-adds outside the kernels on aarch64, and musl's logf is not glibc's.
# Needs .venv with the project and ziglang, and qemu-aarch64-static (Debian:
# apt-get install qemu-user-static); .ci/run runs it where qemu is installed.
# Usage: bash .ci/arm_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
QEMU=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
if [ -z "$QEMU" ]; then
    echo "arm check: no qemu-aarch64(-static) on PATH; apt-get install qemu-user-static" >&2
    exit 2
fi
OB_INC=$($PY -c 'import scipy_openblas32 as s; print(s.get_include_dir())')
FLAGS=(-std=c11 -O3 -fno-math-errno -fno-trapping-math -Wall -Wextra -Werror -Wno-psabi -Icsrc -I"$OB_INC")
SOURCES=()
for src in csrc/*.c; do  # the core without its CPython bindings
    grep -q '#include <Python.h>' "$src" || SOURCES+=("$src")
done
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

gcc "${FLAGS[@]}" tests/core_driver.c "${SOURCES[@]}" -lm -lpthread -o "$OUT/x86"
$PY -m ziglang cc -target aarch64-linux-musl -static "${FLAGS[@]}" tests/core_driver.c "${SOURCES[@]}" \
    -lm -o "$OUT/arm"
echo "arm check: built; running (qemu: $($QEMU --version | head -1))"

"$OUT/x86" neon-emu 2 > "$OUT/x86-neon-emu-2"
"$OUT/x86" generic 2 > "$OUT/x86-generic-2"
for run in neon-1 neon-2 generic-2; do
    "$QEMU" "$OUT/arm" "${run%-*}" "${run##*-}" > "$OUT/arm-$run"
done
"$QEMU" "$OUT/arm" neon 2 > "$OUT/arm-neon-2-again"

$PY - "$OUT" <<'EOF'
import math, pathlib, sys
out = pathlib.Path(sys.argv[1])
runs = {p.name: p.read_text().splitlines() for p in sorted(out.iterdir()) if p.name.startswith(("x86-", "arm-"))}
assert runs["arm-neon-2"] == runs["arm-neon-2-again"], "aarch64 NEON, 2 threads: two runs differ"
base = runs["arm-neon-2"]
assert len(base) == 18, base
for name, lines in runs.items():
    assert len(lines) == len(base), name
    for a, b in zip(base, lines):
        ka, kb = a.split(), b.split()
        assert [w for w in ka if not w[0].isdigit() and w[0] != "-"][:4] == [w for w in kb if not w[0].isdigit() and w[0] != "-"][:4], (a, b)
        for i, (x, y) in enumerate(zip(ka, kb)):
            if ka[i - 1] in ("loss", "grad_norm", "abs"):
                assert math.isclose(float(x), float(y), rel_tol=1e-5), (name, a, b)
            elif ka[i - 1] == "sum":  # sums of signed values: relative to the abs sum
                scale = float(ka[ka.index("abs") + 1])
                assert abs(float(x) - float(y)) <= 1e-5 * scale, (name, a, b)
    same = sum(a == b for a, b in zip(base, lines))
    print(f"arm check: {name:22s} agrees with arm-neon-2 to rel. 1e-5 ({same}/{len(base)} lines identical)")
print("arm check: aarch64 NEON repeats itself bit for bit; every run agrees")
EOF
