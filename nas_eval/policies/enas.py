"""ENAS (Pham et al., 2018) as a study policy: an LSTM controller trained with REINFORCE
writes architectures, a weight-sharing super-net trained on the architectures it writes
scores them (docs/design.md §6; the paper's §3.2). docs/fidelity.md ("ENAS") sets every
setting beside the paper's text and its code (kcyu2014/nas-landmarkreg ``nasws/rnn/enas_policy``).

One search epoch is
1. a **shared phase**: SGD on the super-net along the training slice from its start, the
   architecture drawn from the controller every ``batches_per_arch`` mini-batches, for
   ``shared_archs`` architectures (None: one epoch of the slice); the learning rate is the
   recipe's times ``lr_decay ** max(0, epoch - 1 - lr_decay_after)`` (the reference: 20, then
   x 0.96 per epoch after epoch 16); the super-net's cell output is ``output`` (the
   reference: the mean of the loose ends) and its hidden state is carried across
   architecture changes (``carry_hidden``);
2. a **controller phase**: ``controller_steps`` REINFORCE updates; each draws
   ``controller_batch`` architectures and scores them on the next validation window with the
   shared weights, reward ``reward_c / ppl``, one Adam step. With ``reward_mode="train"`` (the
   reference) the validation split is batchified at ``reward_batch_size`` columns, the windows
   of ``reward_bptt`` steps are walked from the start in each phase, dropout is on and the
   hidden state is carried from window to window (reset at the phase start and at the wrap);
   ``"eval"`` scores each window without dropout from a zero state. With ``reset_baseline``
   the moving-average baseline restarts in each phase (the reference's was a local variable).
The pick is derived as the paper's code derives it: the controller (its state after that
epoch's controller phase) draws ``final_samples`` architectures, the distinct ones are scored
(``final_scoring``: "batch", the reference: the first reward window in train mode from a zero
state; "split": the whole validation split without dropout) and the best is kept. With
``derive_every = N`` (the reference: 30, the code's ``save_epoch``) this runs after every
epoch whose 0-based index is divisible by N and the last one derived is returned -- at 250
epochs the pick of epoch 241, nine epochs before the end; ``derive_every=None`` derives once,
after the last epoch (the scaled presets, whose few epochs would leave the every-30 pick at
epoch 1).

The controller, its sampling, gradients and Adam are C (``csrc/enas.c``): a stacked LSTM of
``controller_layers`` layers (2, the paper's text; its code has 1) fed a zero vector first,
that writes node 1's activation, then each later node's predecessor and
activation, one linear head per decision, logits / ``temperature`` then ``tanh_c * tanh``. By
default nodes >= 2 may not read s0 (``restrict_s0``, the reference's rule: 16 of the 32
two-node cells); ``restrict_s0=False`` searches the full space. Its draws come from the
counter-based streams 16-19 keyed by the seed, so a seed fixes the whole search.

Trace (one row per epoch): shared-phase loss, steps and learning rate, mean reward and
entropy of the controller phase, baseline, the current most likely architecture and its
probability, and the probability of the eventual pick. Beliefs: the exact probability of every
architecture at the end of each epoch in enumerable spaces.
"""
import math
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from .._validate import Fields
from ..presets import Presets
from ..space import SEARCH_SHARINGS, Arch
from . import MAX_BELIEF_SPACE, SearchOutcome, register, run_epochs
from .fidelity import budget_epochs, describes, field_deviations, off_budget

ENTROPY_MODES = ("reward", "regularizer")
OUTPUTS = ("mean", "loose_ends")
REWARD_MODES = ("train", "eval")
FINAL_SCORINGS = ("batch", "split")
FINAL_POOLS = ("draws", "samples", "space")


@dataclass(frozen=True)
class ENASConfig:
    """Hyper-parameters of the ENAS search; the defaults are the paper's (its text, else its
    code: nasws/rnn/enas_policy of kcyu2014/nas-landmarkreg; docs/fidelity.md, "ENAS").

    epochs: search epochs (250, the code's max_epoch); ``None`` = the search recipe's ``epochs``.
    shared_archs: architectures trained per shared phase (200, the paper's 8-node number);
        None = one epoch of the training slice.
    batches_per_arch: consecutive shared-phase mini-batches per sampled architecture (1; the
        paper's 2-node runs: 10).
    lr_decay, lr_decay_after: the shared phase's learning rate is the recipe's times
        ``lr_decay ** max(0, epoch - 1 - lr_decay_after)`` (0.96 and 15, the code's
        shared_decay / shared_decay_after, applied after each epoch from the 16th on).
    output: the super-net's cell output during the search ("loose_ends", the reference: the
        mean of the nodes no other node reads); None = the recipe's ``output`` (the standalone
        cell's, the mean of all nodes by default).
    carry_hidden: carry the super-net's hidden state across architecture changes in the
        shared phase (True, the reference; False resets it, docs/design.md §5).
    controller_steps: REINFORCE updates per epoch (2000).
    controller_batch: architectures drawn and scored per update (1; the gradient is their mean).
    reward_batch_size, reward_bptt: the reward window, 64 columns x 35 steps.
    reward_mode: "train" (dropout on, hidden carried across windows, the reference) or "eval".
    reward_c: reward = reward_c / validation perplexity (80).
    entropy_weight, entropy_mode: entropy bonus 1e-4, added to each decision's reward
        ("reward", the reference default) or as a regulariser on the loss ("regularizer").
    baseline_decay: moving-average baseline, b <- decay * b + (1 - decay) * reward (0.95).
    reset_baseline: restart the baseline in each controller phase (True, the reference).
    lr: Adam learning rate (3.5e-4; betas 0.9, 0.999, eps 1e-8 as torch's defaults).
    controller_hidden, temperature, tanh_c: LSTM(100), logits / 5 then 2.5 * tanh.
    controller_layers: stacked LSTM layers, 1..4 (2: the paper's text, "a two-layer LSTM",
        §3.2; 1: its code, ENAS-pytorch's one LSTMCell). Layer l > 0 reads layer l-1's h.
    restrict_s0: forbid s0 as predecessor of nodes >= 2 (True, the reference's rule).
    sharing: super-net granularity (docs/design.md §5); "edge" is ENAS's own.
    final_samples: architectures drawn for the final pick (100).
    final_pool: "draws" scores every draw, a repeated architecture again (with new dropout
        masks in train mode; the reference, the code's derive()), the first best wins;
        "samples" scores the distinct drawn architectures once; "space" scores the whole space
        when it has at most ``final_samples`` architectures (the distinct draws otherwise).
    final_scoring: "batch" (the first reward window in train mode, the reference) or "split"
        (the whole validation split without dropout).
    derive_every: N (30, the paper code's ``save_epoch``): a pick is derived after every
        epoch whose 0-based index is divisible by N and the last one derived is returned (at
        250 epochs, the one of epoch 241, 1-based); None: derived once, after the last epoch.
    """
    epochs: Optional[int] = 250
    shared_archs: Optional[int] = 200
    batches_per_arch: int = 1
    lr_decay: float = 0.96
    lr_decay_after: int = 15
    output: Optional[str] = "loose_ends"
    carry_hidden: bool = True
    controller_steps: int = 2000
    controller_batch: int = 1
    reward_batch_size: int = 64
    reward_bptt: int = 35
    reward_mode: str = "train"
    reward_c: float = 80.0
    entropy_weight: float = 1e-4
    entropy_mode: str = "reward"
    baseline_decay: float = 0.95
    reset_baseline: bool = True
    lr: float = 3.5e-4
    controller_hidden: int = 100
    controller_layers: int = 2
    temperature: float = 5.0
    tanh_c: float = 2.5
    restrict_s0: bool = True
    sharing: str = "edge"
    final_samples: int = 100
    final_pool: str = "draws"
    final_scoring: str = "batch"
    derive_every: Optional[int] = 30

    def validate(self):
        f = Fields(self, "enas option ", numpy_ints=True)
        f.integer("epochs", 1, 100_000, optional=True)
        f.integer("shared_archs", 1, 100_000_000, optional=True)
        f.integer("batches_per_arch", 1, 1_000_000)
        f.number("lr_decay", 0, 1, lo_open=True)
        f.integer("lr_decay_after", 0, 1_000_000)
        f.choice("output", OUTPUTS, optional=True)
        f.integer("controller_steps", 0, 10_000_000)
        f.integer("controller_batch", 1, 4096)
        f.integer("reward_batch_size", 1, 4096)
        f.integer("reward_bptt", 1, 4096)
        f.choice("reward_mode", REWARD_MODES)
        f.number("reward_c", 0, 1e6, lo_open=True)
        f.number("entropy_weight", 0, 1e6)
        f.choice("entropy_mode", ENTROPY_MODES)
        f.number("baseline_decay", 0, 1, hi_open=True)
        f.number("lr", 0, 1e3)
        f.integer("controller_hidden", 1, 4096)
        f.integer("controller_layers", 1, 4)
        f.number("temperature", 0, 1e6, lo_open=True)
        f.number("tanh_c", 0, 1e6, lo_open=True)
        f.boolean("restrict_s0", "carry_hidden", "reset_baseline")
        f.choice("sharing", SEARCH_SHARINGS)
        f.integer("final_samples", 1, 1_000_000)
        f.choice("final_pool", FINAL_POOLS)
        f.choice("final_scoring", FINAL_SCORINGS)
        f.integer("derive_every", 1, 1_000_000, optional=True)
        return self

    def check_feasible(self, train_config=None, space=None, sizes=None):
        """Raise ValueError when this config (with the study's search recipe ``train_config``
        and ``space``) would not run ENAS's loop -- a shared and a controller phase every
        epoch, a controller that learns -- but silently become another algorithm, or (given
        ``sizes``, tokens per split under the recipe) when the validation split cannot feed
        its reward windows. Returns self.
        """
        self.validate()
        if sizes is not None:
            self._check_reward_data(sizes["valid"])
        if self.controller_steps < 1:
            raise ValueError("enas option controller_steps=0 trains no controller: ENAS would become "
                             "uniform sampling with a super-net; set controller_steps >= 1 (reference "
                             "2000, paper-2node 20)")
        if self.lr <= 0:
            raise ValueError(f"enas option lr={self.lr!r} never moves the controller: ENAS would become "
                             "uniform sampling with a super-net; set lr > 0 (reference 3.5e-4)")
        if train_config is not None and self.epochs is None and train_config.epochs < 1:
            raise ValueError(f"enas option epochs=None takes the search recipe's epochs "
                             f"({train_config.epochs!r}): give the recipe or epochs at least 1")
        epochs = self.epochs if self.epochs is not None else getattr(train_config, "epochs", None)
        if self.derive_every is not None and epochs is not None and 1 < epochs <= self.derive_every:
            raise ValueError(f"enas option derive_every={self.derive_every} with {epochs} epochs derives "
                             f"the pick only after the first epoch: it would ignore the rest of the search; "
                             f"set derive_every=None (a pick after the last epoch) or below {epochs}")
        if space is not None and self.restrict_s0 and any(
                pred == 0 for node, (_, pred) in space.fixed.items() if node >= 2):
            raise ValueError(f"enas option restrict_s0=True forbids s0 as predecessor of nodes >= 2, "
                             f"but {space!r} fixes one to s0: set restrict_s0=false")
        return self

    def _check_reward_data(self, valid):
        # as ENASSearch reads the validation split: batched in reward_batch_size columns (two
        # rows at least) for train-mode rewards or a "batch" final scoring; whole windows of
        # reward_batch_size x (reward_bptt + 1) tokens for eval-mode rewards
        needs = []
        if self.reward_mode == "train" or self.final_scoring == "batch":
            needs.append((2 * self.reward_batch_size, f"two rows of {self.reward_batch_size} columns"))
        if self.reward_mode == "eval":
            needs.append((self.reward_batch_size * (self.reward_bptt + 1),
                          f"a window of {self.reward_batch_size} x ({self.reward_bptt} + 1)"))
        need, what = max(needs)
        if valid < need:
            raise ValueError(
                f"policy enas, option reward_batch_size={self.reward_batch_size}: rewards need {what} = "
                f"{need:,} validation tokens and the search recipe gives {valid:,}; fix: a smaller "
                f"reward_batch_size (or reward_bptt), or the enas preset that fits the study "
                f"(e.g. preset = \"smoke\")")

    def shared_lr(self, base_lr, epoch):
        """The shared phase's learning rate in (1-based) ``epoch``."""
        return base_lr * self.lr_decay ** max(0, epoch - 1 - self.lr_decay_after)


PRESETS = Presets("enas")
PRESETS.add("reference", ENASConfig,
            "the paper's ENAS (docs/fidelity.md): a two-layer LSTM(100) controller (the text; the code: "
            "one layer, controller_layers=1), 250 epochs of 200 shared steps (one architecture "
            "each) and 2000 controller steps on 64x35 validation windows in train mode, s0 only for "
            "node 1, loose-ends output, lr 20 x 0.96 per epoch after epoch 16, the pick the best of 100 "
            "samples derived every 30 epochs as the code's (the one of epoch 241; a fresh pick after "
            "the last epoch: derive_every=None)")
PRESETS.add("paper-2node", lambda: ENASConfig(shared_archs=20, batches_per_arch=10, controller_steps=20),
            "the reference with the paper's 2-node change: 20 sampled architectures per epoch instead "
            "of 200, each trained on 10 consecutive mini-batches; 20 controller steps per epoch (the "
            "code's enas_config_small)")
PRESETS.add("cpu", lambda: ENASConfig(epochs=None, shared_archs=None, controller_steps=200,
                                      reward_batch_size=10, lr=3.5e-3, derive_every=None),
            "for a 2-core machine: the search recipe's epochs, each one shared pass over the "
            "training slice then 200 controller updates instead of 2000, on reward windows of 10 "
            "columns instead of 64; Adam lr 3.5e-3 instead of 3.5e-4, because ~1000 updates at the "
            "reference rate leave the controller within 0.5% of uniform (measured on PTB, study "
            "preset quick), while at 10x it concentrates as ~10,000 reference updates would; the "
            "pick derived after the last epoch (the reference's every-30-epochs derive would return "
            "the first epoch's at a scaled recipe's epochs); everything else as the reference")
PRESETS.add("smoke", lambda: ENASConfig(epochs=None, shared_archs=None, controller_steps=10,
                                        controller_hidden=16, reward_batch_size=4, reward_bptt=10,
                                        final_samples=10, derive_every=None),
            "seconds, for tests: the search recipe's epochs, each one shared pass over the slice then "
            "10 controller steps, two-layer LSTM(16), 4x10 reward windows, 10 final samples, derived "
            "after the last epoch")


class Controller:
    """The C controller (csrc/enas.c, the core's EnasController) with architectures as :class:`Arch`."""

    def __init__(self, space, config, seed):
        from ..engine.native import core

        fixed = [-1] * space.n_nodes
        k = len(space.ops)
        for node, (op, pred) in space.fixed.items():
            fixed[node - 1] = k * pred + space.ops.index(op)
        if config.restrict_s0 and any(pred == 0 for node, (_, pred) in space.fixed.items() if node >= 2):
            raise ValueError("enas option restrict_s0 forbids s0 as predecessor of nodes >= 2, "
                             f"but {space!r} fixes one to s0")
        self.space = space
        self._c = core.EnasController(
            space.n_nodes, n_ops=k, hidden=config.controller_hidden, fixed=fixed,
            restrict_s0=config.restrict_s0, temperature=config.temperature, tanh_c=config.tanh_c,
            baseline_decay=config.baseline_decay, entropy_weight=config.entropy_weight,
            entropy_mode=config.entropy_mode, lr=config.lr, seed=int(seed), layers=config.controller_layers)
        self.enumerable = len(space) <= MAX_BELIEF_SPACE

    def archs(self, actions):
        preds, ops = self._c.decode(actions)
        names = self.space.ops
        return [Arch([int(p) for p in pr], [names[int(o)] for o in op], names) for pr, op in zip(preds, ops)]

    def sample(self, count, stream):
        """``count`` architectures from ``stream``: (archs, actions, log-prob, entropy per sample)."""
        actions, logp, ent = self._c.sample(count, stream)
        return self.archs(actions), actions, logp.sum(axis=1), ent.sum(axis=1)

    def sampler(self, batches_per_arch=1):
        """``sampler(step) -> Arch`` for one shared phase (stream 17): a new architecture every
        ``batches_per_arch`` calls, counted from the phase's first mini-batch."""
        current, calls = [None], [0]

        def draw(step):
            if calls[0] % batches_per_arch == 0:
                current[0] = self.sample(1, "shared")[0][0]
            calls[0] += 1
            return current[0]
        return draw

    def reinforce(self, actions, rewards):
        return self._c.reinforce(actions, np.asarray(rewards, dtype=np.float64))

    def log_prob(self, archs):
        """Exact log-probability of each architecture (-inf outside the controller's space)."""
        out = np.full(len(archs), -np.inf)
        for k, a in enumerate(archs):
            try:
                actions = self._c.encode([a.preds], [a.op_indices])
            except ValueError:
                continue
            out[k] = self._c.score(actions)[0].sum()
        return out

    def probabilities(self):
        """Exact probability of every architecture of the space, in id order."""
        return np.exp(self._c.arch_log_probs())

    @property
    def baseline(self):
        """Mean over decisions of the moving-average baseline (NaN before the first update)."""
        b = self._c.baseline
        return math.nan if b is None else float(np.mean(b))

    def state(self):
        return self._c.state()

    def restore(self, state):
        self._c.restore(state)


def _entropy(p):
    q = p[p > 0]
    return float(-(q * np.log(q)).sum())


class ENASSearch:
    """One ENAS search, epoch by epoch, with ``state()`` / ``restore()`` for checkpoints.

    >>> s = ENASSearch(space, corpus, train_config, seed, config)   # doctest: +SKIP
    >>> while s.epoch < s.epochs: s.run_epoch()                      # doctest: +SKIP
    >>> outcome = s.finish()                                         # doctest: +SKIP
    """

    def __init__(self, space, corpus, train_config, seed, config):
        from ..engine import SuperNet, Trainer
        from ..engine.model import batchify

        config.check_feasible(train_config, space)
        self.space, self.config, self.seed = space, config, int(seed)
        self.train_config = train_config
        self.epochs = config.epochs if config.epochs is not None else train_config.epochs
        train, self.valid, _ = train_config.slice(corpus)
        self.net = SuperNet(space, corpus.vocab_size, train_config.hidden_size, sharing=config.sharing,
                            seed=self.seed, output=config.output or train_config.output,
                            **train_config.dropouts)
        self.trainer = Trainer(self.net, train, train_config, seed=self.seed,
                               carry_hidden=config.carry_hidden)
        self.controller = Controller(space, config, self.seed)
        # the ids the study uses (full-space ids, also for a subspace with fixed nodes)
        self.ids = ([space.parent.index(a) for a in space] if self.controller.enumerable
                    and space.parent is not space else None)
        if config.reward_mode == "train" or config.final_scoring == "batch":
            # the reference's valid_data: the split in reward_batch_size columns, walked in
            # windows of reward_bptt rows
            if len(self.valid) < 2 * config.reward_batch_size:
                raise ValueError(f"the validation split has {len(self.valid)} tokens, fewer than two rows of "
                                 f"reward_batch_size = {config.reward_batch_size} columns")
            self._reward_data = batchify(self.valid, config.reward_batch_size)
        window = config.reward_batch_size * (config.reward_bptt + 1)
        if config.reward_mode == "eval" and len(self.valid) < window:
            raise ValueError(f"the validation split has {len(self.valid)} tokens, fewer than one reward "
                             f"batch (reward_batch_size * (reward_bptt + 1) = {window})")
        self._window = window
        self._n_windows = max(1, len(self.valid) // window)
        self.epoch, self.reward_batches = 0, 0
        self.reward_tokens = 0
        self.trace, self.beliefs = [], []
        self.seconds = {"shared": 0.0, "controller": 0.0, "reward": 0.0, "final": 0.0}
        self.controller_steps = 0
        self._likeliest = (-math.inf, None)
        self._derived = None    # derive_every: (1-based epoch, pick, pool, ppl) of the last derive

    # --- rewards ------------------------------------------------------------------------
    def _reward_tokens(self):
        j = self.reward_batches % self._n_windows
        self.reward_batches += 1
        return self.valid[j * self._window:(j + 1) * self._window]

    def _train_mode_ppl(self, arch, pos, hidden):
        """Perplexity of ``arch`` on the reward window at row ``pos`` with dropout on, from
        ``hidden``; returns (ppl, next hidden)."""
        data, c = self._reward_data, self.config
        T = min(c.reward_bptt, len(data) - 1 - pos)
        loss, n, h = self.net.forward_loss(data[pos:pos + T], data[pos + 1:pos + 1 + T], hidden,
                                           train=True, arch=arch)
        self.reward_tokens += int(n)
        mean = loss / n
        return (math.exp(mean) if mean < 700 else math.inf), h

    def _rewards_train_mode(self, archs, walk):
        """The reference's get_reward: each architecture on the current window, the hidden
        state carried on (a NaN/inf state restarts from zero)."""
        ppl = np.empty(len(archs))
        for k, arch in enumerate(archs):
            ppl[k], h = self._train_mode_ppl(arch, walk["pos"], walk["hidden"])
            walk["hidden"] = h if np.isfinite(h).all() else None
        # next window; the reference resets the hidden state whenever the walk wraps
        rows = len(self._reward_data) - 1
        nxt = (walk["pos"] + self.config.reward_bptt) % rows
        if nxt < walk["pos"]:
            walk["hidden"] = None
        walk["pos"] = nxt
        return ppl

    # --- one epoch ------------------------------------------------------------------------
    def _controller_phase(self):
        c, ctrl = self.config, self.controller
        rewards, entropies = [], []
        self._likeliest = (-math.inf, None)
        if c.reset_baseline:
            state = ctrl.state()
            if state["has_baseline"]:
                state["has_baseline"] = False
                ctrl.restore(state)
        walk = {"pos": 0, "hidden": None}
        for _ in range(c.controller_steps):
            t0 = time.perf_counter()
            archs, actions, logp, ent = ctrl.sample(c.controller_batch, "controller")
            k = int(np.argmax(logp))
            if logp[k] > self._likeliest[0]:
                self._likeliest = (float(logp[k]), archs[k])
            t1 = time.perf_counter()
            if c.reward_mode == "train":
                ppl = self._rewards_train_mode(archs, walk)
            else:
                ppl = self.net.perplexity(archs, self._reward_tokens(), c.reward_batch_size, c.reward_bptt)
            t2 = time.perf_counter()
            reward = np.where(np.isfinite(ppl), c.reward_c / ppl, 0.0)
            ctrl.reinforce(actions, reward)
            t3 = time.perf_counter()
            self.seconds["controller"] += (t1 - t0) + (t3 - t2)
            self.seconds["reward"] += t2 - t1
            self.controller_steps += 1
            rewards.extend(reward.tolist())
            entropies.extend(ent.tolist())
        return rewards, entropies

    def _shared_phase(self):
        c, tc = self.config, self.train_config
        t0 = time.perf_counter()
        lr = c.shared_lr(tc.lr, self.epoch + 1)
        steps = tc.max_steps_per_epoch if c.shared_archs is None else c.shared_archs * c.batches_per_arch
        self.trainer.config = tc.replace(lr=lr, max_steps_per_epoch=steps)
        sampler = self.controller.sampler(c.batches_per_arch)
        stats = self.trainer.run_epoch(sampler=sampler)
        self.seconds["shared"] += time.perf_counter() - t0
        return {**stats, "lr": lr}

    def run_epoch(self):
        """One shared phase and one controller phase; appends this epoch's trace row and beliefs."""
        shared = self._shared_phase()
        rewards, entropies = self._controller_phase()
        every = self.config.derive_every
        if every is not None and self.epoch % every == 0:
            # the code's derive(): after the controller phase of each epoch whose 0-based index
            # is divisible by save_epoch; the search returns the last one
            self._derived = (self.epoch + 1, *self.pick())
        self.epoch += 1
        t0 = time.perf_counter()
        row = {"epoch": self.epoch, "train_loss": shared["train_loss"], "shared_steps": shared["steps"],
               "shared_lr": shared["lr"], "controller_steps": self.config.controller_steps,
               "reward": float(np.mean(rewards)) if rewards else math.nan,
               "reward_max": float(np.max(rewards)) if rewards else math.nan,
               "baseline": self.controller.baseline,
               "entropy": float(np.mean(entropies)) if entropies else math.nan}
        if self.controller.enumerable:
            p = self.controller.probabilities()
            best = int(np.argmax(p))
            row.update(entropy_exact=_entropy(p), argmax_id=self._id(best),
                       argmax_arch=str(self.space.arch(best)), p_argmax=float(p[best]))
            self.beliefs.append(p)
        elif self._likeliest[1] is not None:
            # too many architectures to enumerate: the likeliest of this epoch's controller-phase
            # samples stands in for the mode, with its exact probability under the controller now
            arch = self._likeliest[1]
            row.update(entropy_exact=math.nan, argmax_id=self._id(self.space.index(arch)),
                       argmax_arch=str(arch), p_argmax=float(np.exp(self.controller.log_prob([arch])[0])))
        else:
            row.update(entropy_exact=math.nan, argmax_id=-1, argmax_arch="", p_argmax=math.nan)
        self.seconds["controller"] += time.perf_counter() - t0
        self.trace.append(row)
        return row

    def _id(self, position):
        return int(self.ids[position]) if self.ids is not None else int(position)

    # --- the pick ---------------------------------------------------------------------------
    def pick(self):
        """Best of ``final_samples`` controller draws, scored with the shared weights as
        ``final_scoring`` says, each draw (``final_pool="draws"``, in draw order) or each
        distinct one (in id order); ties go to the first."""
        c, tc = self.config, self.train_config
        t0 = time.perf_counter()
        archs = self.controller.sample(c.final_samples, "final")[0]
        if c.final_pool == "draws":
            pool = list(archs)
        elif c.final_pool == "space" and len(self.space) <= c.final_samples:
            pool = list(self.space)
        else:
            pool = sorted(set(archs), key=self.space.index)
        if c.final_scoring == "batch":
            # the reference's derive(): each on the first reward window from a zero state, dropout
            # on; a repeated draw is scored again, so a frequent one has more chances
            ppl = np.array([self._train_mode_ppl(a, 0, None)[0] for a in pool])
        else:   # deterministic: each distinct architecture once
            distinct = sorted(set(pool), key=self.space.index)
            by = dict(zip(distinct, self.net.perplexity(distinct, self.valid, tc.eval_batch_size, tc.bptt)))
            ppl = np.array([by[a] for a in pool])
        best = int(np.argmin(ppl))   # first minimum
        self.seconds["final"] += time.perf_counter() - t0
        return pool[best], pool, ppl

    def finish(self):
        if self._derived is not None:
            pick_epoch, arch, pool, ppl = self._derived
        else:
            pick_epoch, (arch, pool, ppl) = self.epoch, self.pick()
        trace = pd.DataFrame(self.trace)
        # compact, since the report prints it: how many candidates the pick was chosen from, its
        # WS perplexity, whether it is the controller's own most likely architecture at the end,
        # and the epoch after which it was derived
        info = {"final_candidates": len(pool), "pick_ws_ppl": float(np.min(ppl)),
                "pick_is_mode": bool(self.trace) and self.trace[-1]["argmax_arch"] == str(arch),
                "pick_epoch": int(pick_epoch)}
        if self.controller.enumerable:
            pos = self.space.index(arch)
            trace["p_pick"] = [float(p[pos]) for p in self.beliefs]
            n = len(self.space)
            ids = np.array(self.ids) if self.ids is not None else np.arange(n)
            beliefs = pd.DataFrame({"epoch": np.repeat(np.arange(1, len(self.beliefs) + 1), n),
                                    "arch_id": np.tile(ids, len(self.beliefs)),
                                    "belief": np.concatenate(self.beliefs) if self.beliefs else []})
        else:
            trace["p_pick"] = math.nan
            if len(trace):
                trace.loc[trace.index[-1], "p_pick"] = float(np.exp(self.controller.log_prob([arch])[0]))
            beliefs = pd.DataFrame()
        budget = self.net.budget()
        budget["valid_tokens"] += self.reward_tokens    # train-mode rewards bypass net.perplexity
        budget = {**budget, "controller_steps": self.controller_steps,
                  "controller_samples": self.controller_steps * self.config.controller_batch,
                  "controller_seconds": self.seconds["controller"],
                  "reward_seconds": self.seconds["reward"], "shared_seconds": self.seconds["shared"],
                  "final_seconds": self.seconds["final"], "epochs": self.epoch}
        return SearchOutcome(arch, trace, beliefs, budget, info)

    # --- checkpoints -------------------------------------------------------------------------
    def state(self):
        return {"trainer": self.trainer.state(), "controller": self.controller.state(),
                "epoch": self.epoch, "reward_batches": self.reward_batches, "reward_tokens": self.reward_tokens,
                "controller_steps": self.controller_steps, "trace": list(self.trace),
                "beliefs": [b.copy() for b in self.beliefs], "seconds": dict(self.seconds),
                "derived": self._derived_state()}

    def _derived_state(self):
        if self._derived is None:
            return None
        epoch, arch, pool, ppl = self._derived
        return {"epoch": epoch, "arch": self.space.index(arch), "pool": [self.space.index(a) for a in pool],
                "ppl": np.asarray(ppl, dtype=np.float64).copy()}

    def restore(self, state):
        self.trainer.restore(state["trainer"])
        self.controller.restore(state["controller"])
        self.epoch, self.reward_batches = int(state["epoch"]), int(state["reward_batches"])
        self.reward_tokens = int(state.get("reward_tokens", 0))
        self.controller_steps = int(state["controller_steps"])
        self.trace = [dict(r) for r in state["trace"]]
        self.beliefs = [np.asarray(b, dtype=np.float64) for b in state["beliefs"]]
        self.seconds = dict(state["seconds"])
        d = state.get("derived")     # absent in checkpoints written before derive_every
        self._derived = None if d is None else (
            int(d["epoch"]), self.space.arch(int(d["arch"])), [self.space.arch(int(i)) for i in d["pool"]],
            np.asarray(d["ppl"], dtype=np.float64))


def search(space, corpus, train_config, seed, config, checkpoint=None):
    """Run ENAS on ``space`` (see the module docstring) and return its :class:`SearchOutcome`;
    with a ``checkpoint``, resume from its state and save after every epoch."""
    return run_epochs(ENASSearch(space, corpus, train_config, seed, config), checkpoint)


# the budget fields and the paper's two settings of them: the 8-node reference and the 2-node
# change of §4.2 (20 architectures x 10 batches, 20 controller steps)
_BUDGET = ("epochs", "shared_archs", "batches_per_arch", "controller_steps")
_MESSAGES = {
    "controller_layers": lambda v: f"{v}-layer controller" + (
        " as the paper's code (its text: two layers)" if v == 1 else " (the paper's text: two layers)"),
    "restrict_s0": lambda v: "full space: nodes >= 2 may read s0 (the paper's controller reaches 16 of the "
                             "32 two-node cells)",
    "output": lambda v: "super-net output: " + ("the recipe's" if v is None else v) + " (the reference: the "
                        "mean of the loose ends)",
    "carry_hidden": lambda v: "hidden state reset at every architecture change (the reference carries it)",
    "reward_mode": lambda v: "eval-mode rewards (the reference: train mode, dropout on)",
    "reset_baseline": lambda v: "one baseline for the whole search (the reference restarts it each phase)",
    "derive_every": lambda v: ("the pick derived after the last epoch" if v is None else
                               f"the pick derived every {v} epochs, the last one returned") +
                              " (the paper's code: every 30 epochs, the last derive returned)",
}


@describes("enas", same="as the paper's text, else its code (the text's two-layer controller; the "
                         "code's one layer: controller_layers=1)")
def _deviations(c, recipe):
    """Deviations of an ENASConfig from the paper's ENAS (docs/fidelity.md "ENAS")."""
    ref, out = ENASConfig(), []  # ENASConfig's defaults are the reference values
    for field, message in _MESSAGES.items():
        if getattr(c, field) != getattr(ref, field):
            out.append(message(getattr(c, field)))
    if off_budget(c, _BUDGET, (ref, PRESETS.get("paper-2node"))):
        shared = f"{c.shared_archs} x {c.batches_per_arch}" if c.shared_archs is not None else "one pass"
        out.append(f"scaled: {budget_epochs(c, recipe)} epochs, shared phase {shared}, {c.controller_steps} "
                   f"controller steps (the paper: 250 epochs, 200 x 1 and 2000 (8-node), 20 x 10 and 20 (2-node))")
    return out + field_deviations(c, ref, set(_MESSAGES) | set(_BUDGET))


register("enas", search, ENASConfig, PRESETS)
