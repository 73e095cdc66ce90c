"""Weight-sharing super-net (DESIGN §5): one parameter bank serves many architectures.

Sharing granularities (which matrix node i of an architecture uses):
- ``"node"``: one matrix per node position, W_i, whatever its predecessor or op (the paper's);
- ``"edge"``: one matrix per edge j->i, shared over ops (ENAS-style);
- ``"edge_op"``: one matrix per (edge j->i, op) (NAO-style);
- ``"none"``: every architecture of a given set has its own cell matrices W0, W1..Wn (the
  control); only the embedding / tied decoder and its bias are shared.

>>> import nas_eval
>>> space = nas_eval.SearchSpace(2)
>>> net = nas_eval.SuperNet(space, vocab_size=40, hidden=8, sharing="edge", seed=0)
>>> sorted(net.parameters())[:3]
['W0', 'W_1<-0', 'W_2<-0']
"""
import numpy as np

from .model import CellLM, _LMBase, arch_table
from .space import OPS, Arch, SearchSpace

SHARINGS = ("node", "edge", "edge_op", "none")


def _edge(i, j):
    """Index of edge j->i in the order i = 1..n, j = 0..i-1 (the rows of Arch.to_alpha)."""
    return i * (i - 1) // 2 + j


class SuperNet(_LMBase):
    """A bank of cell matrices shared by every architecture of ``space`` (or of ``archs``).

    ``fit_steps`` trains it with one architecture per mini-batch, drawn uniformly or by a
    ``sampler(step, rng) -> Arch``; ``evaluate`` scores architectures with the standalone
    evaluation protocol; ``extract`` gives the standalone model an architecture inherits.
    """

    def __init__(self, space, vocab_size, hidden, sharing="node", seed=0, archs=None,
                 output="mean", **dropouts):
        if not isinstance(space, SearchSpace):
            raise ValueError(f"space must be a nas_eval.SearchSpace, got {type(space).__name__}")
        if sharing not in SHARINGS:
            raise ValueError(f"sharing must be one of {SHARINGS}, got {sharing!r}")
        n = space.nodes
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
        super().__init__(vocab_size, hidden, n_mats, n, seed, output, dropouts, n_w0=n_w0)
        self._rng = np.random.default_rng([self.seed, 0x5A3])
        self._names = self._parameter_slots(n, n_w0)

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
        n = self.space.nodes
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

    def _table(self, arch):
        return arch_table(arch, self.matrices(arch), self.output)

    def _mat_name(self, k):
        n = self.space.nodes
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
        d = self.hidden
        lay = self._core.layout()
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
    def parameters(self):
        """Copies of every bank parameter, keyed by name (see :meth:`matrices`)."""
        return self._named(self._core.arena("params"), self._names)

    def load_parameters(self, params):
        self._load(self._core.arena("params"), self._names, params)

    def sample(self, rng=None):
        """One architecture drawn uniformly from the set (or the space)."""
        rng = self._rng if rng is None else rng
        if self.archs:
            return self.archs[int(rng.integers(len(self.archs)))]
        return self.space.sample(rng)

    def fit_steps(self, tokens, steps, sampler=None, batch_size=64, bptt=35, lr=20.0, clip=0.25,
                  wd=0.0, tar=0.0, ar=0.0, carry_hidden=False, seq_len=None):
        """``steps`` SGD steps, one architecture per mini-batch: ``sampler(step, rng)`` or a
        uniform draw. The carried hidden state is reset whenever the architecture changes
        unless ``carry_hidden`` (what the reference code did). ``seq_len()``, if given, draws
        each step's BPTT length (lr scaled by length / bptt). Returns the mean training
        cross-entropy; ``self.last_archs`` lists the architecture of each step."""
        archs = []

        def table(k):
            arch = self._check(sampler(k, self._rng)) if sampler else self.sample()
            archs.append(arch)
            return self._table(arch), self._w0(arch)

        losses = self._fit(table, tokens, steps, batch_size, bptt, lr, clip, wd=wd, tar=tar, ar=ar,
                           reset_hidden_on_switch=not carry_hidden, seq_len=seq_len)
        self.last_archs = archs
        return float(losses.mean()) if steps else float("nan")

    def evaluate(self, archs, tokens, batch_size=10, bptt=35, progress=False):
        """Validation perplexity of each architecture with the shared weights (the standalone
        evaluation protocol; the hidden state starts from zero for each architecture). An
        architecture whose state blows up with the shared weights gets ``inf``."""
        from tqdm.auto import tqdm

        archs = [self._check(a) for a in archs]
        out = np.empty(len(archs))
        for k, arch in enumerate(tqdm(archs, desc="WS evaluate", disable=not progress, leave=False)):
            loss = self._evaluate((self._table(arch), self._w0(arch)), tokens, batch_size, bptt)
            out[k] = np.exp(loss) if loss < 700 else np.inf  # NaN (inf - inf) compares False too
        return out

    def extract(self, arch):
        """A standalone :class:`CellLM` holding the weights ``arch`` uses in this super-net."""
        arch = self._check(arch)
        params = self._core.arena("params")
        model = CellLM(arch, self.vocab_size, self.hidden, seed=self.seed, output=self.output,
                       **self.dropouts)
        w0_name = "W0" if self.sharing != "none" else f"arch{self._w0(arch)}/W0"
        weights = {"embedding": self._view(params, *self._names["embedding"]).copy(),
                   "W0": self._view(params, *self._names[w0_name]).copy(),
                   "decoder_bias": self._view(params, *self._names["decoder_bias"]).copy()}
        for i, k in enumerate(self.matrices(arch), start=1):
            weights[f"W{i}"] = self._view(params, *self._mat_slot(k)).copy()
        model.load_parameters(weights)
        return model
