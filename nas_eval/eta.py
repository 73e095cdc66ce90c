"""How long a study still has to run: a cost model of its jobs, calibrated while it runs.

Jobs differ by orders of magnitude (a super-net scores every architecture; a small training
run takes seconds), so "jobs left x mean job time" is wrong whenever the longest jobs run
first, as a Study schedules them. Each job gets a cost in floating-point operations from its
parameters (the cell LM's products: input node 8d², n nodes 4nd², tied decoder 2dV per token
forward, three times that to train), and the ETA divides the cost left by the rate observed
so far (cost done / wall time elapsed, which folds in the number of workers and the machine).
A per-job overhead (process start, reading the corpus) keeps tiny jobs from counting as free.

>>> est = Estimator({"a": 4e9, "b": 4e9, "c": 8e9})
>>> est.done("a")
>>> round(est.eta_seconds(elapsed=2.0), 1)
6.0
"""
import math
import time

# cost of the fixed work of one job (start-up, corpus, evaluation set-up), in FLOPs: about a
# tenth of a second at the few GFLOP/s a small cell reaches
JOB_OVERHEAD = 5e8
# evaluation (batch 10, one window of 35 at a time: products of a few rows) runs far below the
# training rate per FLOP; measured on the `standard` main job (2-core Zen 4): about 6x
EVAL_FACTOR = 6.0
# a search policy's super-net work relative to plain uniform-sampling weight sharing
# (controller / predictor updates, mixed-cell products, second-order steps), from measured
# budgets at the scaled presets
POLICY_FACTOR = {"ws-random": 1.0, "enas": 1.4, "nao": 1.3, "darts": 3.0}


def forward_flops_per_token(hidden_size, n_nodes, vocab_size):
    """Multiply-adds x 2 of one token through the cell LM (docs/design.md §3)."""
    d = hidden_size
    return 8.0 * d * d + 4.0 * n_nodes * d * d + 2.0 * d * vocab_size


def _tokens(config, split, default):
    n = config.get(f"{split}_tokens")
    return default if n is None else n


def _train_tokens_per_epoch(config, corpus_tokens):
    tokens = _tokens(config, "train", corpus_tokens)
    cap = config.get("max_steps_per_epoch")
    if cap:
        tokens = min(tokens, cap * config["batch_size"] * config["bptt"])
    return tokens


def job_cost(kind, params, vocab_size=10_000, train_tokens=929_589, valid_tokens=73_760,
             test_tokens=82_430):
    """FLOPs of one study job from its params (``nas_eval.plan`` jobs); the corpus sizes
    default to PTB's and matter only for splits a config does not cut."""
    config = params.get("config", {})
    n = params.get("n_nodes", 2)
    d = config.get("hidden_size", 64)
    fwd = forward_flops_per_token(d, n, vocab_size)
    epochs = config.get("epochs", 1)
    train = epochs * _train_tokens_per_epoch(config, train_tokens) * 3.0 * fwd
    valid = EVAL_FACTOR * _tokens(config, "valid", valid_tokens) * fwd
    if kind == "train":
        return JOB_OVERHEAD + train + epochs * valid + EVAL_FACTOR * _tokens(config, "test", test_tokens) * fwd
    if kind == "ws":
        last = max(params.get("eval_epochs") or [epochs])
        train = last * _train_tokens_per_epoch(config, train_tokens) * 3.0 * fwd
        scored = len(params.get("eval_epochs") or [1]) * len(params.get("archs", ())) * valid
        return JOB_OVERHEAD + train + scored
    if kind == "search":
        policy = params.get("policy", "ws-random")
        if policy == "random":
            return JOB_OVERHEAD
        options = params.get("options") or {}
        space = math.factorial(n) * 4 ** n
        candidates = min(space, options.get("candidates", 100))
        factor = POLICY_FACTOR.get(policy, 1.5)
        return JOB_OVERHEAD + factor * train + candidates * valid
    return JOB_OVERHEAD


class Estimator:
    """Remaining time of a set of jobs, ``costs`` keyed by job key (or by a placeholder for
    a job not planned yet); call :meth:`done` as each finishes, then :meth:`eta_seconds`
    (None until one job has finished). Time counts from the estimator's creation."""

    def __init__(self, costs):
        self.costs = dict(costs)
        self.finished = 0.0
        self.started = time.monotonic()

    def add(self, costs):
        self.costs.update(costs)

    def drop(self, keys):
        """Forget placeholders (their jobs are now planned under real keys)."""
        for key in list(keys):
            self.costs.pop(key, None)

    def done(self, key):
        self.finished += self.costs.pop(key, 0.0)

    @property
    def remaining(self):
        return sum(self.costs.values())

    def eta_seconds(self, elapsed=None):
        elapsed = time.monotonic() - self.started if elapsed is None else elapsed
        if self.finished <= 0 or elapsed <= 0:
            return None
        return self.remaining / (self.finished / elapsed)

    def text(self):
        """``"12m05s"``, or ``"?"`` before the first job has finished."""
        eta = self.eta_seconds()
        if eta is None:
            return "?"
        return f"{int(eta // 60)}m{int(eta % 60):02d}s"


def from_records(records):
    """Seconds left for the jobs of a store (``Storage.records()``) at the rate its done jobs
    ran: their cost over the wall time from the first start to the last finish (which folds
    in the workers), the cost model above for every job not done. None before a job is done."""
    est = Estimator({r["key"]: job_cost(r["kind"], r["params"] or {}) for r in records})
    done = [r for r in records if r["state"] == "done" and r["started"] and r["finished"]]
    for r in done:
        est.done(r["key"])
    if not done:
        return None
    return est.eta_seconds(elapsed=max(r["finished"] for r in done) - min(r["started"] for r in done))
