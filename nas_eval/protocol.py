"""The evaluation protocol of the paper's Figure 1c as a plan of content-addressed jobs.

For each policy and search seed s: search with seed s -> a_s; draw the uniform random
architecture of seed s -> r_s; retrain both from scratch with the same recipe and the same
fixed training seed. Beside it, where asked: the ground truth (every architecture of the
space, K seeds), the weight-sharing ranking (WS seeds), and the amount-of-sharing
experiment (3-node subspace, node-level sharing and the no-sharing control).

Job kinds (registered with nas_eval.jobs): ``train`` (one standalone training: ground truth
and retraining share it, so a pick retrained with the training seed reuses a ground-truth
run), ``search`` (one policy run) and ``ws`` (one super-net seed scoring a set of archs).
"""
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Dict, Tuple

from . import datasets, policies
from .config import TrainConfig
from .jobs import Job, register
from .space import Arch, SearchSpace
from .sharing import DEFAULT_FIXED, sharing_space

try:  # Python 3.11+
    import tomllib
except ImportError:  # pragma: no cover
    import tomli as tomllib


def _tiny(name, **kw):
    base = dict(name=name, hidden=16, batch_size=16, epochs=2, bptt=20, train_tokens=6000,
                valid_tokens=1500, test_tokens=1500)
    base.update(kw)
    return TrainConfig.preset("tiny", **base)


@dataclass(frozen=True)
class StudySpec:
    """What a study runs. ``train`` is the recipe for ground truth and retraining,
    ``search`` the search-time recipe of weight-sharing policies and WS rankings."""
    name: str = "custom"
    nodes: int = 2
    corpus: str = "ptb"
    train: TrainConfig = field(default_factory=lambda: TrainConfig.preset("quick"))
    search: TrainConfig = field(default_factory=lambda: TrainConfig.preset("search"))
    policies: Tuple[str, ...] = ("random", "ws-random")
    seeds: Tuple[int, ...] = (0, 1, 2)
    train_seed: int = 0
    gt_seeds: Tuple[int, ...] = (0, 1)
    ws_seeds: Tuple[int, ...] = (0, 1, 2)
    ws_eval_epochs: Tuple[int, ...] = ()
    sharing: bool = True
    sharing_fixed: Dict[int, Tuple[str, int]] = field(default_factory=lambda: dict(DEFAULT_FIXED))
    sharing_gt_seeds: Tuple[int, ...] = (0,)
    sharing_ws_seeds: Tuple[int, ...] = (0,)
    policy_options: Dict[str, dict] = field(default_factory=dict)

    def __post_init__(self):
        self.validate()

    def validate(self):
        if isinstance(self.nodes, bool) or not isinstance(self.nodes, int) or not 1 <= self.nodes <= 32:
            raise ValueError(f"nodes must be an integer in 1..32, got {self.nodes!r}")
        for name in ("train", "search"):
            if not isinstance(getattr(self, name), TrainConfig):
                raise ValueError(f"{name} must be a TrainConfig")
        for p in self.policies:
            policies.check(p)
        for name in ("seeds", "gt_seeds", "ws_seeds", "sharing_gt_seeds", "sharing_ws_seeds", "ws_eval_epochs"):
            values = getattr(self, name)
            if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values):
                raise ValueError(f"{name} must be non-negative integers, got {values!r}")
            if len(set(values)) != len(values):
                raise ValueError(f"{name} has duplicates: {values!r}")
        if not self.seeds:
            raise ValueError("seeds must name at least one search seed")
        if any(e < 1 or e > self.search.epochs for e in self.ws_eval_epochs):
            raise ValueError(f"ws_eval_epochs must be in 1..{self.search.epochs} (search.epochs)")
        if self.ws_seeds and len(self.space) > 100_000:
            raise ValueError(f"a WS ranking scores every architecture: {len(self.space):,} is too many; "
                             "set ws_seeds = [] or use a smaller space")
        if self.gt_seeds and len(self.space) > 10_000:
            raise ValueError(f"ground truth trains every architecture: {len(self.space):,} is too many; "
                             "set gt_seeds = [] or use a smaller space")
        if self.sharing:
            sharing_space(self.sharing_fixed)  # validates the fixed nodes
        unknown = set(self.policy_options) - set(self.policies)
        if unknown:
            raise ValueError(f"policy_options for policies not in the study: {sorted(unknown)}")

    @property
    def space(self):
        return SearchSpace(self.nodes)

    @property
    def eval_epochs(self):
        return tuple(self.ws_eval_epochs) or (self.search.epochs,)

    def describe(self):
        return (f"study preset={self.name}, {self.nodes}-node space, data={self.corpus}; "
                f"train: {self.train.describe()}; search: {self.search.describe()}")

    # --- (de)serialisation ---------------------------------------------------------------
    def to_dict(self):
        d = dataclasses.asdict(self)
        d["train"], d["search"] = self.train.to_dict(), self.search.to_dict()
        d["sharing_fixed"] = {str(k): list(v) for k, v in self.sharing_fixed.items()}
        for k in ("policies", "seeds", "gt_seeds", "ws_seeds", "ws_eval_epochs", "sharing_gt_seeds", "sharing_ws_seeds"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        bad = set(d) - known
        if bad:
            raise ValueError(f"unknown study setting(s) {sorted(bad)}; known: {sorted(known)}")
        for name in ("train", "search"):
            if name in d and not isinstance(d[name], TrainConfig):
                value = dict(d[name])
                preset = value.pop("preset", None)
                d[name] = TrainConfig.preset(preset, **value) if preset else TrainConfig.from_dict(value)
        if "sharing_fixed" in d:
            d["sharing_fixed"] = {int(k): (v[0], int(v[1])) for k, v in d["sharing_fixed"].items()}
        for k in ("policies", "seeds", "gt_seeds", "ws_seeds", "ws_eval_epochs", "sharing_gt_seeds", "sharing_ws_seeds"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)

    @classmethod
    def from_toml(cls, path):
        """A spec from a TOML file; ``preset = "tiny"`` at the top starts from a study
        preset, ``[train]`` / ``[search]`` tables may name a TrainConfig ``preset`` plus
        overrides."""
        with open(path, "rb") as f:
            data = tomllib.load(f)
        preset = data.pop("preset", None)
        if preset:
            return study_preset(preset, **data)
        return cls.from_dict(data)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


STUDY_PRESETS = {
    # under 2 minutes here: d = 16, a 6k-token slice of PTB, 2 epochs everywhere
    "tiny": lambda: StudySpec(name="tiny", train=_tiny("study-tiny"), search=_tiny("study-tiny-search"), seeds=(0, 1, 2),
                              gt_seeds=(0, 1), ws_seeds=(0, 1, 2), ws_eval_epochs=(1, 2)),
    # about 10 minutes here: d = 64 on a 50k-token slice of PTB, 3 epochs (WS: 4)
    "quick": lambda: StudySpec(
        name="quick",
        train=_tiny("study-quick", hidden=64, batch_size=32, bptt=35, epochs=3, train_tokens=50000,
                    valid_tokens=5000, test_tokens=5000),
        search=_tiny("study-quick-search", hidden=64, batch_size=32, bptt=35, epochs=4, train_tokens=50000,
                     valid_tokens=5000, test_tokens=5000),
        seeds=(0, 1, 2, 3, 4), gt_seeds=(0, 1), ws_seeds=(0, 1, 2), ws_eval_epochs=(2, 4),
        sharing_gt_seeds=(0, 1), sharing_ws_seeds=(0, 1, 2)),
    # about 30 minutes here: d = 64 on a 200k-token slice of PTB, 4 epochs (WS: 6), two
    # ground-truth seeds, three WS seeds
    "small": lambda: StudySpec(
        name="small",
        train=_tiny("study-small", hidden=64, batch_size=32, bptt=35, epochs=4, train_tokens=200000,
                    valid_tokens=20000, test_tokens=20000),
        search=_tiny("study-small-search", hidden=64, batch_size=32, bptt=35, epochs=6, train_tokens=200000,
                     valid_tokens=20000, test_tokens=20000),
        seeds=(0, 1, 2, 3, 4), gt_seeds=(0, 1), ws_seeds=(0, 1, 2), ws_eval_epochs=(2, 4, 6),
        sharing_gt_seeds=(0, 1), sharing_ws_seeds=(0, 1, 2)),
    # the main job, sized by evidence (docs/presets.md): d = 32 on a 100k-token slice of PTB,
    # 8 epochs for ground truth, retraining and the super-nets alike -- the cheapest measured
    # point where every architecture leaves the unigram plateau and the WS super-net too; two
    # ground-truth seeds, three WS seeds, six search seeds (the fewest with which a two-sided
    # Wilcoxon test can reach p < 0.05). Estimated ~27 min on 2 idle cores (Zen 4, AVX-512),
    # from the CPU time of its runs measured by benchmarks/preset_study.py.
    "standard": lambda: StudySpec(
        name="standard",
        train=_tiny("study-standard", hidden=32, batch_size=32, bptt=35, epochs=8, train_tokens=100000,
                    valid_tokens=5000, test_tokens=5000),
        search=_tiny("study-standard-search", hidden=32, batch_size=32, bptt=35, epochs=8,
                     train_tokens=100000, valid_tokens=5000, test_tokens=5000),
        seeds=(0, 1, 2, 3, 4, 5), gt_seeds=(0, 1), ws_seeds=(0, 1, 2), ws_eval_epochs=(4, 8),
        sharing_gt_seeds=(0, 1), sharing_ws_seeds=(0, 1, 2)),
    # the paper's 2-node protocol: final-training recipe, 10 seeds (GPU-months)
    "paper": lambda: StudySpec(name="paper", train=TrainConfig.preset("paper"),
                               search=TrainConfig.preset("search"), seeds=tuple(range(10)),
                               gt_seeds=(0, 1, 2), ws_seeds=tuple(range(10)),
                               ws_eval_epochs=(10, 20, 30, 40, 50), sharing_gt_seeds=(0, 1, 2),
                               sharing_ws_seeds=tuple(range(10))),
}


def study_preset(name, **overrides):
    """A named study preset, optionally with settings replaced."""
    if name not in STUDY_PRESETS:
        raise ValueError(f"unknown study preset {name!r}; choose one of {sorted(STUDY_PRESETS)}")
    spec = STUDY_PRESETS[name]()
    if overrides:
        merged = spec.to_dict()
        for key, value in overrides.items():
            if key in ("train", "search") and isinstance(value, dict):
                base = merged[key]
                if "preset" in value:
                    value = dict(value)
                    base = TrainConfig.preset(value.pop("preset")).to_dict()
                merged[key] = {**base, **value}
            else:
                merged[key] = value
        spec = StudySpec.from_dict(merged)
    return spec


# --- job parameters (everything that changes an outcome; nothing machine-specific) -----------
def train_job(spec, arch, seed, config=None, nodes=None):
    space = SearchSpace(nodes or spec.nodes)
    return Job("train", {"nodes": space.nodes, "arch": str(arch), "arch_id": space.index(arch),
                         "corpus": spec.corpus, "config": (config or spec.train).to_dict(), "seed": int(seed)})


def search_job(spec, policy, seed):
    return Job("search", {"nodes": spec.nodes, "policy": policy, "corpus": spec.corpus,
                          "config": spec.search.to_dict(), "seed": int(seed),
                          "options": spec.policy_options.get(policy, {})})


def ws_job(spec, archs, seed, sharing="node", nodes=None, epochs=None):
    space = SearchSpace(nodes or spec.nodes)
    return Job("ws", {"nodes": space.nodes, "archs": [str(a) for a in archs],
                      "corpus": spec.corpus, "config": spec.search.to_dict(), "seed": int(seed),
                      "eval_epochs": list(epochs or spec.eval_epochs), "sharing": sharing})


def _corpus(params):
    return datasets.from_spec(params["corpus"], root=os.environ.get("NAS_EVAL_DATA"))


@register("train")
def run_train(params):
    from .experiments import ground_truth_run

    arch = Arch.parse(params["arch"])
    config = TrainConfig.from_dict(params["config"])
    record = ground_truth_run(arch, _corpus(params), config, params["seed"])
    record["arch_id"] = params["arch_id"]
    return record


@register("search")
def run_search(params):
    space = SearchSpace(params["nodes"])
    config = TrainConfig.from_dict(params["config"])
    corpus = _corpus(params) if params["policy"] != "random" else None
    result = policies.search(params["policy"], space, corpus, config, params["seed"], **params["options"])
    return result.to_dict(space)


@register("ws")
def run_ws(params):
    from .experiments import ws_run

    archs = [Arch.parse(a) for a in params["archs"]]
    config = TrainConfig.from_dict(params["config"])
    rows = ws_run(archs, _corpus(params), config, params["seed"], params["eval_epochs"],
                  sharing=params["sharing"])
    return {"rows": rows}


# --- the plan ------------------------------------------------------------------------------
def plan_first_phase(spec):
    """Jobs that need nothing else: ground truth, WS rankings, searches, random baselines,
    and the amount-of-sharing experiment. Returns {role: [(label, Job)]}."""
    space = spec.space
    plan = {"ground_truth": [], "ws": [], "search": [], "random": [], "sharing_gt": [], "sharing_ws": []}
    if spec.gt_seeds:
        plan["ground_truth"] = [((space.index(a), s), train_job(spec, a, s)) for a in space for s in spec.gt_seeds]
    if spec.ws_seeds:
        plan["ws"] = [(s, ws_job(spec, list(space), s)) for s in spec.ws_seeds]
    # the random policy's pick of seed s is the baseline r_s itself: no separate search
    plan["search"] = [((p, s), search_job(spec, p, s)) for p in spec.policies if p != "random"
                      for s in spec.seeds]
    plan["random"] = [(s, train_job(spec, policies.random_arch(space, s), spec.train_seed)) for s in spec.seeds]
    if spec.sharing:
        sub = sharing_space(spec.sharing_fixed)
        archs = list(sub)
        plan["sharing_gt"] = [((sub.parent.index(a), s), train_job(spec, a, s, nodes=sub.nodes))
                              for a in archs for s in spec.sharing_gt_seeds]
        plan["sharing_ws"] = [((sharing, s), ws_job(spec, archs, s, sharing=sharing, nodes=sub.nodes))
                              for sharing in ("node", "none") for s in spec.sharing_ws_seeds]
    return plan


def plan_retrains(spec, picks):
    """Retraining jobs of the policies' picks: ``picks`` maps (policy, seed) -> Arch."""
    return [((policy, seed), train_job(spec, arch, spec.train_seed)) for (policy, seed), arch in picks.items()]
