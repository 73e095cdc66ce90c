"""DARTS (docs/design.md §6, the reference's rnn/train_search.py): the continuous relaxation of
the cell, searched by alternating an architecture step on a validation batch and a weight
step on a training batch.

Each weight step of the search recipe (the study's ``search`` TrainConfig: variable-length
BPTT, SGD with clipping, dropouts, TAR) is preceded by one α step on the validation batch at
the same position (modulo the validation stream, batchified with the training batch size,
fixed length ``bptt``, its hidden state carried and reset each epoch): Adam (lr 3e-3, betas
(0.9, 0.999), weight decay 1e-3) on the gradient of the validation loss — first order at the
current weights, or second order at the weights of a virtual SGD step on the training batch
with the finite-difference Hessian-vector product (radius 0.01 / ‖v‖). The pick is derived
from softmax(α) as the reference's ``genotype()``.

The search runs at the study's search recipe unless ``hidden_size``, ``batch_size``,
``epochs`` or ``max_steps_per_epoch`` say otherwise (the ``reference`` preset pins the paper's
d = 300, batch 256, 50 epochs).

At small scale the weights of the batch-normalised mixed cell train slowly: at the
initialisation the states' spread is tiny, batch norm divides by it, and the gradient norm
(~2.5 at d = 64 on PTB) is clipped to 0.25, so after ~80 steps the training loss is still
near the uniform one where a discrete cell is well below it (``batch_norm=False`` trains
like the discrete cell). The reference runs ~5,200 steps; scaled studies see the early phase.

>>> from nas_eval.policies.darts import DARTSConfig, PRESETS
>>> DARTSConfig().order, PRESETS.get("reference").hidden_size
(2, 300)
"""
import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from ..presets import Presets
from . import MAX_BELIEF_SPACE, SearchOutcome, register, resume_from

MIXED_OPS = ("none", "tanh", "relu", "sigmoid", "identity")


def _is_int(x):
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _is_num(x):
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) \
        and math.isfinite(x)


@dataclass(frozen=True)
class DARTSConfig:
    """DARTS's hyper-parameters, reference values as defaults (rnn/train_search.py).

    order: 1 (first order) or 2 (the unrolled second-order step, the reference's --unrolled).
    arch_lr, arch_beta1, arch_beta2, arch_eps, arch_weight_decay: Adam on α.
    alpha_init: α = alpha_init · N(0, 1).  hvp_radius: r of R = r / ‖v‖.
    batch_norm: the non-affine batch norm on s0 and every node (off only for checks).
    hidden_size, batch_size, epochs, max_steps_per_epoch: None = the study's search recipe.
    """
    order: int = 2
    arch_lr: float = 3e-3
    arch_beta1: float = 0.9
    arch_beta2: float = 0.999
    arch_eps: float = 1e-8
    arch_weight_decay: float = 1e-3
    alpha_init: float = 1e-3
    hvp_radius: float = 0.01
    batch_norm: bool = True
    hidden_size: Optional[int] = None
    batch_size: Optional[int] = None
    epochs: Optional[int] = None
    max_steps_per_epoch: Optional[int] = None

    def __post_init__(self):
        self.validate()

    def validate(self):
        def bad(field, allowed):
            raise ValueError(f"darts option {field} must be {allowed}, got {getattr(self, field)!r}")

        if not _is_int(self.order) or self.order not in (1, 2):
            bad("order", "1 or 2")
        for field in ("arch_lr", "arch_eps", "hvp_radius"):
            v = getattr(self, field)
            if not _is_num(v) or v <= 0:
                bad(field, "a finite number > 0")
        for field in ("arch_beta1", "arch_beta2"):
            v = getattr(self, field)
            if not _is_num(v) or not 0 <= v < 1:
                bad(field, "a number in [0, 1)")
        for field in ("arch_weight_decay", "alpha_init"):
            v = getattr(self, field)
            if not _is_num(v) or v < 0:
                bad(field, "a finite number >= 0")
        if not isinstance(self.batch_norm, (bool, np.bool_)):
            bad("batch_norm", "true or false")
        for field, low, high in (("hidden_size", 1, 65536), ("batch_size", 2, 1 << 20),
                                 ("epochs", 1, 100_000), ("max_steps_per_epoch", 1, 1 << 30)):
            v = getattr(self, field)
            if v is not None and (not _is_int(v) or not low <= v <= high):
                bad(field, f"None (the study's search recipe) or an integer in {low}..{high}")

    def check_feasible(self, train_config=None, space=None, sizes=None):
        """Refuse, before any job runs, a search the data cannot feed (``sizes``: split
        lengths in tokens under ``train_config``): the validation split is batched at the
        training batch size for the architecture steps (two rows at least). Returns self."""
        if sizes is None or train_config is None:
            return self
        batch = self.recipe(train_config).batch_size
        if sizes["valid"] < 2 * batch:
            raise ValueError(
                f"policy darts, option batch_size={batch}: alpha steps batch the validation split "
                f"({sizes['valid']:,} tokens) into {batch} rows, which needs at least {2 * batch:,} tokens; "
                f"fix: batch_size <= {sizes['valid'] // 2}, or more validation tokens in [search]")
        return self

    def recipe(self, train_config):
        """The search recipe: ``train_config`` with this config's overrides."""
        changes = {f: getattr(self, f) for f in ("hidden_size", "batch_size", "epochs", "max_steps_per_epoch")
                   if getattr(self, f) is not None}
        if not changes:
            return train_config
        return dataclasses.replace(train_config, name=f"{train_config.name}+darts", **changes)


# Adam moves each alpha by at most about arch_lr per step: the reference takes ~5,200 steps
# (50 epochs of ~104 on PTB at batch 256), a study on a 2-core machine ~100-500, so the scaled
# presets raise the alpha learning rate tenfold for alpha to move comparably far.
CPU_ARCH_LR = 3e-2

PRESETS = Presets("darts")
PRESETS.add("reference", lambda: DARTSConfig(hidden_size=300, batch_size=256, epochs=50),
            "the paper's DARTS search: second order, d=300, batch 256, 50 epochs (days on a CPU)")
PRESETS.add("cpu", lambda: DARTSConfig(arch_lr=CPU_ARCH_LR),
            "second order at the study's search recipe, alpha lr 3e-2 (10x: ~30x fewer steps than the "
            "reference); each search step costs ~4x a first-order one")
PRESETS.add("cpu-first-order", lambda: DARTSConfig(order=1, arch_lr=CPU_ARCH_LR),
            "first order at the study's search recipe, alpha lr 3e-2: the cheapest DARTS")
PRESETS.add("smoke", lambda: DARTSConfig(order=2, epochs=2, max_steps_per_epoch=4),
            "seconds: 2 epochs of 4 steps, for tests")


def _stable_since(trace):
    """The first epoch from which the derived architecture never changed again."""
    stable = trace[-1]["epoch"]
    for row in reversed(trace):
        if row["arch"] != trace[-1]["arch"]:
            break
        stable = row["epoch"]
    return stable


class DARTSSearch:
    """One DARTS search, epoch by epoch, with ``state()`` / ``restore()`` for checkpoints.

    >>> s = DARTSSearch(space, corpus, train_config, seed, config)   # doctest: +SKIP
    >>> while s.epoch < s.epochs: s.run_epoch()                       # doctest: +SKIP
    >>> outcome = s.finish()                                          # doctest: +SKIP
    """

    def __init__(self, space, corpus, train_config, seed, config):
        from ..engine import MixedLM, Trainer, batchify

        self.space, self.config, self.seed = space, config, int(seed)
        self.recipe = recipe = config.recipe(train_config)
        self.epochs = recipe.epochs
        train_tokens, self.valid_tokens, _ = recipe.slice(corpus)
        self.model = MixedLM(space, corpus.vocab_size, recipe.hidden_size, seed=self.seed,
                             batch_norm=config.batch_norm, **recipe.dropouts)
        self.model.alpha = self.model.alpha * (config.alpha_init / 1e-3)  # the core draws 1e-3 N(0, 1)
        self.trainer = Trainer(self.model, train_tokens, recipe, seed=self.seed)
        # the reference's search_data: the validation split in the training batch size
        self.search_data = batchify(self.valid_tokens, recipe.batch_size)
        self.adam = dict(lr=config.arch_lr, betas=(config.arch_beta1, config.arch_beta2), eps=config.arch_eps,
                         alpha_weight_decay=config.arch_weight_decay, r=config.hvp_radius)
        self.archs = list(space) if len(space) <= MAX_BELIEF_SPACE else None
        self.epoch, self.skipped, self.trace, self.beliefs = 0, 0, [], []
        self._record(math.nan, math.nan, math.nan)

    def _alpha_step(self, trainer, step):
        """The architecture step before weight step ``step`` (the Trainer's on_step hook), on the
        validation batch at the training position (the reference's i % (len - 1)), bptt long."""
        inputs, targets, hidden, eta = trainer.upcoming()
        data, e = self.search_data, self._epoch_sums
        p = trainer.pos % (len(data) - 1)
        T = min(self.recipe.bptt, len(data) - 1 - p)
        valid = (data[p: p + T], data[p + 1: p + 1 + T], e["hidden"])
        loss, n, h = self.model.alpha_step((inputs, targets, hidden), valid, order=self.config.order, eta=eta,
                                           clip=self.recipe.clip, weight_decay=self.recipe.weight_decay, **self.adam)
        if self.model.last_alpha_ok:
            e["hidden"], e["loss"], e["tokens"] = h, e["loss"] + loss, e["tokens"] + n
        else:
            e["hidden"] = None
            self.skipped += 1

    def _record(self, train_loss, valid_loss, valid_ppl):
        model = self.model
        prob, arch = model.probabilities(), model.derive()
        changed = bool(self.trace) and self.trace[-1]["arch"] != str(arch)
        self.trace.append({"epoch": self.epoch, "arch": str(arch), "arch_id": self.space.index(arch),
                           "changed": changed, "p_arch": float(model.beliefs([arch])[0]),
                           "train_loss": train_loss, "valid_loss": valid_loss, "valid_ppl": valid_ppl,
                           "alpha": model.alpha.tolist(), "prob": prob.tolist()})
        if self.archs is not None:
            self.beliefs.append(model.beliefs(self.archs))

    def run_epoch(self):
        """One epoch of the search recipe, an architecture step before every weight step."""
        # the validation stream's hidden state restarts every epoch, as the reference's
        self._epoch_sums = {"hidden": None, "loss": 0.0, "tokens": 0}
        stats = self.trainer.run_epoch(on_step=self._alpha_step)
        self.epoch += 1
        e = self._epoch_sums
        valid_ppl = self.model.perplexity(self.valid_tokens, self.recipe.eval_batch_size, self.recipe.bptt)
        self._record(stats["train_loss"], e["loss"] / e["tokens"] if e["tokens"] else math.nan, valid_ppl)

    def finish(self):
        """The derived architecture of the final alpha, trace, beliefs, budget and info."""
        beliefs = pd.DataFrame()
        if self.archs is not None:
            n = len(self.archs)
            beliefs = pd.DataFrame({"epoch": np.repeat(np.arange(len(self.beliefs)), n),
                                    "arch_id": np.tile(np.arange(n), len(self.beliefs)),
                                    "belief": np.concatenate(self.beliefs)})
        budget = {**self.model.budget(), "alpha_steps_skipped": self.skipped}
        info = {"order": self.config.order, "stable_since_epoch": _stable_since(self.trace),
                "p_pick": self.trace[-1]["p_arch"], "recipe": self.recipe.describe()}
        return SearchOutcome(self.model.derive(), pd.DataFrame(self.trace), beliefs, budget, info)

    # --- checkpoints -------------------------------------------------------------------------
    def state(self):
        """Everything needed to continue bitwise identically (the model's weights, alpha, Adam
        and batch-norm statistics travel inside the trainer's state)."""
        return {"trainer": self.trainer.state(), "epoch": self.epoch, "skipped": self.skipped,
                "trace": [dict(r) for r in self.trace], "beliefs": [b.copy() for b in self.beliefs]}

    def restore(self, state):
        self.trainer.restore(state["trainer"])
        self.epoch, self.skipped = int(state["epoch"]), int(state["skipped"])
        self.trace = [dict(r) for r in state["trace"]]
        self.beliefs = [np.asarray(b, dtype=np.float64) for b in state["beliefs"]]


def search(space, corpus, train_config, seed, config, checkpoint=None):
    """Run DARTS on ``space`` (full spaces only: the mixed cell relaxes every edge) and return
    its :class:`SearchOutcome`; with a ``checkpoint``, resume from its state and save after
    every epoch."""
    s = DARTSSearch(space, corpus, train_config, seed, config)
    save = resume_from(checkpoint, s)
    while s.epoch < s.epochs:
        s.run_epoch()
        save()
    return s.finish()


register("darts", search, DARTSConfig, PRESETS)
