"""The standalone recurrent-cell language model (docs/design.md §3) over the C core.

>>> import nas_eval
>>> space = nas_eval.SearchSpace(2)
>>> model = nas_eval.CellLM(space[5], vocab_size=50, hidden_size=16, seed=0)
>>> sorted(model.parameters())
['W0', 'W1', 'W2', 'decoder_bias', 'embedding']
"""
import math
import warnings
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np

from ..config import MAX_PENALTY
from ..space import OPS, Arch
from .loop import batchify  # noqa: F401 (lives in loop.py so that the loop need not import model)
from .native import core

# AWD-LSTM / DARTS names of the five dropouts (docs/design.md §4) -> the core's keywords
DROPOUT_NAMES = {
    "dropout": "dropout_out",   # locked mask on h_t before the decoder
    "dropouth": "dropout_h",    # m_h on every recurrent matrix input
    "dropoutx": "dropout_x",    # m_x on x_t inside the cell
    "dropouti": "dropout_in",   # locked mask on the embedded sequence
    "dropoute": "dropout_emb",  # whole rows (word types) of the embedding
}

OUTPUTS = ("mean", "loose_ends")


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


def check_hidden_size(hidden_size, hidden):
    """``hidden_size`` (or the deprecated ``hidden=``) as a positive int."""
    if hidden is not None:
        warnings.warn("hidden= is deprecated; use hidden_size=", DeprecationWarning, stacklevel=3)
        hidden_size = hidden if hidden_size is None else hidden_size
    if hidden_size is None:
        raise ValueError("hidden_size (d, the state and embedding size) is required")
    return hidden_size


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        kind = "a positive integer" if low == 1 else "a non-negative integer"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return int(value)


def _check_rate(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_penalty(name, value):
    """A TAR/AR coefficient: a rate no larger than config.MAX_PENALTY."""
    value = _check_rate(name, value)
    if value > MAX_PENALTY:
        raise ValueError(f"{name} must be at most {MAX_PENALTY:g} (AWD-LSTM uses 1 and 2), got {value!r}: "
                         f"the penalty would overflow float32")
    return value


def _segment(inputs, targets, what=""):
    """A (T, B) segment: ``inputs`` and ``targets`` as arrays of one 2-D shape (``what``
    prefixes their names in the error, e.g. "train_")."""
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    if inputs.ndim != 2 or inputs.shape != targets.shape:
        raise ValueError(f"{what}inputs and {what}targets must be (T, B) arrays of one shape, got "
                         f"{inputs.shape} and {targets.shape}")
    return inputs, targets


class StepResult(NamedTuple):
    """What one training step of a model returns."""
    loss_sum: float   # summed token cross-entropy (nats) of the segment
    tokens: int
    grad_norm: float  # global gradient norm before clipping (non-finite: the update was skipped)
    hidden: np.ndarray  # the state carried into the next segment


class _LMBase:
    """What every model over the core shares: the arena, named parameters, one training step,
    the evaluation protocol, and the state a checkpoint needs. Subclasses say how
    architectures map to node matrices (``_cell(arch)``); the DARTS mixed cell
    (:class:`~nas_eval.engine.MixedLM`) is the same core model with the mixed cell
    (``_core_type`` ``"MixedModel"``, ``core_options`` its ``batch_norm``)."""

    _core_type = "Model"  # the class of the core extension (native.core) that holds the weights
    _grad_options = {}    # extra switches of a backward pass (the mixed cell: d loss / d alpha)

    def __init__(self, vocab_size, hidden_size, n_mats, max_nodes, seed, output, dropouts, n_w0=1,
                 **core_options):
        vocab_size = _check_int("vocab_size", vocab_size, 1)
        hidden_size = _check_int("hidden_size", hidden_size, 1)
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        self.vocab_size, self.hidden_size, self.seed = vocab_size, hidden_size, int(seed)
        self.output = output
        self.dropouts = {k: float(v) for k, v in dropouts.items()}
        self._lm = getattr(core, self._core_type)(self.vocab_size, self.hidden_size, n_mats, max_nodes, self.seed,
                                                  n_w0=n_w0, **check_dropouts(dropouts), **core_options)
        lay = self._lm.layout()
        V, d = self.vocab_size, self.hidden_size
        # name -> (offset, shape) inside each arena
        self._slots = {"embedding": (lay["embedding"], (V, d)), "W0": (lay["w0"], (2 * d, 2 * d))}
        self._mat_offset = lay["mats"]
        self._slots["decoder_bias"] = (lay["bias"], (V,))
        self._trainer = None  # the loop behind fit_steps, kept so calls continue the stream

    @property
    def hidden(self):
        warnings.warn("hidden is deprecated; use hidden_size", DeprecationWarning, stacklevel=2)
        return self.hidden_size

    # --- arena access -------------------------------------------------------------
    def _view(self, arena, offset, shape):
        size = int(np.prod(shape))
        return arena[offset : offset + size].reshape(shape)

    def _mat_slot(self, k):
        d = self.hidden_size
        return self._mat_offset + k * d * 2 * d, (d, 2 * d)

    def _named(self, arena, names):
        return {name: self._view(arena, *names[name]).copy() for name in names}

    def parameters(self):
        """Copies of the parameters as float32 arrays, keyed by name."""
        return self._named(self._lm.arena("params"), self._slots)

    def load_parameters(self, params):
        """Replace every parameter; names, shapes and dtypes must match exactly."""
        self._load(self._lm.arena("params"), self._slots, params)

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

    # --- flat weights, averaging and state (the training loop and checkpoints) ----------
    def weights(self):
        """A flat float32 copy of every parameter (the arena, in the core's layout)."""
        return self._lm.arena("params").copy()

    def set_weights(self, flat):
        """Replace every parameter from a flat array made by :meth:`weights`."""
        flat = np.asarray(flat)
        arena = self._lm.arena("params")
        if flat.shape != arena.shape or flat.dtype != np.float32:
            raise ValueError(f"flat weights must be float32 of shape {arena.shape}, got "
                             f"{flat.dtype} {flat.shape}")
        arena[:] = flat

    @property
    def hidden_clip(self):
        """The paper code's hidden-norm clipping (nas-landmarkreg ``darts_model.py``,
        ``handle_hidden_mode == 'NORM'``): when > 0, after every time step each row of h_t
        whose L2 norm exceeds it is rescaled to that norm by a constant factor (the gradient
        passes through the factor, not the norm), in training and in evaluation; 0 (the
        default): off. The discrete cell only (a super-net or a standalone cell)."""
        return self._lm.hidden_clip

    @hidden_clip.setter
    def hidden_clip(self, value):
        self._lm.hidden_clip = _check_rate("hidden_clip", value)

    @property
    def step_count(self):
        """Training steps taken (they key the dropout masks)."""
        return self._lm.step_count

    @property
    def averaging(self):
        """Whether averaged SGD (NT-ASGD) has started."""
        return self._lm.arena("avg") is not None

    def start_averaging(self):
        """Start the running average of the weights (as torch.optim.ASGD with t0 = 0)."""
        self._lm.start_averaging()

    def averaged_weights(self):
        """A flat copy of the ASGD average (None before averaging starts)."""
        avg = self._lm.arena("avg")
        return None if avg is None else avg.copy()

    @contextmanager
    def using_average(self):
        """Within the block the model holds the ASGD average (if averaging), then its own
        weights again: evaluation with averaged weights, as AWD-LSTM does."""
        if not self.averaging:
            yield self
            return
        params = self._lm.arena("params")
        current = params.copy()
        params[:] = self._lm.arena("avg")
        try:
            yield self
        finally:
            params[:] = current

    def state(self):
        """Everything that decides the model's next steps: weights, the ASGD average and its
        count, and the step counter that keys the dropout masks (NumPy arrays and ints)."""
        return {"weights": self.weights(), "average": self.averaged_weights(),
                "average_count": int(self._lm.avg_count), "step_count": int(self._lm.step_count)}

    def restore(self, state):
        """Put back a :meth:`state`: continuing then is bitwise identical to never stopping."""
        self.set_weights(state["weights"])
        if state["average"] is not None:
            self._lm.start_averaging()
            avg = self._lm.arena("avg")
            if np.shape(state["average"]) != avg.shape:
                raise ValueError("the saved ASGD average does not fit this model")
            avg[:] = state["average"]
            self._lm.avg_count = int(state["average_count"])
        self._lm.step_count = int(state["step_count"])

    # --- one step and the evaluation protocol ------------------------------------------
    def train_step(self, inputs, targets, hidden=None, *, lr, clip=0.25, weight_decay=0.0, tar=0.0,
                   ar=0.0, arch=None, asgd=False):
        """One SGD step of truncated BPTT on a (T, B) segment with this model's dropouts:
        forward, backward, gradient clipping to ``clip``, the update (and the ASGD average
        when ``asgd``, which needs :meth:`start_averaging` first). A non-finite loss or gradient
        skips the update. ``arch`` names the architecture for models that hold several (a
        super-net)."""
        for name, value in (("lr", lr), ("clip", clip), ("weight_decay", weight_decay), ("tar", tar), ("ar", ar)):
            _check_rate(name, value)
        table, w0 = self._cell(arch)
        loss, _, norm, n, h = self._lm.step(
            table, inputs, targets, hidden, lr=lr, clip=clip, wd=weight_decay, tar=tar, ar=ar,
            train=True, backward=True, update=True, asgd=asgd, w0=w0)
        return StepResult(loss, n, norm, h)

    def forward_backward(self, inputs, targets, hidden=None, *, train=False, tar=0.0, ar=0.0, arch=None):
        """One forward and backward pass on a (T, B) segment without changing the weights;
        ``train=True`` draws this step's dropout masks (:meth:`dropout_masks`) and advances
        the step counter that keys them. Returns ``(loss_sum, reg, grad_norm, tokens,
        hidden)``: summed cross-entropy, the TAR/AR penalty, the gradient norm; the
        gradients themselves are in :meth:`gradients`."""
        tar, ar = _check_penalty("tar", tar), _check_penalty("ar", ar)
        inputs, targets = _segment(inputs, targets)
        table, w0 = self._cell(arch)
        return self._lm.step(table, inputs, targets, hidden, tar=tar, ar=ar, train=train,
                             backward=True, update=False, w0=w0, **self._grad_options)

    def forward_loss(self, inputs, targets, hidden=None, *, train=False, arch=None):
        """One forward pass on a (T, B) segment, no backward and no update: ``(loss_sum,
        tokens, hidden)``. ``train=True`` draws fresh dropout masks (advancing the step counter
        that keys them): ENAS scores its rewards so, as its reference did."""
        inputs, targets = _segment(inputs, targets)
        table, w0 = self._cell(arch)
        loss, _, _, n, h = self._lm.step(table, inputs, targets, hidden, train=bool(train), backward=False,
                                         update=False, w0=w0)
        if train:   # the core advances the mask counter only after a backward pass
            self._lm.step_count += 1
        return loss, n, h

    def gradients(self):
        """Copies of the gradients of the last backward pass, keyed like the parameters."""
        return self._named(self._lm.arena("grads"), self._slots)

    def loss_and_grad(self, inputs, targets, hidden=None, tar=0.0, ar=0.0, train=False, arch=None):
        """Loss (mean cross-entropy + TAR/AR penalties), gradients (:meth:`gradients`) and the
        next hidden state for one (T, B) segment, without changing the parameters; without
        dropout, or (``train=True``) with this step's masks, which advances the step counter.
        ``arch``: as in :meth:`train_step`."""
        loss, reg, _, n, h = self.forward_backward(inputs, targets, hidden, train=train, tar=tar, ar=ar, arch=arch)
        return loss / n + reg, self.gradients(), h

    def dropout_masks(self):
        """The dropout masks of the last training step: ``x`` (input and x masks combined),
        ``h``, ``out`` ((B, d) each) and ``emb`` ((V,)); None for a dropout that is off."""
        return self._lm.last_masks()

    def last_masks(self):
        """Deprecated: :meth:`dropout_masks`."""
        warnings.warn(f"{type(self).__name__}.last_masks is deprecated; use dropout_masks()",
                      DeprecationWarning, stacklevel=2)
        return self.dropout_masks()

    def perplexity(self, tokens, batch_size=10, bptt=35):
        """exp of :meth:`loss` (inf where the loss overflows)."""
        return perplexity(self.loss(tokens, batch_size, bptt))

    def evaluate(self, *args, **kwargs):
        """Deprecated: :meth:`perplexity` on every model (:meth:`loss` gives nats)."""
        warnings.warn(f"{type(self).__name__}.evaluate is deprecated; use perplexity() (or loss() for nats: "
                      "evaluate now means perplexity on every model)", DeprecationWarning, stacklevel=2)
        return self.perplexity(*args, **kwargs)

    def _loss(self, cell, tokens, batch_size, bptt):
        # any bptt beyond the stream is one window: clamp what the core's int cannot hold
        bptt = min(_check_int("bptt", bptt, 1), 2**31 - 1)
        table, w0 = cell
        loss, count = self._lm.evaluate(table, batchify(tokens, batch_size, self.vocab_size), bptt, w0=w0)
        return loss / count

    def _fit_steps(self, tokens, steps, sampler, batch_size, bptt, lr, clip, weight_decay, tar, ar,
                   carry_hidden, wd):
        from ..config import TrainConfig
        from .loop import Trainer

        if wd is not None:
            warnings.warn("wd= is deprecated; use weight_decay=", DeprecationWarning, stacklevel=2)
            weight_decay = wd
        steps = _check_int("steps", steps, 0)
        batch_size, bptt = _check_int("batch_size", batch_size, 1), _check_int("bptt", bptt, 1)
        if not isinstance(carry_hidden, (bool, np.bool_)):
            raise ValueError(f"carry_hidden must be True or False, got {carry_hidden!r}")
        for name, value in (("lr", lr), ("clip", clip), ("weight_decay", weight_decay)):
            _check_rate(name, value)
        for name, value in (("tar", tar), ("ar", ar)):
            _check_penalty(name, value)
        config = TrainConfig(name="fit_steps", hidden_size=self.hidden_size, batch_size=int(batch_size),
                             bptt=int(bptt), bptt_mode="fixed", lr=float(lr), clip=float(clip),
                             weight_decay=float(weight_decay), tar=float(tar), ar=float(ar),
                             **self.dropouts)
        trainer = self._trainer
        if trainer is None or trainer.tokens is not tokens or trainer.config != config \
                or trainer.carry_hidden != carry_hidden:
            trainer = self._trainer = Trainer(self, tokens, config, seed=self.seed,
                                              carry_hidden=carry_hidden)
        losses = trainer.run_steps(steps, sampler=sampler)
        self.last_archs = trainer.last_archs
        return float(losses.mean()) if steps else float("nan")


class CellLM(_LMBase):
    """One architecture trained standalone as a word-level language model.

    Parameters are named and shaped as in docs/design.md §3: ``embedding`` (V, d) — also the
    tied decoder weight — ``W0`` (2d, 2d), ``W1``..``Wn`` (d, 2d) and ``decoder_bias`` (V,),
    with d = ``hidden_size``. Dropouts use the AWD/DARTS names ``dropout``, ``dropouth``,
    ``dropoutx``, ``dropouti``, ``dropoute`` (all 0 by default); ``output`` is ``"mean"``
    (h_t = mean of all nodes) or ``"loose_ends"`` (mean of the nodes no other node reads, as
    ENAS does).
    """

    def __init__(self, arch, vocab_size, hidden_size=None, seed=0, output="mean", *, hidden=None,
                 **dropouts):
        if isinstance(arch, str):
            arch = Arch.parse(arch)
        if not isinstance(arch, Arch):
            raise ValueError(f"arch must be a nas_eval.Arch or its string form, got {type(arch).__name__}")
        n = arch.n_nodes
        super().__init__(vocab_size, check_hidden_size(hidden_size, hidden), n, n, seed, output, dropouts)
        self.arch = arch
        self._arch_table = arch_table(arch, list(range(n)), output)
        for i in range(1, n + 1):
            self._slots[f"W{i}"] = self._mat_slot(i - 1)
        order = ["embedding", "W0"] + [f"W{i}" for i in range(1, n + 1)] + ["decoder_bias"]
        self._slots = {name: self._slots[name] for name in order}

    def __repr__(self):
        return (f"CellLM({str(self.arch)!r}, vocab_size={self.vocab_size}, "
                f"hidden_size={self.hidden_size}, seed={self.seed})")

    def _cell(self, arch):
        if arch is not None and arch != self.arch:
            raise ValueError(f"this model is {self.arch}; it cannot step {arch}")
        return self._arch_table, 0

    def loss(self, tokens, batch_size=10, bptt=35):
        """Mean cross-entropy (nats) over the stream: batchify into ``batch_size`` columns,
        windows of ``bptt`` with the hidden state carried from zero, no dropout."""
        return self._loss((self._arch_table, 0), tokens, batch_size, bptt)

    def fit_steps(self, tokens, steps, batch_size=64, bptt=35, lr=20.0, clip=0.25, weight_decay=0.0,
                  tar=0.0, ar=0.0, *, wd=None):
        """``steps`` SGD steps of fixed-length truncated BPTT along the stream with this
        model's dropouts (the one training loop, :class:`nas_eval.engine.Trainer`);
        successive calls continue along the same stream, wrapping to its start. Returns the
        mean training cross-entropy of those steps."""
        return self._fit_steps(tokens, steps, None, batch_size, bptt, lr, clip, weight_decay, tar, ar,
                               False, wd)


def perplexity(loss):
    """exp(loss), inf where it overflows (and for a non-finite loss)."""
    return math.exp(loss) if loss < 700 else math.inf
