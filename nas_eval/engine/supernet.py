"""Weight-sharing super-net (docs/design.md §5): one parameter bank serves many architectures.

Sharing granularities (which matrix node i of an architecture uses):
- ``"node"``: one matrix per node position, W_i, whatever its predecessor or op (the paper's);
- ``"edge"``: one matrix per edge j->i, shared over ops (ENAS-style);
- ``"edge_op"``: one matrix per (edge j->i, op) (NAO-style);
- ``"none"``: every architecture of a given set has its own cell matrices W0, W1..Wn (the
  control); only the embedding / tied decoder and its bias are shared.

>>> import nas_eval
>>> space = nas_eval.SearchSpace(2)
>>> net = nas_eval.SuperNet(space, vocab_size=40, hidden_size=8, sharing="edge", seed=0)
>>> sorted(net.parameters())[:3]
['W0', 'W_1<-0', 'W_2<-0']
"""
import math

import numpy as np

from ..rng import STREAM_ARCH, Draws
from ..space import OPS, SHARINGS, Arch, SearchSpace
from .model import CellLM, _LMBase, arch_table, check_hidden_size


def _edge(i, j):
    """Index of edge j->i in the order i = 1..n, j = 0..i-1 (the rows of Arch.to_alpha)."""
    return i * (i - 1) // 2 + j


class SuperNet(_LMBase):
    """A bank of cell matrices shared by every architecture of ``space`` (or of ``archs``).

    The one training loop (:class:`nas_eval.engine.Trainer`, or ``fit_steps``) trains it with
    one architecture per mini-batch, drawn uniformly (:meth:`uniform_sampler`) or by a policy's
    ``sampler(step) -> Arch``; :meth:`perplexity` scores architectures with the standalone
    evaluation protocol; :meth:`extract` gives the standalone model an architecture inherits;
    :meth:`budget` counts the work done (steps, tokens trained on, tokens scored).
    """

    def __init__(self, space, vocab_size, hidden_size=None, sharing="node", seed=0, archs=None,
                 output="mean", *, hidden=None, **dropouts):
        if not isinstance(space, SearchSpace):
            raise ValueError(f"space must be a nas_eval.SearchSpace, got {type(space).__name__}")
        if sharing not in SHARINGS:
            raise ValueError(f"sharing must be one of {SHARINGS}, got {sharing!r}")
        n = space.n_nodes
        self.space, self.sharing = space, sharing
        if archs is not None:
            archs = [Arch.parse(a) if isinstance(a, str) else a for a in archs]
            for a in archs:
                if a not in space:
                    raise ValueError(f"architecture {a} is not in {space!r}")
            if len(set(archs)) != len(archs):
                raise ValueError("archs contains duplicates")
        if sharing == "none" and not archs:
            raise ValueError("sharing='none' needs the set of architectures: pass archs=[...]")
        self.archs = archs
        self._arch_index = {a: k for k, a in enumerate(archs)} if archs else None
        n_edges = n * (n + 1) // 2
        n_mats = {"node": n, "edge": n_edges, "edge_op": n_edges * len(OPS),
                  "none": n * len(archs or ())}[sharing]
        n_w0 = len(archs) if sharing == "none" else 1
        super().__init__(vocab_size, check_hidden_size(hidden_size, hidden), n_mats, n, seed, output,
                         dropouts, n_w0=n_w0)
        self._samples = 0  # draws of sample() without a generator
        self._slots = self._parameter_slots(n, n_w0)
        self._budget = {"supernet_steps": 0, "train_tokens": 0, "valid_tokens": 0}

    # --- which matrices an architecture uses ------------------------------------------
    def _check(self, arch):
        if isinstance(arch, str):
            arch = Arch.parse(arch)
        if not isinstance(arch, Arch):
            raise ValueError(f"expected a nas_eval.Arch, got {type(arch).__name__}")
        if self._arch_index is not None and arch not in self._arch_index:
            raise ValueError(f"architecture {arch} is not in this super-net's set of {len(self.archs)}")
        if arch not in self.space:
            raise ValueError(f"architecture {arch} is not in {self.space!r}")
        return arch

    def matrices(self, arch):
        """Bank index of the matrix each node of ``arch`` uses (node 1 first)."""
        arch = self._check(arch)
        n = self.space.n_nodes
        if self.sharing == "node":
            return list(range(n))
        if self.sharing == "edge":
            return [_edge(i, p) for i, p in enumerate(arch.preds, start=1)]
        if self.sharing == "edge_op":
            return [_edge(i, p) * len(OPS) + OPS.index(op)
                    for i, (p, op) in enumerate(zip(arch.preds, arch.ops), start=1)]
        k = self._arch_index[arch]
        return [k * n + i for i in range(n)]

    def _w0(self, arch):
        return self._arch_index[arch] if self.sharing == "none" else 0

    def _cell(self, arch):
        if arch is None:
            raise ValueError("a super-net step needs an architecture (arch=...)")
        arch = self._check(arch)
        return arch_table(arch, self.matrices(arch), self.output), self._w0(arch)

    def _mat_name(self, k):
        n = self.space.n_nodes
        if self.sharing == "node":
            return f"W{k + 1}"
        if self.sharing in ("edge", "edge_op"):
            e, op = (k, None) if self.sharing == "edge" else divmod(k, len(OPS))
            i = next(i for i in range(1, n + 1) if _edge(i, 0) <= e < _edge(i + 1, 0))
            name = f"W_{i}<-{e - _edge(i, 0)}"
            return name if op is None else f"{name}:{OPS[op]}"
        a, i = divmod(k, n)
        return f"arch{a}/W{i + 1}"

    def _parameter_slots(self, n, n_w0):
        d = self.hidden_size
        lay = self._lm.layout()
        slots = {"embedding": (lay["embedding"], (self.vocab_size, d))}
        for a in range(n_w0):
            name = f"arch{a}/W0" if self.sharing == "none" else "W0"
            slots[name] = (lay["w0"] + a * 4 * d * d, (2 * d, 2 * d))
        n_mats = (lay["bias"] - lay["mats"]) // (2 * d * d)
        self._mat_offset = lay["mats"]
        for k in range(n_mats):
            slots[self._mat_name(k)] = self._mat_slot(k)
        slots["decoder_bias"] = (lay["bias"], (self.vocab_size,))
        return slots

    # --- API ------------------------------------------------------------------------------
    def sample(self, rng=None):
        """One architecture drawn uniformly from the set (or the space), from ``rng`` or
        else from this super-net's own draws (docs/design.md §12, stream 32)."""
        if rng is None:
            rng, self._samples = Draws(self.seed, STREAM_ARCH, self._samples), self._samples + 1
        if self.archs:
            return self.archs[int(rng.integers(len(self.archs)))]
        return self.space.sample(rng)

    def uniform_sampler(self):
        """``sampler(step) -> Arch`` drawing uniformly from the set (or the space): the WS
        super-net's training distribution (docs/design.md §5). The draw of step k is a pure
        function of (seed, k), so a resumed run draws the same architectures."""
        return lambda step: self.sample(Draws(self.seed, STREAM_ARCH, step))

    def budget(self):
        """Work done so far: super-net steps, training tokens, validation tokens scored."""
        return dict(self._budget)

    def train_step(self, inputs, targets, hidden=None, *, lr, clip=0.25, weight_decay=0.0, tar=0.0,
                   ar=0.0, arch=None, asgd=False):
        r = super().train_step(inputs, targets, hidden, lr=lr, clip=clip, weight_decay=weight_decay,
                               tar=tar, ar=ar, arch=arch, asgd=asgd)
        self._budget["supernet_steps"] += 1
        self._budget["train_tokens"] += int(r.tokens)
        return r

    def fit_steps(self, tokens, steps, sampler=None, batch_size=64, bptt=35, lr=20.0, clip=0.25,
                  weight_decay=0.0, tar=0.0, ar=0.0, carry_hidden=False, *, wd=None):
        """``steps`` SGD steps, one architecture per mini-batch: ``sampler(step)`` or a uniform
        draw. The carried hidden state is reset whenever the architecture changes unless
        ``carry_hidden`` (what the reference code did). Returns the mean training
        cross-entropy; ``self.last_archs`` lists the architecture of each step."""
        return self._fit_steps(tokens, steps, sampler or self.uniform_sampler(), batch_size, bptt, lr,
                               clip, weight_decay, tar, ar, carry_hidden, wd)

    def loss(self, archs, tokens, batch_size=10, bptt=35, progress=False):
        """Mean validation cross-entropy (nats) of each architecture with the shared weights
        (the standalone evaluation protocol; the hidden state starts from zero for each)."""
        from tqdm.auto import tqdm

        archs = [self._check(a) for a in archs]
        out = np.empty(len(archs))
        for k, arch in enumerate(tqdm(archs, desc="WS evaluate", disable=not progress, leave=False)):
            out[k] = self._loss(self._cell(arch), tokens, batch_size, bptt)
            self._budget["valid_tokens"] += (len(tokens) // batch_size - 1) * batch_size
        return out

    def perplexity(self, archs, tokens, batch_size=10, bptt=35, progress=False):
        """Validation perplexity of each architecture with the shared weights; an
        architecture whose state blows up with the shared weights gets ``inf``."""
        loss = self.loss(archs, tokens, batch_size, bptt, progress)
        # NaN (inf - inf) compares False too
        return np.array([np.exp(v) if v < 700 else np.inf for v in loss])

    def extract(self, arch):
        """A standalone :class:`CellLM` holding the weights ``arch`` uses in this super-net
        (and its :attr:`hidden_clip`)."""
        arch = self._check(arch)
        params = self._lm.arena("params")
        model = CellLM(arch, self.vocab_size, self.hidden_size, seed=self.seed, output=self.output,
                       **self.dropouts)
        model.hidden_clip = self.hidden_clip
        w0_name = "W0" if self.sharing != "none" else f"arch{self._w0(arch)}/W0"
        weights = {"embedding": self._view(params, *self._slots["embedding"]).copy(),
                   "W0": self._view(params, *self._slots[w0_name]).copy(),
                   "decoder_bias": self._view(params, *self._slots["decoder_bias"]).copy()}
        for i, k in enumerate(self.matrices(arch), start=1):
            weights[f"W{i}"] = self._view(params, *self._mat_slot(k)).copy()
        model.load_parameters(weights)
        return model

    def state(self):
        """The model's state (see :meth:`CellLM.state`) plus the budget counters and the
        count of :meth:`sample` draws."""
        return {**super().state(), "budget": dict(self._budget), "samples": self._samples}

    def restore(self, state):
        super().restore(state)
        self._budget = dict(state["budget"])
        self._samples = int(state["samples"])
