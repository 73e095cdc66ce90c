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

from .._validate import Fields
from ..presets import Presets
from . import MAX_BELIEF_SPACE, SearchOutcome, register, run_epochs

MIXED_OPS = ("none", "tanh", "relu", "sigmoid", "identity")
MASKS = ("per-pass", "reuse")
ARCHITECTS = ("reference", "paper-code", "paper-code-accumulate")


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
    recipe_preset: None, or a TrainConfig preset that replaces the study's search recipe but
    for its data slices (the paper presets: "search", DARTS's own search-time training, so a
    study whose super-nets use another recipe -- the ``paper`` study's WS one -- leaves it be).
    masks: "per-pass" (the reference: the virtual step, the validation pass and both
    Hessian-vector passes each draw their own dropout masks) or "reuse" (the training-batch
    passes reuse the weight step's masks: a lower-variance estimator, this project's).
    architect: "reference" (quark0/darts rnn/architect.py), "paper-code" (the paper's wrapper,
    nas-landmarkreg darts_policy/architect.py, caches the unrolled model: its validation pass
    stays at the initial alpha and its validation weight gradient v accumulates across steps;
    a bug, docs/fidelity.md) or "paper-code-accumulate" (the same, with the alpha gradient
    also accumulating across steps). The paper-code architects need order 2.
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
    masks: str = "per-pass"
    architect: str = "reference"
    recipe_preset: Optional[str] = None

    def __post_init__(self):
        self.validate()

    def validate(self):
        bad = Fields(self, "darts option ").fail

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
        if self.recipe_preset is not None:
            from ..config import TrainConfig

            if self.recipe_preset not in TrainConfig.presets():
                bad("recipe_preset", f"None or a TrainConfig preset ({', '.join(TrainConfig.presets())})")
        if self.masks not in MASKS:
            bad("masks", " or ".join(map(repr, MASKS)))
        if self.architect not in ARCHITECTS:
            bad("architect", " or ".join(map(repr, ARCHITECTS)))
        if self.architect != "reference" and self.order != 2:
            raise ValueError(f"darts option architect={self.architect!r} needs order=2 (the cached unrolled "
                             f"model exists only in the second-order step), got order={self.order!r}")
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
        training batch size for the architecture steps (two rows at least); and, with or
        without ``sizes``, :meth:`check_loop` (DARTS's alternating loop). Returns self."""
        if train_config is None:
            return self
        if sizes is None:
            r = self.recipe(train_config)
            self.check_loop(train_config, r.train_tokens, r.valid_tokens)
            return self
        batch = self.recipe(train_config).batch_size
        if sizes["valid"] < 2 * batch:
            raise ValueError(
                f"policy darts, option batch_size={batch}: alpha steps batch the validation split "
                f"({sizes['valid']:,} tokens) into {batch} rows, which needs at least {2 * batch:,} tokens; "
                f"fix: batch_size <= {sizes['valid'] // 2}, or more validation tokens in [search]")
        self.check_loop(train_config, sizes.get("train"), sizes["valid"])
        return self

    def recipe(self, train_config):
        """The search recipe: ``train_config`` (or the ``recipe_preset`` with its data slices)
        with this config's overrides."""
        if self.recipe_preset is not None:
            from ..config import TrainConfig

            keep = {f: getattr(train_config, f) for f in ("train_tokens", "valid_tokens", "test_tokens",
                                                           "max_steps_per_epoch")}
            train_config = TrainConfig.preset(self.recipe_preset, name=self.recipe_preset, **keep)
        changes = {f: getattr(self, f) for f in ("hidden_size", "batch_size", "epochs", "max_steps_per_epoch")
                   if getattr(self, f) is not None}
        if not changes:
            return train_config
        return dataclasses.replace(train_config, name=f"{train_config.name}+darts", **changes)

    def check_loop(self, train_config, train_tokens=None, valid_tokens=None):
        """Refuse (ValueError naming the policy, option, value and fix) a configuration under
        which the search would no longer be DARTS's loop of alternating weight and alpha steps:
        fewer than 2 weight steps in all (nothing alternates), a validation stream too short
        for one alpha step, or a second-order step whose virtual step cannot move (lr 0).
        ``train_tokens`` / ``valid_tokens``: the token counts of the study's slices, when known
        (plan-time checks pass them; without them only the configuration is checked)."""
        r = self.recipe(train_config)

        def refuse(option, value, fix):
            raise ValueError(f"darts: {option}={value!r} would not run DARTS's alternating weight/alpha "
                             f"loop; {fix}")

        if self.order == 2 and r.lr <= 0:
            refuse("lr", r.lr, "a second-order step with lr 0 is the first-order step: set order=1 or lr > 0")
        steps = r.max_steps_per_epoch
        if train_tokens is not None:
            rows = int(train_tokens) // r.batch_size
            per_epoch = max(0, math.ceil((rows - 2) / max(1, r.bptt)))
            steps = min(steps, per_epoch) if steps else per_epoch
            if per_epoch < 1:
                refuse("batch_size", r.batch_size, f"the training slice ({train_tokens} tokens) gives no step "
                       f"at this batch size: use a smaller batch_size or a longer slice")
        if steps is not None and steps * r.epochs < 2:
            refuse("max_steps_per_epoch" if r.max_steps_per_epoch else "epochs", steps if r.max_steps_per_epoch
                   else r.epochs, "give the search at least 2 weight steps in all (epochs x steps per epoch >= 2)")
        if valid_tokens is not None and int(valid_tokens) // r.batch_size < 2:
            refuse("batch_size", r.batch_size, f"the validation slice ({valid_tokens} tokens) holds fewer than 2 "
                   f"rows at this batch size, so no alpha step can run: use a smaller batch_size or more data")


# Adam moves each alpha by at most about arch_lr per step: the reference takes ~5,200 steps
# (50 epochs of ~104 on PTB at batch 256), a study on a 2-core machine ~100-500, so the scaled
# presets raise the alpha learning rate tenfold for alpha to move comparably far.
CPU_ARCH_LR = 3e-2

PRESETS = Presets("darts")
PRESETS.add("reference", lambda: DARTSConfig(hidden_size=300, batch_size=256, epochs=50, recipe_preset="search"),
            "the paper's DARTS search: second order, per-pass dropout masks, d=300, batch 256, 50 epochs "
            "(days on a CPU)")
PRESETS.add("paper-2node", lambda: DARTSConfig(hidden_size=300, batch_size=256, epochs=50, recipe_preset="search"),
            "the paper's 2-node DARTS: the reference search unchanged but for the number of nodes (paper §4.2: "
            "'no changes are needed')")
PRESETS.add("cpu", lambda: DARTSConfig(arch_lr=CPU_ARCH_LR),
            "second order at the study's search recipe, alpha lr 3e-2 (10x: ~30x fewer steps than the "
            "reference); each search step costs ~4x a first-order one")
PRESETS.add("cpu-first-order", lambda: DARTSConfig(order=1, arch_lr=CPU_ARCH_LR),
            "first order at the study's search recipe, alpha lr 3e-2: the cheapest DARTS")
PRESETS.add("smoke", lambda: DARTSConfig(order=2, epochs=2, max_steps_per_epoch=4),
            "seconds: 2 epochs of 4 steps, for tests")
PRESETS.add("cpu-reuse-masks", lambda: DARTSConfig(arch_lr=CPU_ARCH_LR, masks="reuse"),
            "as cpu, the training-batch passes of the alpha step reusing the weight step's dropout masks "
            "(this project's lower-variance estimator)")


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
        # the paper code's cached unrolled model (its alpha0 is the alpha after initialisation)
        self.cache = self.model.architect_cache() if config.architect != "reference" else None
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
                                           clip=self.recipe.clip, weight_decay=self.recipe.weight_decay,
                                           per_pass=self.config.masks == "per-pass", cache=self.cache,
                                           accumulate=self.config.architect == "paper-code-accumulate", **self.adam)
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
        info = {"order": self.config.order, "masks": self.config.masks, "architect": self.config.architect,
                "stable_since_epoch": _stable_since(self.trace),
                "p_pick": self.trace[-1]["p_arch"], "recipe": self.recipe.describe()}
        return SearchOutcome(self.model.derive(), pd.DataFrame(self.trace), beliefs, budget, info)

    # --- checkpoints -------------------------------------------------------------------------
    def state(self):
        """Everything needed to continue bitwise identically (the model's weights, alpha, Adam
        and batch-norm statistics travel inside the trainer's state)."""
        return {"trainer": self.trainer.state(), "epoch": self.epoch, "skipped": self.skipped,
                "trace": [dict(r) for r in self.trace], "beliefs": [b.copy() for b in self.beliefs],
                "cache": None if self.cache is None else self.cache.copy()}

    def restore(self, state):
        self.trainer.restore(state["trainer"])
        self.epoch, self.skipped = int(state["epoch"]), int(state["skipped"])
        self.trace = [dict(r) for r in state["trace"]]
        self.beliefs = [np.asarray(b, dtype=np.float64) for b in state["beliefs"]]
        if self.cache is not None:
            self.cache[:] = state["cache"]


def search(space, corpus, train_config, seed, config, checkpoint=None):
    """Run DARTS on ``space`` (full spaces only: the mixed cell relaxes every edge) and return
    its :class:`SearchOutcome`; with a ``checkpoint``, resume from its state and save after
    every epoch."""
    train_tokens, valid_tokens, _ = config.recipe(train_config).slice(corpus)
    config.check_loop(train_config, len(train_tokens), len(valid_tokens))
    return run_epochs(DARTSSearch(space, corpus, train_config, seed, config), checkpoint)


register("darts", search, DARTSConfig, PRESETS)
