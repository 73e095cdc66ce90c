"""The per-instruction-set kernels: every level this machine runs passes the gradient checks,
is bitwise deterministic for a given (seed, threads, level), and agrees with the others to
float32 rounding; NAS_EVAL_ISA forces a level, and a bad value fails the import clearly.

LEVELS holds the emulations too (avx512-emu, neon-emu: the AVX-512 and NEON tables' code --
their vector widths and register tiles -- compiled for AVX2 + FMA), so an x86 machine
without AVX-512 still checks those tables' arithmetic against the references."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nas_eval
from nas_eval.engine import MixedLM, batchify, native

import reference

TESTS = Path(__file__).parent
LEVELS = native.isa_info()["supported"] + native.isa_info()["emulated"]
ARCH = "0:tanh 1:relu 1:sigmoid 0:identity 3:tanh 2:relu 6:sigmoid 4:identity"


@pytest.fixture
def isa_level():
    """Switches the core's kernels for one test and restores the level it found."""
    before = native.isa_info()["isa"]
    threads = nas_eval.get_num_threads()
    yield native.set_isa
    native.set_isa(before)
    nas_eval.set_num_threads(threads)


def _run(code, isa=None, **extra_env):
    env = dict(os.environ)
    env.pop("NAS_EVAL_ISA", None)
    if isa is not None:
        env["NAS_EVAL_ISA"] = isa
    env.update(extra_env)
    # from the tests folder, so that a clean clone imports the installed package, not the
    # source tree beside it (which holds no compiled extension)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, cwd=TESTS)


def test_build_info_reports_the_level_in_use():
    info = nas_eval.build_info()
    assert info["isa"] in info["isa_supported"] + info["isa_emulated"]  # an emulation when NAS_EVAL_ISA names one
    assert info["isa_supported"][0] == native.isa_info()["best"]
    assert set(info["isa_supported"]) | set(info["isa_emulated"]) <= set(info["isa_compiled"])
    assert not set(info["isa_supported"]) & set(info["isa_emulated"])
    assert "generic" in info["isa_supported"]
    assert info["compiler"].split()[0] in ("gcc", "clang")
    assert info["blas_core"] and info["threads"] == nas_eval.get_num_threads()
    rows, cols = map(int, info["tile"].split("x"))
    assert 1 <= rows <= 8 and 32 % cols == 0


@pytest.mark.parametrize("level", LEVELS)
def test_environment_variable_forces_a_level(level):
    res = _run("import nas_eval; print(nas_eval.build_info()['isa'])", isa=level)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [level]


@pytest.mark.parametrize("value, why", [("avx9000", "not a known"), ("AVX2", "not a known")]
                         + [(lv, "not supported") for lv in ("avx512", "avx2", "neon") if lv not in LEVELS])
def test_unknown_or_unsupported_level_fails_the_import(value, why):
    res = _run("import nas_eval; nas_eval.CellLM('0:tanh', 5, 4)", isa=value)
    assert res.returncode != 0
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError: NAS_EVAL_ISA=" + value) and why in last
    assert "generic" in last  # it lists the levels this machine runs


def test_set_isa_rejects_bad_levels(isa_level):
    with pytest.raises(ValueError, match="isa must be one of"):
        isa_level("sse9")
    for level in ("avx512", "avx2", "neon"):
        if level not in LEVELS:
            with pytest.raises(ValueError, match="not supported"):
                isa_level(level)


def test_an_emulation_is_never_chosen_unless_asked_for(isa_level):
    """avx512-emu and neon-emu (x86 with AVX2): listed apart, never the best level nor the
    default one; selected, each runs the tile of the table it emulates."""
    info = native.isa_info()
    assert info["best"] not in info["emulated"]
    assert _run("import nas_eval; print(nas_eval.build_info()['isa'])").stdout.split() == [info["best"]]
    tiles = {"avx512-emu": (8, 32), "neon-emu": (6, 16)}
    assert set(info["emulated"]) <= set(tiles)
    for level in info["emulated"]:
        isa_level(level)
        assert native.isa_info()["isa"] == level and tuple(native.isa_info()["tile"]) == tiles[level]


@pytest.mark.parametrize("level", LEVELS)
def test_gradient_checks_pass_under_every_level(level):
    """The whole finite-difference suite of the cell and of DARTS's mixed cell, in a fresh
    process forced to this level."""
    env = dict(os.environ, NAS_EVAL_ISA=level)
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(TESTS / "test_cell_gradients.py"), str(TESTS / "test_darts.py")],
                         env=env, capture_output=True, text=True, timeout=600, cwd=TESTS)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert " passed" in res.stdout and "failed" not in res.stdout


def _train(d, threads, steps=2, dropout=True):
    nas_eval.set_num_threads(threads)
    kw = dict(dropout=0.2, dropouth=0.2, dropoutx=0.1) if dropout else {}
    model = nas_eval.CellLM(ARCH, 50, d, seed=3, **kw)
    tokens = np.random.default_rng(4).integers(0, 50, 8 * 13 * (steps + 1))
    loss = model.fit_steps(tokens, steps, batch_size=8, bptt=12, lr=1.0, clip=0.25)
    return loss, model.parameters()


def test_a_job_run_by_fewer_workers_gives_the_same_bits():
    """The pool may run a job on the calling thread alone (a helper that arrives after the
    work is gone, or 'solo' mode while another process keeps a core busy); the tickets are
    cut by the configured thread count, so the numbers must not change.
    NAS_EVAL_POOL_SOLO forces every job solo."""
    code = ("import hashlib, numpy as np, nas_eval\n"
            "nas_eval.set_num_threads(2)\n"
            "for d in (32, 96, 512):\n"
            "    m = nas_eval.CellLM('" + ARCH + "', 300, d, seed=1)\n"
            "    tok = np.random.default_rng(2).integers(0, 300, 16 * 13 * 4)\n"
            "    loss = m.fit_steps(tok, 3, batch_size=16, bptt=12, lr=1.0, clip=0.25)\n"
            "    h = hashlib.sha256(b''.join(v.tobytes() for v in m.parameters().values())).hexdigest()\n"
            "    print(d, repr(loss), h)\n")
    shared, solo = _run(code), _run(code, NAS_EVAL_POOL_SOLO="1")
    assert shared.returncode == 0 and solo.returncode == 0, shared.stderr + solo.stderr
    assert len(shared.stdout.splitlines()) == 3
    assert solo.stdout == shared.stdout


def _levels_agree(isa_level, train, atol=None):
    """train(threads) -> (loss, {name: array}) at every level on 1 and 2 threads: the same
    bits again for a (level, threads), and every level within float32 rounding of the first
    level's on one thread (the loss to rel. 1e-5, each array within atol[name], default 2e-5,
    of its largest value). Returns that first result's arrays."""
    atol = atol or {}
    results = {}
    for level in LEVELS:
        isa_level(level)
        for threads in (1, 2):
            first, again = train(threads), train(threads)
            assert first[0] == again[0], (level, threads)
            for name in first[1]:
                np.testing.assert_array_equal(first[1][name], again[1][name], err_msg=f"{level} {threads} {name}")
            results[level, threads] = first
    base_loss, base = results[LEVELS[0], 1]
    for key, (loss, arrays) in results.items():
        assert loss == pytest.approx(base_loss, rel=1e-5), key
        for name in base:
            scale = np.abs(base[name]).max()
            np.testing.assert_allclose(arrays[name], base[name], rtol=0, atol=atol.get(name, 2e-5) * scale,
                                       err_msg=f"{key} {name}")
    return base


# d = 32: OpenBLAS products; 96: packed panels, rows split; 512: panels, columns split
@pytest.mark.parametrize("d", [32, 96, 512])
def test_each_level_is_deterministic_and_levels_agree(isa_level, d):
    _levels_agree(isa_level, lambda threads: _train(d, threads))


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("d", [96, 512], ids=["rows", "columns"])
def test_split_panels_match_the_reference(isa_level, level, d):
    """Packed panels over 3 workers, the batch rows split (64 <= d < the column split) or the
    state columns (d >= 512): loss, final state and gradients against the float64 reference."""
    isa_level(level)
    nas_eval.set_num_threads(3)
    V, T, B = 23, 5, 7
    arch = nas_eval.Arch.parse(ARCH)
    model = nas_eval.CellLM(arch, V, d, seed=31)
    rng = np.random.default_rng(32)
    params = {k: rng.uniform(-0.15, 0.15, v.shape).astype(np.float32) for k, v in model.parameters().items()}
    model.load_parameters(params)
    p64 = {k: v.astype(np.float64) for k, v in params.items()}
    inputs = rng.integers(0, V, (T, B)).astype(np.int32)
    targets = rng.integers(0, V, (T, B)).astype(np.int32)
    hidden = rng.uniform(-0.5, 0.5, (B, d)).astype(np.float32)
    loss, grads, h = model.loss_and_grad(inputs, targets, hidden)

    def fn(p):
        return reference.forward(p, arch.preds, arch.ops, inputs, targets, hidden)[0]

    ref_loss, ref_h = reference.forward(p64, arch.preds, arch.ops, inputs, targets, hidden)
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    np.testing.assert_allclose(h, ref_h, rtol=1e-4, atol=1e-5)
    for name in ("W0", "W3", "W8", "embedding"):
        g = grads[name]
        for f in rng.choice(g.size, size=3, replace=False):
            idx = np.unravel_index(f, g.shape)
            assert g[idx] == pytest.approx(reference.finite_difference(p64, name, idx, fn),
                                           rel=2e-3, abs=2e-6), (name, idx)


def _train_mixed(d, threads, steps=2):
    nas_eval.set_num_threads(threads)
    model = MixedLM(4, 50, d, seed=5, dropout=0.2, dropouth=0.2, dropoutx=0.1)
    model.alpha = np.random.default_rng(6).normal(0.0, 1.0, model.alpha.shape)
    tokens = np.random.default_rng(7).integers(0, 50, 8 * 13 * (steps + 1))
    data, hidden, loss = batchify(tokens, 8), None, 0.0
    for k in range(steps):
        result = model.train_step(data[12 * k: 12 * k + 12], data[12 * k + 1: 12 * k + 13], hidden,
                                  lr=12.0, clip=0.25, weight_decay=1e-4, tar=1e-3, ar=1e-3)
        loss, hidden = loss + result.loss_sum, result.hidden
    _, grads, _ = model.loss_and_grad(data[:12], data[1:13], None, train=False)
    return loss, {**model.parameters(), "alpha grad": grads["alpha"]}


# d = 40: one whole 32-column panel and a narrow one (its zero-padded copy); 96: three panels
@pytest.mark.parametrize("d", [40, 96])
def test_mixed_cell_is_deterministic_and_levels_agree(isa_level, d):
    """DARTS's mixture loops (csrc/mixed_elementwise.h) at every level: the same bits again
    for a (level, threads), and every level within float32 rounding of the first."""
    base = _levels_agree(isa_level, lambda threads: _train_mixed(d, threads), atol={"alpha grad": 1e-4})
    assert np.abs(base["alpha grad"]).max() > 1e-5  # the alpha gradient is not vacuous
