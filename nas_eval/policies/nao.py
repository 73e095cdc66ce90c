"""NAO (Luo et al. 2018, the NAO-WS PTB search) as a study policy (docs/design.md §6).

The loop, as the reference ``train_search.py`` runs it:

1. a pool of distinct random architectures (never more than the space holds: the reference
   drew with a loop that could not end once the pool asked for more than the space has);
2. the weight-sharing super-net (``sharing="edge_op"``, NAO's granularity: one matrix per
   (edge, activation)) trained with the search recipe, each mini-batch on one architecture
   drawn uniformly from the pool (``Trainer.run_epoch`` with a sampler);
3. at the scoring epochs of :meth:`NAOConfig.schedule` -- every ``eval_every`` epochs, or
   ``rounds`` rounds spread evenly over the search (the last epoch always scores) -- the whole
   pool scored on the **full** validation split with the shared weights (as the paper's
   framework did; NAO-WS itself scored one random 35-token window per architecture);
4. unless it is the last round: the encoder-predictor-decoder (:class:`NAOController`) trained
   on the pool with min-max normalised validation losses (0 = best), then the contexts of the
   ``top_k`` best moved down the predictor's gradient with step lambda = 1, 2, ... until
   ``max_new`` new distinct architectures decode (or lambda reaches ``max_step``); the pool
   keeps its best, takes the new ones and ``random_new`` random ones, and stays the same size
   (``pool_update="paper-code"``: the paper code's rule, under which it shrinks);
5. the pick is the best architecture of the last scoring round.

The super-net trains with the recipe's schedule but NAO's own ``child_lr`` / ``child_clip``
(the reference: 0.25 / 10). docs/fidelity.md ("NAO") sets every setting beside the paper's
text and its code (kcyu2014/nas-landmarkreg ``nasws/rnn/nao_policy``). A config that would run
no controller round (NAO would become "the WS-best of a random pool") refuses to run:
:meth:`NAOConfig.check_feasible`.

Trace: one row per scoring round (pool, WS perplexities, pick so far, the new architectures,
lambda reached, the mean norm of the predictor's gradient at the moved architectures,
controller losses, the predictor's Kendall tau on the pool). Beliefs (spaces
of at most 10,000 architectures): after every controller training, ``1 - predicted score``
for every architecture, so the report can put the predictor's ranking next to the ground
truth round by round. ``info["pick_in_initial_pool"]`` says whether the pick was one of the
initial random architectures (the paper: always, for NAO in the 2-node space).

>>> from nas_eval.policies import check_options
>>> check_options("nao", {"preset": "paper-2node"}).max_new
3
"""
import math
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from .._validate import Fields
from ..presets import Presets
from ..rng import STREAM_ARCH, STREAM_NAO_POOL, Draws
from ..space import SEARCH_SHARINGS
from . import MAX_BELIEF_SPACE, SearchOutcome, register, resume_from
from .fidelity import budget_epochs, describes, field_deviations, off_budget

POOL_UPDATES = ("keep-size", "paper-code")


@dataclass(frozen=True)
class NAOConfig:
    """NAO's hyper-parameters; defaults are the reference PTB search (NAO-WS
    ``train_search.sh`` as the paper's ``nasws/rnn/nao_policy`` runs it, the 8-node setting).

    Search schedule -- epochs: super-net epochs (None: the study's search recipe,
    ``train_config.epochs``; the reference ran 1000); eval_every: epochs between scoring
    rounds, or None to spread ``rounds`` scoring rounds evenly over the epochs (5: the
    reference's every 200 of 1000, kept in proportion at any budget); min_controller_rounds:
    the fewest controller rounds a run accepts (:meth:`check_feasible`; 1, the scaled presets 3);
    pool_size: architectures in the pool (1000) unless pool_fraction (a
    fraction of the space, the paper's 2-node adaptation: 0.2) is set; controller_epochs:
    passes of the controller over the pool per round (1000); top_k: architectures whose
    embeddings are moved (100); max_new: new architectures per round at most (300);
    random_new: random architectures added per round (50); max_step: largest step lambda
    (30); sharing: the super-net's granularity ("edge_op", NAO's); child_lr, child_clip: the
    super-net's SGD learning rate and gradient-norm clip (0.25 and 10, the reference's;
    None = the search recipe's); carry_hidden: carry the super-net's hidden state across
    architecture changes (True: the reference's training loop kept one hidden state for the
    whole epoch; False resets it at every change, docs/design.md §5). pool_update: how a round
    renews the pool -- "keep-size" (this project's: at most as many new ones as the pool holds,
    random additions distinct and new, the pool keeps its size) or "paper-code" (the paper
    code's, nas-landmarkreg ``nao_policy_search.py``: ``max_new`` uncapped, ``random_new``
    uniform draws each kept if new to the pool and to the proposals but not checked against each
    other, and the pool cut by ``random_new`` whatever was kept, so it shrinks; see
    :func:`paper_code_pool`).

    Controller -- emb_size 48 (a node's two tokens make one 96-wide LSTM input),
    hidden_size 96, mlp_layers 4 of mlp_hidden_size 200, dropout 0.1 on the encoder's token
    embeddings, Adam lr 1e-3 with L2 weight_decay 1e-4, max_grad_norm 5, loss
    trade_off * MSE + (1 - trade_off) * NLL with 0.8, mini-batches of batch_size 100
    reshuffled each epoch (shuffle); drop_partial: drop the last, partial mini-batch of each
    epoch and of the proposal step, as the reference's batchify did (True; with a pool smaller
    than one batch nothing trains then, so the 2-node presets keep it).
    """
    epochs: Optional[int] = None
    eval_every: Optional[int] = None
    rounds: int = 5
    min_controller_rounds: int = 1
    pool_size: int = 1000
    pool_fraction: Optional[float] = None
    controller_epochs: int = 1000
    top_k: int = 100
    max_new: int = 300
    random_new: int = 50
    max_step: int = 30
    sharing: str = "edge_op"
    child_lr: Optional[float] = 0.25
    child_clip: Optional[float] = 10.0
    carry_hidden: bool = True
    emb_size: int = 48
    hidden_size: int = 96
    mlp_layers: int = 4
    mlp_hidden_size: int = 200
    dropout: float = 0.1
    lr: float = 1e-3
    weight_decay: float = 1e-4
    max_grad_norm: float = 5.0
    trade_off: float = 0.8
    batch_size: int = 100
    shuffle: bool = True
    drop_partial: bool = True
    pool_update: str = "keep-size"

    def validate(self):
        f = Fields(self, "nao option ")
        f.integer("epochs", 1, 1_000_000, optional=True)
        f.integer("eval_every", 1, 1_000_000, optional=True)
        f.integer("rounds", 1, 1_000_000)
        f.integer("min_controller_rounds", 1, 1_000_000)
        f.number("child_lr", 0.0, 1e6, lo_open=True, optional=True)
        f.number("child_clip", 0.0, 1e9, optional=True)
        f.integer("pool_size", 1, 10_000_000)
        f.number("pool_fraction", 0.0, 1.0, lo_open=True, optional=True)
        f.integer("controller_epochs", 0, 1_000_000)
        f.integer("top_k", 1, 10_000_000)
        f.integer("max_new", 0, 10_000_000)
        f.integer("random_new", 0, 10_000_000)
        f.integer("max_step", 1, 100_000)
        f.choice("sharing", SEARCH_SHARINGS)
        f.integer("emb_size", 1, 4096)
        f.integer("hidden_size", 1, 4096)
        f.integer("mlp_layers", 0, 8)
        f.integer("mlp_hidden_size", 1, 4096)
        f.number("dropout", 0.0, 1.0, hi_open=True)
        f.number("lr", 0.0, 1e3)
        f.number("weight_decay", 0.0, 1e3)
        f.number("max_grad_norm", 0.0, 1e9)
        f.number("trade_off", 0.0, 1.0)
        f.integer("batch_size", 1, 65536)
        f.boolean("shuffle", "drop_partial", "carry_hidden")
        f.choice("pool_update", POOL_UPDATES)

    def schedule(self, epochs):
        """The scoring epochs of a search of ``epochs`` epochs (1-based, ascending, the last one
        included); every one but the last is followed by a controller round."""
        if self.eval_every is not None:
            return sorted(set(range(self.eval_every, epochs + 1, self.eval_every)) | {epochs})
        r = min(self.rounds, epochs)
        return sorted({max(1, round(k * epochs / r)) for k in range(1, r + 1)})

    def controller_rounds(self, epochs):
        return len(self.schedule(epochs)) - 1

    def check_feasible(self, train_config=None, space=None, sizes=None):
        """Raise ValueError when this config, with the study's search recipe ``train_config``
        (its ``epochs`` when ``epochs`` is None) and ``space`` (a SearchSpace),
        would run fewer than ``min_controller_rounds`` controller rounds -- NAO would become
        the WS-best of a random pool -- or a round that cannot train or propose. Returns self.
        (``sizes``, the split lengths, are the recipe's concern: NAO scores whole splits.)"""
        self.validate()
        epochs = self.epochs if self.epochs is not None else (train_config.epochs if train_config else None)
        if epochs is not None:
            k, need = self.controller_rounds(epochs), self.min_controller_rounds
            if k < need:
                how = f"eval_every={self.eval_every}" if self.eval_every is not None else f"rounds={self.rounds}"
                src = "" if self.epochs is not None else " (the search recipe's)"
                raise ValueError(
                    f"nao option {how} with {epochs} search epochs{src} gives {k} controller round(s), "
                    f"fewer than min_controller_rounds={need}: NAO would become the WS-best of a random "
                    f"pool; raise the epochs to at least {need + 1}"
                    + (f" or set eval_every <= {max(1, epochs // (need + 1))}" if self.eval_every is not None
                       else f" and rounds to at least {need + 1}") + ", or lower min_controller_rounds")
        for name in ("controller_epochs", "max_new"):
            if getattr(self, name) < 1:
                raise ValueError(f"nao option {name}=0: a controller round would train or propose nothing and "
                                 f"NAO would become the WS-best of a random pool; set {name} >= 1")
        if space is not None:
            space_size = len(space)
            pool = self.pool_for(space_size)
            if pool < 2:
                raise ValueError(f"nao option pool_size/pool_fraction gives a pool of {pool} architecture(s) "
                                 f"in a space of {space_size}: nothing to rank; use a pool of at least 2")
            if self.drop_partial and self.batch_size > pool:
                raise ValueError(f"nao option drop_partial=True with batch_size={self.batch_size} > the pool "
                                 f"of {pool}: every controller mini-batch would be dropped and the controller "
                                 f"never trains; set batch_size <= {pool} or drop_partial=false")
            if self.drop_partial and self.batch_size > min(self.top_k, pool):
                raise ValueError(f"nao option drop_partial=True with batch_size={self.batch_size} > top_k="
                                 f"{min(self.top_k, pool)}: the proposal step would move no architecture; set "
                                 f"batch_size <= top_k or drop_partial=false")
        return self

    def pool_for(self, space_size):
        """Pool size in a space of ``space_size`` architectures (never more than it holds)."""
        n = self.pool_size if self.pool_fraction is None else max(1, round(self.pool_fraction * space_size))
        return min(n, space_size)

    def controller_options(self):
        return {k: getattr(self, k) for k in ("emb_size", "hidden_size", "mlp_layers", "mlp_hidden_size",
                                              "dropout", "lr", "weight_decay", "max_grad_norm", "trade_off",
                                              "batch_size", "shuffle", "drop_partial")}


PRESETS = Presets("nao")
PRESETS.add("reference", NAOConfig,
            "NAO-WS's PTB search as the paper's framework ran it (the 8-node setting): pool 1000, five "
            "scoring rounds (every 200 of 1000 epochs; epochs=None takes the search recipe's), controller "
            "1000 epochs on full batches of 100, 300 new + 50 random per round from the top 100, "
            "super-net lr 0.25 / clip 10")
# The paper, §4.2: "we randomly sample 20% of the possible architectures to define the initial
# candidate pool. We train the encoder-predictor-decoder network for 250 iterations every 50
# epochs using the top-4 architectures in the NAO ranking. At each search iteration, we sample
# at most 3 new architectures to be added to the pool. The rest of the search logic remains
# unchanged." With a 6-architecture pool one controller epoch is one mini-batch, so 250
# iterations = 250 epochs. The reference's 50 random additions per 1000-pool round (5 %) round
# to none for a pool of 6; "remains unchanged" cannot mean 50 in a 32-architecture space.
# The code's batchify drops partial batches: a pool of 6 in batches of 100 would train nothing
# and propose nothing, against the text's 250 iterations and 3 new architectures, so the text
# wins (drop_partial=False; docs/fidelity.md).
PRESETS.add("paper-2node", lambda: NAOConfig(epochs=1000, eval_every=50, pool_fraction=0.2,
                                             controller_epochs=250, top_k=4, max_new=3, random_new=0,
                                             drop_partial=False),
            "the paper's 2-node adaptation: pool 20% of the space, controller 250 iterations every 50 "
            "epochs, top 4 moved, at most 3 new per round, 1000 epochs, super-net lr 0.25 / clip 10")
# 2-core machine: the 2-node adaptation scaled to the study's (few) search epochs: the paper's
# 20 scoring rounds in 1000 epochs become one after every epoch (at most 20), and a search of
# fewer than 4 epochs refuses to run rather than train fewer than 3 controllers; the
# controller keeps the reference sizes (a round of 250 epochs on ~6 architectures takes seconds
# here); the super-net keeps the study's search recipe (lr 0.25 barely moves it in a few epochs).
PRESETS.add("cpu", lambda: NAOConfig(epochs=None, rounds=20, min_controller_rounds=3, pool_fraction=0.2,
                                     controller_epochs=250, top_k=4, max_new=3, random_new=0,
                                     child_lr=None, child_clip=None, drop_partial=False),
            "2-core machine: the 2-node adaptation with the search recipe's epochs (at least 4), scoring "
            "after every epoch (at most 20 rounds), the recipe's lr and clip")
# seconds, for tests: a small controller trained briefly
PRESETS.add("smoke", lambda: NAOConfig(epochs=None, rounds=20, min_controller_rounds=3, pool_fraction=0.2,
                                       controller_epochs=30, top_k=4, max_new=3, random_new=1, max_step=10,
                                       emb_size=8, hidden_size=16, mlp_layers=2, mlp_hidden_size=16,
                                       batch_size=16, child_lr=None, child_clip=None, drop_partial=False),
            "seconds, for tests: small controller (E=8, H=16), 30 controller epochs per round, at least "
            "4 search epochs")


CONTROLLER_COLUMNS = ("targets", "predicted", "predictor_tau_pool", "controller_mse", "controller_nll", "new",
                      "lambda", "grad_norm_top", "random_added", "dropped")


def distinct_sample(space, draws, k, exclude=()):
    """``k`` distinct uniformly random architectures of ``space`` outside ``exclude`` (fewer
    when the space does not hold that many), from ``draws`` (a :class:`nas_eval.rng.Draws`)."""
    exclude = set(exclude)
    k = min(int(k), len(space) - len(exclude))
    if k <= 0:
        return []
    if len(space) <= 1_000_000:
        # a partial shuffle of the complement: rejection could take ages when few remain
        taken = {space.index(a) for a in exclude}
        free = [i for i in range(len(space)) if i not in taken]
        for j in range(k):
            r = j + draws.integers(len(free) - j)
            free[j], free[r] = free[r], free[j]
        return [space.arch(i) for i in free[:k]]
    out, seen = [], set(exclude)
    while len(out) < k:
        a = space.arch(space.sample_ids(draws))
        if a not in seen:
            seen.add(a)
            out.append(a)
    return out


def paper_code_pool(space, pool, new, draws, random_new):
    """The paper code's renewal of a NAO pool (nas-landmarkreg ``nao_policy_search.py``, after
    ``controller.infer``): ``random_new`` uniform draws of ``space`` from ``draws`` (repeats
    possible), each kept when it is neither in ``pool`` nor in ``new``; the new pool is
    ``pool[:len(pool) - len(new) - random_new] + new + kept`` when something was kept, else
    ``pool[:len(pool) - len(new)] + new`` (Python slices: a negative end counts from the back,
    as in the code). So a round shrinks the pool by the draws it rejected, and the pool may
    hold an architecture twice. ``pool`` is ordered best first. Returns (new pool, kept)."""
    old, fresh = set(pool), set(new)
    drawn = [space.arch(space.sample_ids(draws)) for _ in range(int(random_new))]
    kept = [a for a in drawn if a not in old and a not in fresh]
    cut = len(new) + (int(random_new) if kept else 0)
    return list(pool[:len(pool) - cut]) + list(new) + kept, kept


def _rank(losses):
    """Order of the pool, best first: lower loss first, NaN (blown up) last, ties by position."""
    key = np.where(np.isnan(losses), np.inf, losses)
    return np.argsort(key, kind="stable")


class NAOSearch:
    """One NAO search (see the module docstring); :meth:`run` returns the SearchOutcome.
    :meth:`state` / :meth:`restore` between rounds continue bitwise identically."""

    def __init__(self, space, corpus, train_config, seed, config):
        from ..engine import NAOController, SuperNet, Trainer

        config.check_feasible(train_config, space)
        self.space, self.config, self.seed = space, config, int(seed)
        self.train_config = train_config
        self.epochs = config.epochs or train_config.epochs
        self.rounds_at = config.schedule(self.epochs)
        train, self.valid_tokens, _ = train_config.slice(corpus)
        self.net = SuperNet(space, corpus.vocab_size, train_config.hidden_size, sharing=config.sharing,
                            seed=self.seed, output=train_config.output, **train_config.dropouts)
        child = {k: v for k, v in (("lr", config.child_lr), ("clip", config.child_clip)) if v is not None}
        self.trainer = Trainer(self.net, train, train_config.replace(**child) if child else train_config,
                               seed=self.seed, carry_hidden=config.carry_hidden)
        self.controller = NAOController(space, seed=self.seed, **config.controller_options())
        # draws (docs/design.md §12): the pool from stream 27 (counter 0 the initial pool, r the
        # random additions of round r), each mini-batch's pool architecture from stream 32
        # keyed by the training step, so a resumed search draws the same numbers
        self.pool = distinct_sample(space, Draws(self.seed, STREAM_NAO_POOL, 0), config.pool_for(len(space)))
        self.initial_pool = list(self.pool)
        self.epoch = 0
        self.rows, self.belief_rows = [], []
        self.controller_seconds = 0.0
        self.pick = None
        self._all = list(space) if len(space) <= MAX_BELIEF_SPACE else None
        self._all_ids = [space.parent.index(a) for a in self._all] if self._all is not None else None

    def _sampler(self, step):
        return self.pool[Draws(self.seed, STREAM_ARCH, step).integers(len(self.pool))]

    @property
    def done(self):
        return self.epoch >= self.epochs

    def run_round(self):
        """Train the super-net up to the next scoring epoch, score the pool, and (unless it
        was the last round) train the controller and renew the pool."""
        target = next(e for e in self.rounds_at if e > self.epoch)
        train_loss = math.nan
        while self.epoch < target:
            train_loss = self.trainer.run_epoch(sampler=self._sampler)["train_loss"]
            self.epoch += 1
        losses = self.net.loss(self.pool, self.valid_tokens, self.train_config.eval_batch_size,
                               self.train_config.bptt)
        order = _rank(losses)
        pool = [self.pool[i] for i in order]
        losses = losses[order]
        self.pick = pool[0]
        initial = set(self.initial_pool)
        row = {"epoch": self.epoch, "round": len(self.rows) + 1, "train_loss": train_loss,
               "pool": [str(a) for a in pool], "pool_ids": [self.space.parent.index(a) for a in pool],
               "ws_ppl": [float(np.exp(v)) if v < 700 else math.inf for v in losses],
               "best_arch": str(pool[0]), "best_ws_ppl": float(np.exp(losses[0])) if losses[0] < 700 else math.inf,
               "best_in_initial_pool": pool[0] in initial,
               "pool_from_initial": sum(a in initial for a in pool)}
        # the last round trains no controller: its columns stay None (JSON null)
        row.update(dict.fromkeys(CONTROLLER_COLUMNS) if self.done else self._controller_round(pool, losses))
        self.rows.append(row)

    def _controller_round(self, pool, losses):
        from ..engine import normalise_scores
        from ..metrics import kendall_tau

        c = self.config
        targets = normalise_scores(losses)
        t0 = time.perf_counter()
        fit = self.controller.fit(pool, targets, c.controller_epochs)
        pred = self.controller.predict(pool)
        # the pool keeps its size: at most that many new ones, then random ones new to the pool
        # (the reference could re-draw what it had just dropped), then the best of the old;
        # "paper-code": the code's rule, max_new uncapped and the pool shrinking
        paper = c.pool_update == "paper-code"
        new, lam = self.controller.propose(pool[:c.top_k], c.max_new if paper else min(c.max_new, len(pool)),
                                           exclude=pool, max_step=c.max_step)
        # how far lambda = 1 moves the top architectures: the predictor's gradient norm
        _, grad = self.controller.gradient(self.controller.encode(pool[:c.top_k]))
        grad_norm = float(np.linalg.norm(grad.reshape(len(grad), -1), axis=1).mean())
        draws = Draws(self.seed, STREAM_NAO_POOL, len(self.rows) + 1)
        if paper:
            self.pool, extra = paper_code_pool(self.space, pool, new, draws, c.random_new)
            n_keep = len(self.pool) - len(new) - len(extra)
        else:
            extra = distinct_sample(self.space, draws, min(c.random_new, len(pool) - len(new)), exclude=pool + new)
            n_keep = len(pool) - len(new) - len(extra)
            self.pool = pool[:n_keep] + new + extra
        if self._all is not None:
            belief = 1.0 - self.controller.predict(self._all)
            self.belief_rows.extend(zip([self.epoch] * len(self._all), self._all_ids, belief.tolist()))
        self.controller_seconds += time.perf_counter() - t0
        tau = kendall_tau(pred, targets) if len(pool) > 1 else math.nan
        return {"targets": targets.tolist(), "predicted": pred.tolist(), "predictor_tau_pool": tau,
                "controller_mse": fit["mse"], "controller_nll": fit["nll"], "new": [str(a) for a in new],
                "lambda": lam, "grad_norm_top": grad_norm, "random_added": [str(a) for a in extra],
                "dropped": [str(a) for a in pool[n_keep:]]}

    def run(self):
        while not self.done:
            self.run_round()
        trace = pd.DataFrame(self.rows)
        beliefs = pd.DataFrame(self.belief_rows, columns=["epoch", "arch_id", "belief"])
        budget = {**self.net.budget(), "controller_steps": self.controller.steps,
                  "controller_seconds": self.controller_seconds, "rounds": len(self.rows),
                  "archs_scored": len({a for r in self.rows for a in r["pool"]})}
        info = {"pick_in_initial_pool": self.pick in set(self.initial_pool),
                "initial_pool": [str(a) for a in self.initial_pool],
                "pool_size": len(self.initial_pool), "epochs": self.epochs,
                "rounds_at": list(self.rounds_at)}
        return SearchOutcome(self.pick, trace, beliefs, budget, info)

    # --- checkpoints -------------------------------------------------------------------------
    def state(self):
        """Everything to continue bitwise identically (between rounds)."""
        return {"trainer": self.trainer.state(), "controller": self.controller.state(),
                "pool": [str(a) for a in self.pool], "initial_pool": [str(a) for a in self.initial_pool],
                "epoch": self.epoch, "rows": [dict(r) for r in self.rows],
                "belief_rows": [list(r) for r in self.belief_rows],
                "controller_seconds": self.controller_seconds,
                "pick": None if self.pick is None else str(self.pick)}

    def restore(self, state):
        from ..space import Arch

        ops = self.space.ops
        self.trainer.restore(state["trainer"])
        self.controller.restore(state["controller"])
        self.pool = [Arch.parse(a, ops) for a in state["pool"]]
        self.initial_pool = [Arch.parse(a, ops) for a in state["initial_pool"]]
        self.epoch = int(state["epoch"])
        self.rows = [dict(r) for r in state["rows"]]
        self.belief_rows = [tuple(r) for r in state["belief_rows"]]
        self.controller_seconds = float(state["controller_seconds"])
        self.pick = None if state["pick"] is None else Arch.parse(state["pick"], ops)


def search(space, corpus, train_config, seed, config, checkpoint=None):
    """Run NAO (see the module docstring) and return its SearchOutcome; with a
    ``checkpoint``, resume from its state and save after every round."""
    s = NAOSearch(space, corpus, train_config, seed, config)
    save = resume_from(checkpoint, s)
    while not s.done:
        s.run_round()
        save()
    return s.run()


# the search's budget: scaled presets change these together (docs/fidelity.md "NAO")
_BUDGET = ("epochs", "eval_every", "rounds", "min_controller_rounds", "pool_size", "pool_fraction",
           "controller_epochs", "top_k", "max_new", "random_new")


@describes("nao", same="as the paper's text, else its code (the pool keeps its size: the code's "
                        "shrinking pool is pool_update='paper-code')")
def _deviations(c, recipe):
    """Deviations of a NAOConfig from the paper's NAO (docs/fidelity.md "NAO"): the budget
    against the reference (8-node) and the paper's 2-node adaptation, every other field
    against the reference."""
    ref, out = NAOConfig(), []  # NAOConfig's defaults are the reference values
    if off_budget(c, _BUDGET, (ref, PRESETS.get("paper-2node"))):
        epochs = budget_epochs(c, recipe)
        rounds = c.controller_rounds(epochs) if isinstance(epochs, int) else c.rounds
        out.append(f"scaled: {epochs} epochs, {rounds} controller rounds of {c.controller_epochs} epochs, "
                   f"top {c.top_k}, at most {c.max_new} new and {c.random_new} random per round (the paper: "
                   f"1000 epochs; 2-node: a round every 50 epochs of 250 iterations, top 4, at most 3 new)")
    if c.pool_update == "paper-code":
        out.append("pool renewed as the paper's code did (pool_update=paper-code: it shrinks)")
    for name in ("child_lr", "child_clip"):
        if getattr(c, name) is None:
            out.append(f"{name} from the search recipe (reference {getattr(ref, name):g})")
    return out + field_deviations(c, ref, set(_BUDGET) | {"pool_update", "child_lr", "child_clip", "drop_partial"})


register("nao", search, NAOConfig, PRESETS)

__all__ = ["NAOConfig", "NAOSearch", "PRESETS", "search", "distinct_sample", "paper_code_pool"]
