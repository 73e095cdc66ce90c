"""Standalone training of one architecture with the DARTS/AWD recipe (DESIGN §4).

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

from ._progress import disabled
from .config import TrainConfig
from .model import CellLM, batchify
from .space import Arch


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


def _ppl(loss):
    return math.exp(loss) if loss < 700 else math.inf


class _SeqLen:
    """The BPTT length of each step (DESIGN §4), from its own seeded generator."""

    def __init__(self, config, seed):
        self.config = config
        self.rng = np.random.default_rng([int(seed), 0x5EC1E7])

    def __call__(self):
        c = self.config
        if c.bptt_mode == "fixed":
            return c.bptt
        base = c.bptt if self.rng.random() < 0.95 else c.bptt / 2.0
        if c.bptt_mode == "search":
            return max(1, int(base))
        return min(max(5, int(self.rng.normal(base, 5))), c.bptt + c.max_seq_len_delta)


def nt_asgd_should_switch(valid_losses, nonmono):
    """AWD-LSTM's non-monotone trigger: more than ``nonmono`` losses are logged and the
    latest is worse than the best of all but the last ``nonmono``."""
    return len(valid_losses) > nonmono and valid_losses[-1] > min(valid_losses[:-nonmono])


def _prepare(corpus, config):
    train, valid, test = corpus.train, corpus.valid, corpus.test
    if config.train_tokens:
        train = train[: config.train_tokens]
    if config.valid_tokens:
        valid = valid[: config.valid_tokens]
    if config.test_tokens:
        test = test[: config.test_tokens]
    return train, valid, test


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


def train(arch, corpus, config, seed=0, progress=None):
    """Train ``arch`` from scratch on ``corpus`` with ``config`` and ``seed``.

    Each epoch walks the training stream with variable-length truncated BPTT (lr scaled by
    length), then evaluates on validation; the best epoch's weights are kept (the averaged
    ones once NT-ASGD has switched) and give the final validation and test perplexity. A
    non-finite loss restores the last good checkpoint and is recorded in ``events``.
    """
    arch = _check_inputs(arch, corpus, config, seed)
    t0 = time.perf_counter()
    train_tokens, valid_tokens, test_tokens = _prepare(corpus, config)
    model = CellLM(arch, corpus.vocab_size, config.hidden, seed=int(seed), output=config.output,
                   **config.dropouts)
    core, table = model._core, model._table
    params = core.arena("params")
    data = batchify(train_tokens, config.batch_size)
    seq_len = _SeqLen(config, seed)
    checkpoint, best_loss, best_epoch = params.copy(), math.inf, 0
    averaging, history, events, recoveries = False, [], [], 0

    def evaluate(tokens, batch_size):
        if not averaging:
            return model.evaluate(tokens, batch_size, config.bptt)
        current = params.copy()  # evaluate with the ASGD average, then put the weights back
        params[:] = core.arena("avg")
        try:
            return model.evaluate(tokens, batch_size, config.bptt)
        finally:
            params[:] = current

    bar = tqdm(range(1, config.epochs + 1), desc=f"train {arch}", disable=disabled(progress),
               leave=False, unit="epoch")
    for epoch in bar:
        e0 = time.perf_counter()
        hidden, pos, steps, loss_sum, tokens = None, 0, 0, 0.0, 0
        while pos < len(data) - 2:
            if config.max_steps_per_epoch and steps >= config.max_steps_per_epoch:
                break
            T = min(seq_len(), len(data) - 1 - pos)
            loss, _, norm, n, hidden = core.step(
                table, data[pos : pos + T], data[pos + 1 : pos + 1 + T], hidden,
                lr=config.lr * T / config.bptt, clip=config.clip, wd=config.wdecay, tar=config.tar,
                ar=config.ar, train=True, backward=True, update=True, asgd=averaging)
            pos += T
            if not (math.isfinite(loss) and math.isfinite(norm)):
                recoveries += 1
                events.append({"epoch": epoch, "step": steps, "event": "non-finite loss",
                               "action": "restored checkpoint of epoch %d" % best_epoch})
                if recoveries > config.max_recoveries:
                    raise FloatingPointError(
                        f"training {arch} (seed {seed}, {config.describe()}) diverged: "
                        f"{recoveries} non-finite losses")
                params[:] = checkpoint
                hidden = None
                continue
            steps += 1
            loss_sum += loss
            tokens += n
        val_loss = evaluate(valid_tokens, config.eval_batch_size)
        if not math.isfinite(val_loss):
            events.append({"epoch": epoch, "step": steps, "event": "non-finite validation loss",
                           "action": "restored checkpoint of epoch %d" % best_epoch})
            params[:] = checkpoint
        elif val_loss < best_loss:
            best_loss, best_epoch = val_loss, epoch
            checkpoint = (core.arena("avg") if averaging else params).copy()
        train_loss = loss_sum / tokens if tokens else math.nan
        history.append({"epoch": epoch, "train_loss": train_loss, "train_ppl": _ppl(train_loss) if tokens else math.nan,
                        "valid_loss": val_loss, "valid_ppl": _ppl(val_loss), "asgd": averaging,
                        "steps": steps, "tokens": tokens, "epoch_time": time.perf_counter() - e0,
                        "tokens_per_s": tokens / max(time.perf_counter() - e0, 1e-9)})
        bar.set_postfix(valid_ppl=f"{_ppl(val_loss):.1f}", best=f"{_ppl(best_loss):.1f}")
        if config.asgd and not averaging and nt_asgd_should_switch([h["valid_loss"] for h in history], config.nonmono):
            core.start_averaging()
            averaging = True
            events.append({"epoch": epoch, "step": steps, "event": "switched to ASGD", "action": ""})
    bar.close()
    params[:] = checkpoint
    test_loss = model.evaluate(test_tokens, config.test_batch_size, config.bptt)
    valid_loss = best_loss if math.isfinite(best_loss) else model.evaluate(valid_tokens, config.eval_batch_size, config.bptt)
    return TrainResult(arch=arch, seed=int(seed), config=config, corpus=corpus.name,
                       valid_ppl=_ppl(valid_loss), test_ppl=_ppl(test_loss), valid_loss=valid_loss,
                       test_loss=test_loss, best_epoch=best_epoch, history=pd.DataFrame(history),
                       wall_time=time.perf_counter() - t0, events=events, model=model)
