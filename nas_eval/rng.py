"""The package's one random-number scheme (docs/design.md §12), shared with the C core.

Every draw of a run is a pure function of ``(seed, stream id, counter, index)``: the key
``key(seed, stream, counter)`` mixes the run's seed, the id of the kind of draw and a counter
(a step, an epoch, a round), and ``uniform(key, i)`` / ``normal(key, i)`` / ``index(key, i, n)``
give the i-th number under that key. ``csrc/rng.h`` computes exactly the same numbers (a test
checks it bit for bit), so a seed fixes a run on any machine, whatever the thread count or
the order in which the parts of a run ask for their numbers.

Stream ids (one per kind of draw, so no two kinds ever share numbers):

=====  ====================================================================
1-15   C core language model: 1 initial weights, 2-6 the dropout masks
       (x, h, output, embedding, input)
7      BPTT segment lengths of the training loop (one key per step)
16-19  ENAS controller (all in the C core): 16 initialisation; 17 shared-phase, 18
       controller-phase and 19 final-pick architectures, each stream counting the
       architectures drawn from it
20-23  DARTS
24-27  NAO: 24 controller initialisation, 25 encoder dropout, 26 controller epoch
       shuffles (all in the C core); 27 the architecture pool (counter 0 the initial
       pool, counter r the random architectures added in round r)
32     architectures drawn uniformly for a super-net's mini-batches (one key per step)
33     the random baseline architecture r_s of search seed s
34     candidate sets scored by weight-sharing policies
=====  ====================================================================

Analysis-side resampling (bootstrap CIs, permutation tests) is not part of a run: it uses
NumPy's PCG64 with the explicit ``seed=`` of each metric.

>>> d = Draws(seed=0, stream=STREAM_ARCH, counter=0)
>>> 0 <= d.integers(0, 4) < 4
True
"""
import math

import numpy as np

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
STREAM_MULT = 0xD1B54A32D192ED03

STREAM_INIT = 1
STREAM_BPTT = 7
STREAM_ARCH = 32
STREAM_RANDOM_BASELINE = 33
STREAM_CANDIDATES = 34
STREAM_NAO_POOL = 27
STREAM_NAO_DROP = 28   # NAOController.fit's epoch shuffles when it drops partial batches


def mix64(z):
    """SplitMix64's finaliser (csrc/rng.h rng_mix64)."""
    z = (z + GOLDEN) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def key(seed, stream, counter):
    """The key of one group of draws (csrc/rng.h rng_key)."""
    seed, stream, counter = int(seed) & MASK, int(stream) & MASK, int(counter) & MASK
    return mix64((mix64(seed ^ ((stream * STREAM_MULT) & MASK)) + counter) & MASK)


def uniform(k, i):
    """Uniform in [0, 1) with 24 random bits, exact in float32 (csrc/rng.h rng_uniform)."""
    return (mix64((k + i * GOLDEN) & MASK) >> 40) * (1.0 / 16777216.0)


def normal(k, i):
    """Standard normal by Box-Muller (csrc/rng.h rng_normal)."""
    u1 = ((mix64((k + 2 * i * GOLDEN) & MASK) >> 11) + 0.5) * (1.0 / 9007199254740992.0)
    u2 = (mix64((k + (2 * i + 1) * GOLDEN) & MASK) >> 11) * (1.0 / 9007199254740992.0)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(6.283185307179586 * u2)


def index(k, i, n):
    """Uniform integer in [0, n): the 64-bit draw modulo n (bias below n / 2**64)."""
    return mix64((k + i * GOLDEN) & MASK) % int(n)


class Draws:
    """Successive numbers under one key, with the subset of ``numpy.random.Generator``'s
    interface the package uses (``integers``, ``random``, ``normal``), so functions that
    take a generator (``SearchSpace.sample``) take these too."""

    def __init__(self, seed, stream, counter=0):
        self.key = key(seed, stream, counter)
        self.i = 0

    def _next(self):
        i, self.i = self.i, self.i + 1
        return i

    def integers(self, low, high=None, size=None):
        if high is None:
            low, high = 0, low
        span = int(high) - int(low)
        if span < 1:
            raise ValueError(f"empty range [{low}, {high})")
        if size is None:
            return int(low) + index(self.key, self._next(), span)
        return np.array([int(low) + index(self.key, self._next(), span) for _ in range(int(size))],
                        dtype=np.int64)

    def random(self):
        return uniform(self.key, self._next())

    def normal(self, loc=0.0, scale=1.0):
        return loc + scale * normal(self.key, self._next())
