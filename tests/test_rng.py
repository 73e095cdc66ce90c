"""nas_eval.rng computes exactly the draws of the C core's counter-based RNG (csrc/rng.h), and
every draw of a run is a pure function of (seed, stream, counter, index)."""
import numpy as np
import pytest

from nas_eval import rng
from nas_eval.engine.native import core


@pytest.mark.parametrize("seed, stream, counter", [(0, 1, 0), (7, rng.STREAM_BPTT, 123),
                                                   (2**63 + 5, rng.STREAM_ARCH, 2**40), (3, 19, 1)])
def test_python_draws_equal_the_c_core_bit_for_bit(seed, stream, counter):
    uniform, normal = core.rng_draws(seed, stream, counter, 64)
    key = rng.key(seed, stream, counter)
    assert [rng.uniform(key, i) for i in range(64)] == uniform.astype(float).tolist()
    np.testing.assert_allclose([rng.normal(key, i) for i in range(64)], normal, rtol=1e-15, atol=1e-15)


def test_draws_behave_like_a_generator_and_depend_only_on_their_key():
    a, b = rng.Draws(1, rng.STREAM_ARCH, 5), rng.Draws(1, rng.STREAM_ARCH, 5)
    xs = a.integers(0, 7, size=1000)
    assert xs.tolist() == b.integers(0, 7, size=1000).tolist()
    assert set(xs.tolist()) == set(range(7))
    assert abs(np.mean(xs) - 3.0) < 0.3
    assert rng.Draws(1, rng.STREAM_ARCH, 6).integers(0, 7, size=50).tolist() != xs[:50].tolist()
    assert 0.0 <= rng.Draws(2, 3).random() < 1.0
    with pytest.raises(ValueError, match="empty range"):
        a.integers(3, 3)


def test_uniform_and_normal_have_their_moments():
    key = rng.key(11, rng.STREAM_CANDIDATES, 0)
    u = np.array([rng.uniform(key, i) for i in range(20000)])
    g = np.array([rng.normal(key, i) for i in range(20000)])
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.var() - 1 / 12) < 0.005
    assert abs(g.mean()) < 0.03 and abs(g.std() - 1) < 0.03
