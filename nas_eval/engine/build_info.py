"""What the C core was built with and what it runs on this machine."""
import os
import platform

from .native import core


def build_info():
    """The C core's build and run-time choices, as a dict:

    ``compiler`` (name and version), ``isa`` (the instruction-set level whose kernels are in
    use: ``avx512``, ``avx2``, ``neon`` or ``generic``), ``isa_supported`` (the levels this
    CPU can run, best first), ``isa_emulated`` (test levels this CPU runs: ``avx512-emu``
    and ``neon-emu``, those tables' code compiled for AVX2 + FMA -- the same arithmetic, not
    the same speed; never chosen unless asked for), ``isa_compiled`` (the levels this build has), ``isa_override``
    (``$NAS_EVAL_ISA`` as read at import, or None), ``tile`` (the matrix kernel's register
    tile, rows x columns), ``blas_core`` (the kernel OpenBLAS picked for this CPU),
    ``blas_config``, ``threads`` (the core's worker threads), ``machine`` and ``source`` (the
    SHA-256 of the C sources it was built from, 16 hex digits; "unknown" for a build that
    did not go through setup.py).

    ``NAS_EVAL_ISA=avx2|generic|avx512-emu|...`` (set before the core is imported) forces a
    lower level than the CPU has, or an emulation, for tests and benchmarks; an unknown level or one this CPU cannot run
    makes the import fail with a ValueError that lists the levels it can.
    """
    isa = core.isa_info()
    blas = core.openblas_info()
    return {
        "compiler": isa["compiler"],
        "isa": isa["isa"],
        "isa_supported": list(isa["supported"]),
        "isa_emulated": list(isa["emulated"]),
        "isa_compiled": list(isa["compiled"]),
        "isa_override": os.environ.get("NAS_EVAL_ISA") or None,
        "tile": "%dx%d" % tuple(isa["tile"]),
        "blas_core": blas["corename"],
        "blas_config": blas["config"],
        "threads": core.get_num_threads(),
        "machine": platform.machine(),
        "source": isa.get("source", "unknown"),
    }
