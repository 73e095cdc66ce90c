"""The standalone recurrent-cell language model (DESIGN §3) over the C core.

>>> import nas_eval
>>> space = nas_eval.SearchSpace(2)
>>> model = nas_eval.CellLM(space[5], vocab_size=50, hidden=16, seed=0)
>>> sorted(model.parameters())
['W0', 'W1', 'W2', 'decoder_bias', 'embedding']
"""
import numpy as np

from ._native import core
from .space import OPS, Arch

# AWD-LSTM / DARTS names of the five dropouts (DESIGN §4) -> the core's keywords
DROPOUT_NAMES = {
    "dropout": "dropout_out",   # locked mask on h_t before the decoder
    "dropouth": "dropout_h",    # m_h on every recurrent matrix input
    "dropoutx": "dropout_x",    # m_x on x_t inside the cell
    "dropouti": "dropout_in",   # locked mask on the embedded sequence
    "dropoute": "dropout_emb",  # whole rows (word types) of the embedding
}

OUTPUTS = ("mean", "loose_ends")


def batchify(tokens, batch_size):
    """(N,) stream -> (N // B, B) int32, column j a contiguous slice (pytorch `batchify`)."""
    tokens = np.asarray(tokens)
    if tokens.ndim != 1:
        raise ValueError(f"a token stream must be 1-D, got shape {tokens.shape}")
    if not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"token ids must be integers, got dtype {tokens.dtype}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    n = len(tokens) // batch_size
    if n < 2:
        raise ValueError(
            f"a stream of {len(tokens)} tokens is too short for batch_size {batch_size} "
            "(need at least 2 rows)")
    return np.ascontiguousarray(tokens[: n * batch_size].reshape(batch_size, n).T, dtype=np.int32)


def check_dropouts(dropouts):
    unknown = set(dropouts) - set(DROPOUT_NAMES)
    if unknown:
        raise ValueError(f"unknown dropout(s) {sorted(unknown)}; expected some of {sorted(DROPOUT_NAMES)}")
    out = {}
    for name, value in dropouts.items():
        value = float(value)
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
        out[DROPOUT_NAMES[name]] = value
    return out


def arch_table(arch, mats, output="mean"):
    """The (4, n) int32 table the core reads: preds, op indices, matrix per node, output flags."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    n = arch.n_nodes
    out = np.ones(n, np.int32)
    if output == "loose_ends":
        out[:] = 0
        out[[i - 1 for i in arch.loose_ends()]] = 1
    return np.array([arch.preds, [OPS.index(op) for op in arch.ops], mats, out], np.int32)


class _Stream:
    """A batchified token stream with a cursor and the hidden state carried along it."""

    def __init__(self, tokens, batch_size):
        self.source = tokens
        self.data = batchify(tokens, batch_size)
        self.pos = 0
        self.hidden = None

    def next_segment(self, seq_len):
        """(inputs, targets) of up to seq_len rows; wraps to the start (and resets the
        hidden state, as at an epoch boundary) when the stream is used up."""
        if self.pos >= len(self.data) - 1:
            self.pos, self.hidden = 0, None
        T = min(seq_len, len(self.data) - 1 - self.pos)
        seg = self.data[self.pos : self.pos + T + 1]
        self.pos += T
        return seg[:-1], seg[1:]


class _LMBase:
    """What every model over the core shares: the arena views, named parameters, SGD steps
    and the evaluation protocol. Subclasses say how architectures map to node matrices."""

    def __init__(self, vocab_size, hidden, n_mats, max_nodes, seed, output, dropouts, n_w0=1):
        for name, value in (("vocab_size", vocab_size), ("hidden", hidden)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        self.vocab_size, self.hidden, self.seed = int(vocab_size), int(hidden), int(seed)
        self.output = output
        self.dropouts = {k: float(v) for k, v in dropouts.items()}
        self._core = core.Model(self.vocab_size, self.hidden, n_mats, max_nodes, self.seed,
                                n_w0=n_w0, **check_dropouts(dropouts))
        lay = self._core.layout()
        V, d = self.vocab_size, self.hidden
        # name -> (offset, shape) inside each arena
        self._slots = {"embedding": (lay["embedding"], (V, d)), "W0": (lay["w0"], (2 * d, 2 * d))}
        self._mat_offset = lay["mats"]
        self._slots["decoder_bias"] = (lay["bias"], (V,))
        self._stream = None

    # --- arena access -------------------------------------------------------------
    def _view(self, arena, offset, shape):
        size = int(np.prod(shape))
        return arena[offset : offset + size].reshape(shape)

    def _mat_slot(self, k):
        d = self.hidden
        return self._mat_offset + k * d * 2 * d, (d, 2 * d)

    def _named(self, arena, names):
        return {name: self._view(arena, *names[name]).copy() for name in names}

    def _load(self, arena, names, params):
        missing = sorted(set(names) - set(params))
        extra = sorted(set(params) - set(names))
        if missing or extra:
            raise ValueError(f"parameter names differ: missing {missing}, unexpected {extra}")
        checked = {}
        for name, (offset, shape) in names.items():
            value = np.asarray(params[name])
            if value.shape != tuple(shape):
                raise ValueError(f"parameter {name} has shape {value.shape}, expected {tuple(shape)}")
            if value.dtype != np.float32:
                raise ValueError(f"parameter {name} has dtype {value.dtype}, expected float32")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"parameter {name} holds non-finite values")
            checked[name] = value
        for name, value in checked.items():  # write only after every check passed
            self._view(arena, *names[name])[...] = value

    # --- training and evaluation --------------------------------------------------
    def _evaluate(self, cell, tokens, batch_size, bptt):
        """cell = (architecture table, W0 index)"""
        if isinstance(bptt, bool) or not isinstance(bptt, (int, np.integer)) or bptt < 1:
            raise ValueError(f"bptt must be a positive integer, got {bptt!r}")
        table, w0 = cell
        loss, count = self._core.evaluate(table, batchify(tokens, batch_size), int(bptt), w0=w0)
        return loss / count

    def _fit(self, cells, tokens, steps, batch_size, bptt, lr, clip, wd=0.0, tar=0.0, ar=0.0,
             asgd=False, reset_hidden_on_switch=True, seq_len=None):
        """SGD steps of truncated BPTT along the stream; cells(step) gives the
        (architecture table, W0 index) of each step and seq_len() the BPTT length of each
        step (default: always bptt). Returns the per-step mean losses."""
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
        for name, value in (("lr", lr), ("clip", clip), ("wd", wd), ("tar", tar), ("ar", ar)):
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")
        stream = self._stream
        if stream is None or stream.source is not tokens or stream.data.shape[1] != batch_size:
            stream = self._stream = _Stream(tokens, batch_size)
        losses = np.empty(steps)
        previous = None
        for k in range(steps):
            table, w0 = cells(k)
            if (reset_hidden_on_switch and previous is not None
                    and (w0 != previous[1] or not np.array_equal(table, previous[0]))):
                stream.hidden = None
            previous = table, w0
            inputs, targets = stream.next_segment(seq_len() if seq_len else bptt)
            loss, _, _, n, stream.hidden = self._core.step(
                table, inputs, targets, stream.hidden, lr=lr * len(inputs) / bptt, clip=clip,
                wd=wd, tar=tar, ar=ar, train=True, backward=True, update=True, asgd=asgd, w0=w0)
            losses[k] = loss / n
        return losses


class CellLM(_LMBase):
    """One architecture trained standalone as a word-level language model.

    Parameters are named and shaped as in DESIGN §3: ``embedding`` (V, d) — also the tied
    decoder weight — ``W0`` (2d, 2d), ``W1``..``Wn`` (d, 2d) and ``decoder_bias`` (V,).
    Dropouts use the AWD/DARTS names ``dropout``, ``dropouth``, ``dropoutx``, ``dropouti``,
    ``dropoute`` (all 0 by default); ``output`` is ``"mean"`` (h_t = mean of all nodes) or
    ``"loose_ends"`` (mean of the nodes no other node reads, as ENAS does).
    """

    def __init__(self, arch, vocab_size, hidden, seed=0, output="mean", **dropouts):
        if isinstance(arch, str):
            arch = Arch.parse(arch)
        if not isinstance(arch, Arch):
            raise ValueError(f"arch must be a nas_eval.Arch or its string form, got {type(arch).__name__}")
        n = arch.n_nodes
        super().__init__(vocab_size, hidden, n, n, seed, output, dropouts)
        self.arch = arch
        self._table = arch_table(arch, list(range(n)), output)
        for i in range(1, n + 1):
            self._slots[f"W{i}"] = self._mat_slot(i - 1)
        order = ["embedding", "W0"] + [f"W{i}" for i in range(1, n + 1)] + ["decoder_bias"]
        self._slots = {name: self._slots[name] for name in order}

    def __repr__(self):
        return (f"CellLM({str(self.arch)!r}, vocab_size={self.vocab_size}, hidden={self.hidden}, "
                f"seed={self.seed})")

    def parameters(self):
        """Copies of the parameters as float32 arrays, keyed by name."""
        return self._named(self._core.arena("params"), self._slots)

    def load_parameters(self, params):
        """Replace every parameter; names, shapes and dtypes must match exactly."""
        self._load(self._core.arena("params"), self._slots, params)

    def evaluate(self, tokens, batch_size=10, bptt=35):
        """Mean cross-entropy (nats) over the stream: batchify into ``batch_size`` columns,
        windows of ``bptt`` with the hidden state carried from zero, no dropout."""
        return self._evaluate((self._table, 0), tokens, batch_size, bptt)

    def loss_and_grad(self, inputs, targets, hidden=None, tar=0.0, ar=0.0):
        """Loss (mean cross-entropy + TAR/AR penalties), gradients and the next hidden state
        for one (T, B) segment, without dropout and without changing the parameters."""
        inputs, targets = np.asarray(inputs), np.asarray(targets)
        if inputs.ndim != 2 or inputs.shape != targets.shape:
            raise ValueError(f"inputs and targets must be (T, B) arrays of one shape, got "
                             f"{inputs.shape} and {targets.shape}")
        loss, reg, _, n, h = self._core.step(self._table, inputs, targets, hidden, tar=tar, ar=ar,
                                             train=False, backward=True, update=False)
        return loss / n + reg, self._named(self._core.arena("grads"), self._slots), h

    def fit_steps(self, tokens, steps, batch_size=64, bptt=35, lr=20.0, clip=0.25, wd=0.0,
                  tar=0.0, ar=0.0):
        """``steps`` SGD steps of truncated BPTT (fixed length ``bptt``) along the stream with
        this model's dropouts; successive calls continue along the same stream. Returns the
        mean training cross-entropy of those steps."""
        losses = self._fit(lambda k: (self._table, 0), tokens, steps, batch_size, bptt, lr, clip,
                           wd=wd, tar=tar, ar=ar)
        return float(losses.mean()) if steps else float("nan")
