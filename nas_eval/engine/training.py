"""Standalone training of one architecture with the DARTS/AWD recipe (docs/design.md §4).

>>> import nas_eval
>>> corpus = nas_eval.datasets.synthetic(vocab_size=30, train_tokens=4000, seed=0)
>>> result = nas_eval.train("0:tanh 1:relu", corpus, nas_eval.TrainConfig.preset("tiny", epochs=1), seed=0)
>>> result.valid_ppl < 30
True
"""
import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .._progress import disabled
from ..config import TrainConfig
from ..space import Arch
from .loop import Trainer
from .model import CellLM, perplexity


@dataclass
class TrainResult:
    """What one standalone training run produced; ``history`` has one row per epoch."""
    arch: Arch
    seed: int
    config: TrainConfig
    corpus: str
    valid_ppl: float
    test_ppl: float
    valid_loss: float
    test_loss: float
    best_epoch: int
    history: pd.DataFrame
    wall_time: float
    events: list = field(default_factory=list)
    model: CellLM = field(default=None, repr=False)

    def to_dict(self):
        """JSON-friendly record (no model weights)."""
        return {
            "arch": str(self.arch), "seed": self.seed, "preset": self.config.name,
            "config": self.config.to_dict(), "corpus": self.corpus,
            "valid_ppl": self.valid_ppl, "test_ppl": self.test_ppl,
            "valid_loss": self.valid_loss, "test_loss": self.test_loss,
            "best_epoch": self.best_epoch, "wall_time": self.wall_time,
            "history": self.history.to_dict(orient="list"), "events": list(self.events),
        }


def nt_asgd_should_switch(valid_losses, nonmono):
    """AWD-LSTM's non-monotone trigger: more than ``nonmono`` losses are logged and the
    latest is worse than the best of all but the last ``nonmono``."""
    return len(valid_losses) > nonmono and valid_losses[-1] > min(valid_losses[:-nonmono])


def _check_inputs(arch, corpus, config, seed):
    if isinstance(arch, str):
        arch = Arch.parse(arch)
    if not isinstance(arch, Arch):
        raise ValueError(f"arch must be a nas_eval.Arch or its string form, got {type(arch).__name__}")
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig (e.g. TrainConfig.preset('tiny')), got {type(config).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    for split in ("train", "valid", "test"):
        if not hasattr(corpus, split):
            raise ValueError(f"corpus has no {split} split; load one with nas_eval.datasets.load()")
    return arch


class StandaloneTraining:
    """One standalone training run, epoch by epoch, over the one loop (:class:`Trainer`).

    After each epoch: validation loss (with the ASGD average once NT-ASGD has switched), the
    best checkpoint kept, the NT-ASGD rule checked. A non-finite step restores the best
    checkpoint and is recorded in ``events``; more than ``config.max_recoveries`` of them
    raise ``FloatingPointError``. ``state()`` / ``restore()`` make a run resumable bitwise.
    """

    def __init__(self, arch, corpus, config, seed=0):
        self.arch = _check_inputs(arch, corpus, config, seed)
        self.config, self.seed, self.corpus_name = config, int(seed), corpus.name
        self.train_tokens, self.valid_tokens, self.test_tokens = config.slice(corpus)
        self.model = CellLM(self.arch, corpus.vocab_size, config.hidden_size, seed=self.seed,
                            output=config.output, **config.dropouts)
        self.trainer = Trainer(self.model, self.train_tokens, config, seed=self.seed)
        self.trainer.on_nonfinite = self._recover
        self.best_weights, self.best_loss, self.best_epoch = self.model.weights(), math.inf, 0
        self.history, self.events, self.recoveries = [], [], 0
        self.seconds = 0.0  # time spent in earlier processes of a resumed run

    @property
    def epoch(self):
        return self.trainer.epoch

    def _recover(self, trainer):
        self.recoveries += 1
        self.events.append({"epoch": trainer.epoch + 1, "step": trainer.step,
                            "event": "non-finite loss",
                            "action": "restored checkpoint of epoch %d" % self.best_epoch})
        if self.recoveries > self.config.max_recoveries:
            raise FloatingPointError(
                f"training {self.arch} (seed {self.seed}, {self.config.describe()}) diverged: "
                f"{self.recoveries} non-finite losses")
        self.model.set_weights(self.best_weights)

    def _valid_loss(self):
        with self.model.using_average():
            return self.model.loss(self.valid_tokens, self.config.eval_batch_size, self.config.bptt)

    def run_epoch(self):
        """Train one epoch and evaluate; returns its row of the history."""
        c, model = self.config, self.model
        stats = self.trainer.run_epoch()
        epoch = self.trainer.epoch
        val_loss = self._valid_loss()
        if not math.isfinite(val_loss):
            self.events.append({"epoch": epoch, "step": stats["steps"], "event": "non-finite validation loss",
                                "action": "restored checkpoint of epoch %d" % self.best_epoch})
            model.set_weights(self.best_weights)
        elif val_loss < self.best_loss:
            self.best_loss, self.best_epoch = val_loss, epoch
            self.best_weights = model.averaged_weights() if model.averaging else model.weights()
        tokens, seconds = stats["tokens"], stats["seconds"]
        row = {"epoch": epoch, "train_loss": stats["train_loss"],
               "train_ppl": perplexity(stats["train_loss"]) if tokens else math.nan,
               "valid_loss": val_loss, "valid_ppl": perplexity(val_loss), "asgd": model.averaging,
               "steps": stats["steps"], "tokens": tokens, "epoch_time": seconds,
               "tokens_per_s": tokens / max(seconds, 1e-9)}
        self.history.append(row)
        if c.asgd and not model.averaging and nt_asgd_should_switch(
                [h["valid_loss"] for h in self.history], c.nonmono):
            model.start_averaging()
            self.events.append({"epoch": epoch, "step": stats["steps"], "event": "switched to ASGD", "action": ""})
        return row

    def finish(self, wall_time):
        """Restore the best checkpoint and measure it: the run's :class:`TrainResult`."""
        c, model = self.config, self.model
        model.set_weights(self.best_weights)
        test_loss = model.loss(self.test_tokens, c.test_batch_size, c.bptt)
        valid_loss = (self.best_loss if math.isfinite(self.best_loss)
                      else model.loss(self.valid_tokens, c.eval_batch_size, c.bptt))
        return TrainResult(arch=self.arch, seed=self.seed, config=c, corpus=self.corpus_name,
                           valid_ppl=perplexity(valid_loss), test_ppl=perplexity(test_loss),
                           valid_loss=valid_loss, test_loss=test_loss, best_epoch=self.best_epoch,
                           history=pd.DataFrame(self.history), wall_time=wall_time,
                           events=self.events, model=model)

    def state(self):
        """The loop's state plus the run's own: best checkpoint, history, events."""
        return {"trainer": self.trainer.state(), "best_weights": self.best_weights.copy(),
                "best_loss": self.best_loss, "best_epoch": self.best_epoch,
                "history": [dict(h) for h in self.history], "events": [dict(e) for e in self.events],
                "recoveries": self.recoveries, "seconds": self.seconds}

    def restore(self, state):
        self.trainer.restore(state["trainer"])
        self.best_weights = np.array(state["best_weights"], np.float32)
        self.best_loss, self.best_epoch = float(state["best_loss"]), int(state["best_epoch"])
        self.history = [dict(h) for h in state["history"]]
        self.events = [dict(e) for e in state["events"]]
        self.recoveries, self.seconds = int(state["recoveries"]), float(state["seconds"])


def train(arch, corpus, config, seed=0, progress=None, on_epoch=None, resume=None):
    """Train ``arch`` from scratch on ``corpus`` with ``config`` and ``seed``.

    Each epoch walks the training stream with variable-length truncated BPTT (lr scaled by
    length), then evaluates on validation; the best epoch's weights are kept (the averaged
    ones once NT-ASGD has switched) and give the final validation and test perplexity. A
    non-finite loss restores the last good checkpoint and is recorded in ``events``.
    ``on_epoch(run)`` is called after every epoch with the :class:`StandaloneTraining`
    (checkpointing hooks in here: ``run.state()``); ``resume`` is such a state to continue
    from, giving the same numbers as a run that was never interrupted.
    """
    t0 = time.perf_counter()
    run = StandaloneTraining(arch, corpus, config, seed)
    if resume is not None:
        run.restore(resume)
    bar = tqdm(range(run.epoch + 1, config.epochs + 1), desc=f"train {run.arch}",
               disable=disabled(progress), leave=False, unit="epoch")
    for _ in bar:
        row = run.run_epoch()
        bar.set_postfix(valid_ppl=f"{row['valid_ppl']:.1f}", best=f"{perplexity(run.best_loss):.1f}")
        if on_epoch is not None:
            on_epoch(run)
    bar.close()
    return run.finish(run.seconds + time.perf_counter() - t0)
