"""ENAS (Pham et al., 2018) as a study policy: an LSTM controller trained with REINFORCE
writes architectures, a weight-sharing super-net trained on the architectures it writes
scores them (docs/design.md §6; the paper's §3.2).

One search epoch is
1. a **shared phase**: one epoch of the search-time recipe (:meth:`Trainer.run_epoch`) on the
   super-net, the architecture of every mini-batch drawn from the controller;
2. a **controller phase**: ``controller_steps`` REINFORCE updates; each draws
   ``controller_batch`` architectures, scores them on the next validation mini-batch
   (``reward_batch_size`` rows x ``reward_bptt`` steps, walking the validation split and
   wrapping) with the shared weights, reward ``reward_c / ppl``, and takes one Adam step.
After the last epoch the controller draws ``final_samples`` architectures; the distinct ones
are scored on the whole validation split and the best is the pick.

The controller, its sampling, gradients and Adam are C (``csrc/enas.c``): a 1-layer LSTM that
writes node 1's activation, then each later node's predecessor and activation, one linear head
per decision, logits / ``temperature`` then ``tanh_c * tanh``. Its draws come from the
counter-based streams 16-19 keyed by the seed, so a seed fixes the whole search.

Differences from the reference (carpedm20/ENAS-pytorch, whose settings docs/design.md §6 takes):
- the full space: nodes >= 2 may take ``s0`` as predecessor; ``restrict_s0=True`` brings back
  the original rule (its space has ``(n-1)! * 4^n`` cells, e.g. 16 of the 32 at n = 2);
- rewards are computed with a hidden state that starts from zero for each architecture (the
  reference carried it across architectures); each reward batch is ``reward_batch_size``
  contiguous pieces of ``reward_bptt + 1`` tokens of the validation split;
- the final pick is scored on the whole validation split (the reference used one batch).

Trace (one row per epoch): shared-phase loss and steps, mean reward and entropy of the
controller phase, baseline, the current most likely architecture and its probability, and the
probability of the eventual pick. Beliefs: the exact probability of every architecture at the
end of each epoch in enumerable spaces.
"""
import math
import time
from dataclasses import dataclass, fields
from typing import Optional

import numpy as np
import pandas as pd

from ..presets import Presets
from ..space import Arch
from . import MAX_BELIEF_SPACE, SearchOutcome, register, resume_from

SHARINGS = ("node", "edge", "edge_op")
ENTROPY_MODES = ("reward", "regularizer")
FINAL_POOLS = ("samples", "space")


def _int_in(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValueError(f"enas option {name} must be an integer in {lo}..{hi}, got {value!r}")


def _float_in(name, value, lo, hi, lo_open=False, hi_open=False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        interval = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
        raise ValueError(f"enas option {name} must be a number in {interval}, got {value!r}")


def _choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"enas option {name} must be one of {allowed}, got {value!r}")


@dataclass(frozen=True)
class ENASConfig:
    """Hyper-parameters of the ENAS search; the defaults are the reference settings (the
    PyTorch ENAS code for PTB, docs/design.md §6).

    epochs: search epochs (reference 150); ``None`` = the search recipe's ``epochs``.
    controller_steps: REINFORCE updates per epoch (2000).
    controller_batch: architectures drawn and scored per update (1; the gradient is their mean).
    reward_batch_size, reward_bptt: one reward mini-batch, 64 rows x 35 steps.
    reward_c: reward = reward_c / validation perplexity (80).
    entropy_weight, entropy_mode: entropy bonus 1e-4, added to each decision's reward
        ("reward", the reference default) or as a regulariser on the loss ("regularizer").
    baseline_decay: moving-average baseline, b <- decay * b + (1 - decay) * reward (0.95).
    lr: Adam learning rate (3.5e-4; betas 0.9, 0.999, eps 1e-8 as torch's defaults).
    controller_hidden, temperature, tanh_c: LSTM(100), logits / 5 then 2.5 * tanh.
    restrict_s0: forbid s0 as predecessor of nodes >= 2, as the original ENAS (False).
    sharing: super-net granularity (docs/design.md §5); "edge" is ENAS's own.
    carry_hidden: carry the super-net's hidden state across an architecture change in the
        shared phase (the reference did; False resets it, docs/design.md §5).
    batches_per_arch: consecutive shared-phase mini-batches per sampled architecture (1; the
        paper's 2-node runs used 10: "20 architectures per epoch instead of 200, each trained
        on 10 batches").
    final_samples: architectures drawn for the final pick (100).
    final_pool: "samples" scores the distinct drawn architectures; "space" scores the whole
        space when it has at most ``final_samples`` architectures (the drawn ones otherwise).
    """
    epochs: Optional[int] = 150
    controller_steps: int = 2000
    controller_batch: int = 1
    reward_batch_size: int = 64
    reward_bptt: int = 35
    reward_c: float = 80.0
    entropy_weight: float = 1e-4
    entropy_mode: str = "reward"
    baseline_decay: float = 0.95
    lr: float = 3.5e-4
    controller_hidden: int = 100
    temperature: float = 5.0
    tanh_c: float = 2.5
    restrict_s0: bool = False
    sharing: str = "edge"
    carry_hidden: bool = False
    batches_per_arch: int = 1
    final_samples: int = 100
    final_pool: str = "samples"

    def validate(self):
        if self.epochs is not None:
            _int_in("epochs", self.epochs, 1, 100_000)
        _int_in("controller_steps", self.controller_steps, 0, 10_000_000)
        _int_in("controller_batch", self.controller_batch, 1, 4096)
        _int_in("reward_batch_size", self.reward_batch_size, 1, 4096)
        _int_in("reward_bptt", self.reward_bptt, 1, 4096)
        _float_in("reward_c", self.reward_c, 0, 1e6, lo_open=True)
        _float_in("entropy_weight", self.entropy_weight, 0, 1e6)
        _choice("entropy_mode", self.entropy_mode, ENTROPY_MODES)
        _float_in("baseline_decay", self.baseline_decay, 0, 1, hi_open=True)
        _float_in("lr", self.lr, 0, 1e3)
        _int_in("controller_hidden", self.controller_hidden, 1, 4096)
        _float_in("temperature", self.temperature, 0, 1e6, lo_open=True)
        _float_in("tanh_c", self.tanh_c, 0, 1e6, lo_open=True)
        for name in ("restrict_s0", "carry_hidden"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"enas option {name} must be true or false, got {getattr(self, name)!r}")
        _choice("sharing", self.sharing, SHARINGS)
        _int_in("batches_per_arch", self.batches_per_arch, 1, 1_000_000)
        _int_in("final_samples", self.final_samples, 1, 1_000_000)
        _choice("final_pool", self.final_pool, FINAL_POOLS)
        return self

    def check_feasible(self, sizes, train_config, space=None):
        """Refuse, before any job runs, a search the data cannot feed: ``sizes`` are the
        split lengths (tokens) the search recipe ``train_config`` gives."""
        window = self.reward_batch_size * (self.reward_bptt + 1)
        if sizes["valid"] < window:
            fit = sizes["valid"] // (self.reward_bptt + 1)
            raise ValueError(
                f"policy enas, option reward_batch_size={self.reward_batch_size}: one reward batch needs "
                f"{self.reward_batch_size} x ({self.reward_bptt} + 1) = {window:,} validation tokens and the "
                f"search recipe gives {sizes['valid']:,}; fix: reward_batch_size <= {fit} (or a smaller "
                f"reward_bptt), or the enas preset that fits the study (e.g. preset = \"smoke\")")


PRESETS = Presets("enas")
PRESETS.add("reference", ENASConfig,
            "the reference settings (ENAS-pytorch for PTB, docs/design.md §6): 150 epochs, 2000 "
            "controller steps of one 64x35 validation batch each, 100 final samples")
PRESETS.add("cpu", lambda: ENASConfig(epochs=None, controller_steps=200, reward_batch_size=10, lr=3.5e-3),
            "for a 2-core machine: the search recipe's epochs instead of 150; 200 controller "
            "updates per epoch instead of 2000, on reward batches of 10 rows instead of 64 (a "
            "reward costs ~1/8 of a shared step at d=64 on PTB, so the controller phase costs "
            "about half a 45-step shared phase); Adam lr 3.5e-3 instead of 3.5e-4, because ~1000 "
            "updates at the reference rate leave the controller within 0.5% of uniform (measured "
            "on PTB, study preset quick), while at 10x it concentrates as ~10,000 reference "
            "updates would; controller, baseline and final pick as the reference")
PRESETS.add("paper-2node", lambda: ENASConfig(batches_per_arch=10),
            "the reference with the paper's 2-node change: each sampled architecture trains on "
            "10 consecutive mini-batches (20 architectures per epoch instead of 200)")
PRESETS.add("smoke", lambda: ENASConfig(epochs=None, controller_steps=10, controller_hidden=16,
                                        reward_batch_size=4, reward_bptt=10, final_samples=10),
            "seconds, for tests: 10 controller steps per epoch, LSTM(16), 4x10 reward batches, "
            "10 final samples")


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
            entropy_mode=config.entropy_mode, lr=config.lr, seed=int(seed))
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

        self.space, self.config, self.seed = space, config, int(seed)
        self.train_config = train_config
        self.epochs = config.epochs if config.epochs is not None else train_config.epochs
        train, self.valid, _ = train_config.slice(corpus)
        self.net = SuperNet(space, corpus.vocab_size, train_config.hidden_size, sharing=config.sharing,
                            seed=self.seed, output=train_config.output, **train_config.dropouts)
        self.trainer = Trainer(self.net, train, train_config, seed=self.seed,
                               carry_hidden=config.carry_hidden)
        self.controller = Controller(space, config, self.seed)
        # the ids the study uses (full-space ids, also for a subspace with fixed nodes)
        self.ids = ([space.parent.index(a) for a in space] if self.controller.enumerable
                    and space.parent is not space else None)
        window = config.reward_batch_size * (config.reward_bptt + 1)
        if len(self.valid) < window:
            raise ValueError(f"the validation split has {len(self.valid)} tokens, fewer than one reward "
                             f"batch (reward_batch_size * (reward_bptt + 1) = {window})")
        self._window = window
        self._n_windows = len(self.valid) // window
        self.epoch, self.reward_batches = 0, 0
        self.trace, self.beliefs = [], []
        self.seconds = {"shared": 0.0, "controller": 0.0, "reward": 0.0, "final": 0.0}
        self.controller_steps = 0
        self._likeliest = (-math.inf, None)

    # --- one epoch ------------------------------------------------------------------------
    def _reward_tokens(self):
        j = self.reward_batches % self._n_windows
        self.reward_batches += 1
        return self.valid[j * self._window:(j + 1) * self._window]

    def _controller_phase(self):
        c, ctrl = self.config, self.controller
        rewards, entropies = [], []
        self._likeliest = (-math.inf, None)
        for _ in range(c.controller_steps):
            t0 = time.perf_counter()
            archs, actions, logp, ent = ctrl.sample(c.controller_batch, "controller")
            k = int(np.argmax(logp))
            if logp[k] > self._likeliest[0]:
                self._likeliest = (float(logp[k]), archs[k])
            t1 = time.perf_counter()
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
        t0 = time.perf_counter()
        sampler = self.controller.sampler(self.config.batches_per_arch)
        stats = self.trainer.run_epoch(sampler=sampler)
        self.seconds["shared"] += time.perf_counter() - t0
        return stats

    def run_epoch(self):
        """One shared phase and one controller phase; appends this epoch's trace row and beliefs."""
        shared = self._shared_phase()
        rewards, entropies = self._controller_phase()
        self.epoch += 1
        t0 = time.perf_counter()
        row = {"epoch": self.epoch, "train_loss": shared["train_loss"], "shared_steps": shared["steps"],
               "controller_steps": self.config.controller_steps,
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
        """Best of ``final_samples`` controller draws (distinct ones), scored on the whole
        validation split with the shared weights; ties go to the smaller id."""
        c, tc = self.config, self.train_config
        t0 = time.perf_counter()
        archs = self.controller.sample(c.final_samples, "final")[0]
        if c.final_pool == "space" and len(self.space) <= c.final_samples:
            pool = list(self.space)
        else:
            pool = sorted(set(archs), key=self.space.index)
        ppl = self.net.perplexity(pool, self.valid, tc.eval_batch_size, tc.bptt)
        best = int(np.argmin(ppl))   # first minimum: the smallest id
        self.seconds["final"] += time.perf_counter() - t0
        return pool[best], pool, ppl

    def finish(self):
        arch, pool, ppl = self.pick()
        trace = pd.DataFrame(self.trace)
        # compact, since the report prints it: how many candidates the pick was chosen from, its
        # WS perplexity, and whether it is the controller's own most likely architecture
        info = {"final_candidates": len(pool), "pick_ws_ppl": float(np.min(ppl)),
                "pick_is_mode": bool(self.trace) and self.trace[-1]["argmax_arch"] == str(arch)}
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
        budget = {**self.net.budget(), "controller_steps": self.controller_steps,
                  "controller_samples": self.controller_steps * self.config.controller_batch,
                  "controller_seconds": self.seconds["controller"],
                  "reward_seconds": self.seconds["reward"], "shared_seconds": self.seconds["shared"],
                  "final_seconds": self.seconds["final"], "epochs": self.epoch}
        return SearchOutcome(arch, trace, beliefs, budget, info)

    # --- checkpoints -------------------------------------------------------------------------
    def state(self):
        return {"trainer": self.trainer.state(), "controller": self.controller.state(),
                "epoch": self.epoch, "reward_batches": self.reward_batches,
                "controller_steps": self.controller_steps, "trace": list(self.trace),
                "beliefs": [b.copy() for b in self.beliefs], "seconds": dict(self.seconds)}

    def restore(self, state):
        self.trainer.restore(state["trainer"])
        self.controller.restore(state["controller"])
        self.epoch, self.reward_batches = int(state["epoch"]), int(state["reward_batches"])
        self.controller_steps = int(state["controller_steps"])
        self.trace = [dict(r) for r in state["trace"]]
        self.beliefs = [np.asarray(b, dtype=np.float64) for b in state["beliefs"]]
        self.seconds = dict(state["seconds"])


def search(space, corpus, train_config, seed, config, checkpoint=None):
    """Run ENAS on ``space`` (see the module docstring) and return its :class:`SearchOutcome`;
    with a ``checkpoint``, resume from its state and save after every epoch."""
    s = ENASSearch(space, corpus, train_config, seed, config)
    save = resume_from(checkpoint, s)
    while s.epoch < s.epochs:
        s.run_epoch()
        save()
    return s.finish()


register("enas", search, ENASConfig, PRESETS)
