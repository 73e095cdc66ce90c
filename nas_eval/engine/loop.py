"""The one training loop: truncated BPTT along a token stream, for every model and policy.

Standalone training (:func:`nas_eval.train`), the weight-sharing super-net (WS rankings and
every policy's weight phase) and ``fit_steps`` all step through a :class:`Trainer`, so an
epoch means one thing everywhere (docs/design.md §4): one walk over the training slice from
its start, in segments whose lengths :class:`BpttLengths` draws, the learning rate scaled by
length / bptt, the hidden state carried between segments and reset at the start of the
epoch, at most ``config.max_steps_per_epoch`` steps, the rate following ``config.lr_schedule``
(:class:`LrSchedule`) over the run's ``config.epochs``.

Hooks: ``sampler(step) -> Arch`` picks the architecture of each mini-batch of a super-net
(the hidden state is reset when it changes, unless ``carry_hidden``); ``on_step(trainer,
step)`` runs before each weight step (DARTS takes its α step there); ``on_nonfinite(trainer)``
runs after a step whose loss or gradient was not finite (the core skipped its update).
``state()`` / ``restore()`` capture everything needed to continue bitwise identically.

>>> import nas_eval
>>> from nas_eval.engine import CellLM, Trainer
>>> corpus = nas_eval.datasets.synthetic(vocab_size=20, train_tokens=3000, seed=0)
>>> config = nas_eval.TrainConfig.preset("tiny", hidden_size=8, epochs=1)
>>> trainer = Trainer(CellLM("0:tanh", 20, 8), corpus.train, config, seed=0)
>>> stats = trainer.run_epoch()
>>> stats["steps"] > 0 and stats["train_loss"] < 3.5
True
"""
import math
import time

import numpy as np

from .. import rng
from ..config import TrainConfig


def batchify(tokens, batch_size, vocab_size=None):
    """(N,) stream -> (N // B, B) int32, column j a contiguous slice (pytorch `batchify`).
    With ``vocab_size`` every id of the stream is checked, also the tail that the
    reshaping drops (a bad id there is still bad data)."""
    tokens = np.asarray(tokens)
    if tokens.ndim != 1:
        raise ValueError(f"a token stream must be 1-D, got shape {tokens.shape}")
    if not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"token ids must be integers, got dtype {tokens.dtype}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    lo, hi = (int(tokens.min()), int(tokens.max())) if tokens.size else (0, 0)
    if lo < 0 or hi > np.iinfo(np.int32).max:
        raise ValueError(f"token id {lo if lo < 0 else hi} is outside the vocabulary (ids are 0 <= id < "
                         f"vocab_size < 2**31); casting it to the core's int32 would wrap it onto another id")
    if vocab_size is not None and hi >= vocab_size:
        raise ValueError(f"token id {hi} is outside the vocabulary (ids are 0 <= id < vocab_size = {vocab_size})")
    n = len(tokens) // batch_size
    if n < 2:
        raise ValueError(
            f"a stream of {len(tokens)} tokens is too short for batch_size {batch_size} "
            "(need at least 2 rows)")
    return np.ascontiguousarray(tokens[: n * batch_size].reshape(batch_size, n).T, dtype=np.int32)


def clip_hidden_rows(hidden, max_norm):
    """``hidden`` (B, d) with every row whose L2 norm exceeds ``max_norm`` rescaled to it: the
    paper code's hidden-norm clipping (nas-landmarkreg darts_model.py, handle_hidden_mode
    'NORM', threshold 30), applied here to the state carried between segments only
    (``TrainConfig.hidden_clip_mode="carry"``); the paper's every-time-step clipping inside the
    cell is the model's ``hidden_clip`` (``"step"``; docs/fidelity.md)."""
    norms = np.sqrt(np.einsum("ij,ij->i", hidden, hidden, dtype=np.float64))
    over = norms > max_norm
    if not over.any():
        return hidden
    out = np.array(hidden, dtype=np.float32, copy=True)
    out[over] *= (max_norm / norms[over]).astype(np.float32)[:, None]
    return out


class BpttLengths:
    """The BPTT length of step k (docs/design.md §4): ``fixed`` always ``bptt``; ``search``
    ``bptt`` w.p. 0.95 else ``bptt // 2``; ``awd`` base ``bptt`` w.p. 0.95 else ``bptt / 2``,
    then ``max(5, int(N(base, 5)))`` capped at ``bptt + max_seq_len_delta``. A pure function
    of (seed, k) through the package's RNG (stream 7, one key per step), so a resumed run
    draws the same lengths."""

    def __init__(self, config, seed):
        self.config, self.seed = config, int(seed)

    def __call__(self, step):
        c = self.config
        if c.bptt_mode == "fixed":
            return c.bptt
        k = rng.key(self.seed, rng.STREAM_BPTT, step)
        base = c.bptt if rng.uniform(k, 0) < 0.95 else c.bptt / 2.0
        if c.bptt_mode == "search":
            return max(1, int(base))
        return min(max(5, int(base + 5.0 * rng.normal(k, 1))), c.bptt + c.max_seq_len_delta)


class LrSchedule:
    """The learning rate of step k before the BPTT length scaling: ``constant`` is
    ``config.lr``; ``cosine`` and ``linear`` decay from ``lr`` at step 0 to ``lr_min`` at the
    budget's last step, ``total_steps`` = ``epochs`` x the steps of one epoch of ``n_rows``
    rows (``ceil((n_rows - 2) / bptt)``, at most ``max_steps_per_epoch``; exact for fixed
    BPTT, the mean for drawn lengths), and stay at ``lr_min`` past it. A pure function of
    the step counter, so a resumed run continues on the same curve (NAS-Bench-201 anneals
    with a cosine to 0 over its budget)."""

    def __init__(self, config, n_rows):
        c = config
        per_epoch = max(1, math.ceil((n_rows - 2) / c.bptt))
        if c.max_steps_per_epoch:
            per_epoch = min(per_epoch, c.max_steps_per_epoch)
        self.config, self.total_steps = c, c.epochs * per_epoch

    def __call__(self, step):
        c = self.config
        if c.lr_schedule == "constant":
            return c.lr
        p = min(1.0, step / max(1, self.total_steps - 1))
        shape = 0.5 * (1.0 + math.cos(math.pi * p)) if c.lr_schedule == "cosine" else 1.0 - p
        return c.lr_min + (c.lr - c.lr_min) * shape


class Trainer:
    """Drives ``model.train_step`` along ``tokens`` with the recipe of ``config``.

    ``model`` is any object with ``train_step(inputs, targets, hidden, *, lr, clip,
    weight_decay, tar, ar, arch, asgd) -> StepResult``, ``averaging``, ``state()`` and
    ``restore()``: a :class:`CellLM`, a :class:`SuperNet` or a policy's own network.
    """

    def __init__(self, model, tokens, config, seed=0, carry_hidden=False, hidden_clip=0.0):
        if not isinstance(config, TrainConfig):
            raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.model, self.tokens, self.config, self.seed = model, tokens, config, int(seed)
        self.data = batchify(tokens, config.batch_size)
        self.carry_hidden = bool(carry_hidden)
        self.hidden_clip = float(hidden_clip)  # > 0: clip_hidden_rows on every carried state
        self.lengths = BpttLengths(config, seed)
        self.schedule = LrSchedule(config, len(self.data))
        self.pos, self.hidden, self.arch = 0, None, None
        self._length = 0     # length of the segment the current step uses
        self.epoch = 0       # epochs completed
        self.step = 0        # steps taken, finite or not: keys per-step draws
        self.on_nonfinite = None
        self.last_archs = []

    def __repr__(self):
        return (f"Trainer({type(self.model).__name__}, {len(self.tokens)} tokens, {self.config.describe()}, "
                f"seed={self.seed}, epoch={self.epoch}, step={self.step})")

    # --- one step -------------------------------------------------------------------------
    def _step(self, T, sampler, on_step):
        c = self.config
        arch = sampler(self.step) if sampler is not None else None
        if arch is not None:
            if not self.carry_hidden and self.arch is not None and arch != self.arch:
                self.hidden = None
            self.arch = arch
            self.last_archs.append(arch)
        self._length = T
        if on_step is not None:
            on_step(self, self.step)
        inputs = self.data[self.pos : self.pos + T]
        targets = self.data[self.pos + 1 : self.pos + 1 + T]
        r = self.model.train_step(inputs, targets, self.hidden, lr=self.schedule(self.step) * T / c.bptt, clip=c.clip,
                                  weight_decay=c.weight_decay, tar=c.tar, ar=c.ar, arch=arch,
                                  asgd=self.model.averaging)
        self.pos += T
        self.step += 1
        if math.isfinite(r.loss_sum) and math.isfinite(r.grad_norm):
            self.hidden = clip_hidden_rows(r.hidden, self.hidden_clip) if self.hidden_clip > 0 else r.hidden
            return r
        self.hidden = None  # a state that blew up is never carried on
        if self.on_nonfinite is not None:
            self.on_nonfinite(self)
        return None

    def upcoming(self):
        """What the step about to run will use, for an ``on_step`` hook: ``(inputs, targets,
        hidden, lr)`` with ``lr`` already scaled by the segment's length (DARTS's
        second-order architecture step unrolls a virtual step on exactly this batch)."""
        T, c = self._length, self.config
        return (self.data[self.pos : self.pos + T], self.data[self.pos + 1 : self.pos + 1 + T],
                self.hidden, self.schedule(self.step) * T / c.bptt)

    # --- epochs and step counts -------------------------------------------------------------
    def run_epoch(self, sampler=None, on_step=None):
        """One epoch (see the module docstring). Returns train_loss (mean cross-entropy of
        the finite steps), steps, tokens and seconds."""
        t0 = time.perf_counter()
        self.pos, self.hidden, self.last_archs = 0, None, []
        cap = self.config.max_steps_per_epoch
        steps, loss_sum, tokens = 0, 0.0, 0
        while self.pos < len(self.data) - 2:
            if cap and steps >= cap:
                break
            r = self._step(min(self.lengths(self.step), len(self.data) - 1 - self.pos), sampler, on_step)
            if r is not None:
                steps += 1
                loss_sum += r.loss_sum
                tokens += r.tokens
        self.epoch += 1
        return {"train_loss": loss_sum / tokens if tokens else math.nan, "steps": steps,
                "tokens": tokens, "seconds": time.perf_counter() - t0}

    def run_steps(self, steps, sampler=None, on_step=None):
        """``steps`` steps continuing along the stream, wrapping to its start (and resetting
        the hidden state) when it runs out. Returns each step's mean loss (NaN where the
        step was not finite)."""
        losses = np.empty(int(steps))
        self.last_archs = []
        for k in range(int(steps)):
            if self.pos >= len(self.data) - 1:
                self.pos, self.hidden = 0, None
            r = self._step(min(self.lengths(self.step), len(self.data) - 1 - self.pos), sampler, on_step)
            losses[k] = r.loss_sum / r.tokens if r is not None else math.nan
        return losses

    # --- checkpoints ---------------------------------------------------------------------
    def state(self):
        """Everything needed to continue bitwise identically: the model's state, the
        position in the stream, the carried hidden state and the counters (every draw of
        the loop is keyed by the step counter)."""
        return {"model": self.model.state(), "pos": self.pos,
                "hidden": None if self.hidden is None else self.hidden.copy(),
                "arch": None if self.arch is None else str(self.arch), "epoch": self.epoch,
                "step": self.step}

    def restore(self, state):
        from ..space import Arch

        self.model.restore(state["model"])
        self.pos, self.epoch, self.step = int(state["pos"]), int(state["epoch"]), int(state["step"])
        self.hidden = None if state["hidden"] is None else np.array(state["hidden"], np.float32)
        self.arch = None if state["arch"] is None else Arch.parse(state["arch"])
