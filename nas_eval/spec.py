"""What a study runs: :class:`StudySpec` (space, corpus, recipes, policies, seeds), the study
presets, and TOML study files (docs/design.md §7).

A spec is pure configuration: building and validating one needs neither the C core nor
data; ``nas_eval.plan`` turns it into jobs.
"""
import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from . import policies
from ._validate import Fields
from .config import TrainConfig
from .presets import Presets
from .space import DEFAULT_FIXED, SearchSpace, sharing_space

try:  # Python 3.11+
    import tomllib
except ImportError:  # pragma: no cover
    import tomli as tomllib


def _tiny(name, **kw):
    base = dict(name=name, hidden_size=16, batch_size=16, epochs=2, bptt=20, train_tokens=6000,
                valid_tokens=1500, test_tokens=1500)
    base.update(kw)
    return TrainConfig.preset("tiny", **base)


# the policies of every study preset: the paper's four, then ws-random (weight sharing with
# uniform sampling and a WS top-1 pick: this project's addition, not in the paper)
PAPER_POLICIES = ("random", "enas", "darts", "nao", "ws-random")


def _recipes(tag, hidden_size, train_tokens, eval_tokens, epochs, search_epochs):
    """``train`` and ``search`` of a scaled study preset: TrainConfig ``tiny`` at batch 32 and
    BPTT 35 on the first ``train_tokens`` of PTB's train split and ``eval_tokens`` of valid
    and test, named ``study-{tag}`` and ``study-{tag}-search``."""
    scale = dict(hidden_size=hidden_size, batch_size=32, bptt=35, train_tokens=train_tokens,
                 valid_tokens=eval_tokens, test_tokens=eval_tokens)
    return dict(train=_tiny(f"study-{tag}", epochs=epochs, **scale),
                search=_tiny(f"study-{tag}-search", epochs=search_epochs, **scale))


def _policy_presets(name, **extra):
    """ENAS, DARTS and NAO at their preset ``name`` (plus per-policy ``extra`` options)."""
    return {p: {"preset": name, **extra.get(p, {})} for p in ("enas", "darts", "nao")}


@dataclass(frozen=True)
class StudySpec:
    """What a study runs. ``train`` is the recipe for ground truth and retraining,
    ``search`` the search-time recipe of weight-sharing policies and WS rankings, ``ws``
    (None: ``search``) the WS rankings' own recipe where it differs (the ``paper`` study: the
    paper's WS super-net recipe, TrainConfig preset ``paper-ws``)."""
    name: str = "custom"
    n_nodes: int = 2
    corpus: str = "ptb"
    train: TrainConfig = field(default_factory=lambda: TrainConfig.preset("laptop"))
    search: TrainConfig = field(default_factory=lambda: TrainConfig.preset("search"))
    ws: Optional[TrainConfig] = None
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
    # the policy options that fit this study's data and budget (a preset name plus overrides,
    # per policy, whether or not the policy is in ``policies``): a study preset names them, so
    # ``--preset smoke --policies enas`` runs ENAS's ``smoke``. ``policy_options`` wins: its
    # fields override these, and its own ``preset`` replaces them (docs/design.md §7)
    policy_defaults: Dict[str, dict] = field(default_factory=dict)

    def __post_init__(self):
        self.validate()

    def validate(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        f = Fields(self)
        f.integer("n_nodes", 1, 32)
        f.boolean("sharing")
        if not f.is_int(self.train_seed) or self.train_seed < 0:
            f.fail("train_seed", "a non-negative integer")
        if not isinstance(self.corpus, str) or not self.corpus:
            raise ValueError(f"corpus must be a corpus name or directory, got {self.corpus!r}")
        for name in ("train", "search"):
            if not isinstance(getattr(self, name), TrainConfig):
                raise ValueError(f"{name} must be a TrainConfig")
        if self.ws is not None and not isinstance(self.ws, TrainConfig):
            raise ValueError("ws must be a TrainConfig or None (the search recipe)")
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
        if not self.policies:
            raise ValueError("policies must name at least one policy (e.g. [\"random\", \"enas\"]): a study "
                             "without one compares nothing")
        if any(e < 1 or e > self.ws_recipe.epochs for e in self.ws_eval_epochs):
            which = "ws" if self.ws is not None else "search"
            raise ValueError(f"ws_eval_epochs must be in 1..{self.ws_recipe.epochs} ({which}.epochs)")
        if self.ws_seeds and self.space.size > 100_000:
            raise ValueError(f"a WS ranking scores every architecture: {self.space.size:,} is too many; "
                             "set ws_seeds = [] or use a smaller space")
        if self.gt_seeds and self.space.size > 10_000:
            raise ValueError(f"ground truth trains every architecture: {self.space.size:,} is too many; "
                             "set gt_seeds = [] or use a smaller space")
        if self.sharing:
            sharing_space(self.sharing_fixed)  # validates the fixed nodes
        unknown = set(self.policy_options) - set(self.policies)
        if unknown:
            raise ValueError(f"policy_options for policies not in the study: {sorted(unknown)}")
        for setting in ("policy_options", "policy_defaults"):
            for policy, options in getattr(self, setting).items():
                if not isinstance(options, dict):
                    raise ValueError(f"{setting}.{policy} must be a table of options, got {options!r}")
                policies.check_options(policy, options)
        for policy in self.policies:
            policies.check_options(policy, self.options_for(policy))

    def options_for(self, policy):
        """The options ``policy`` runs with in this study: ``policy_defaults`` (the study
        preset's choice) with ``policy_options`` on top; a ``preset`` in ``policy_options``
        replaces the defaults whole."""
        explicit = dict(self.policy_options.get(policy, {}))
        if "preset" in explicit:
            return explicit
        return {**self.policy_defaults.get(policy, {}), **explicit}

    @property
    def space(self):
        return SearchSpace(self.n_nodes)

    @property
    def ws_recipe(self):
        """The recipe of the WS rankings' super-nets: ``ws``, else ``search``."""
        return self.ws if self.ws is not None else self.search

    @property
    def eval_epochs(self):
        return tuple(self.ws_eval_epochs) or (self.ws_recipe.epochs,)

    def describe(self):
        return (f"study preset={self.name}, {self.n_nodes}-node space, data={self.corpus}; "
                f"train: {self.train.describe()}; search: {self.search.describe()}"
                + (f"; ws: {self.ws.describe()}" if self.ws is not None else ""))

    # --- (de)serialisation ---------------------------------------------------------------
    def to_dict(self):
        d = dataclasses.asdict(self)
        d["train"], d["search"] = self.train.to_dict(), self.search.to_dict()
        if self.ws is None:
            del d["ws"]  # left out when unused, so existing specs read (and hash) as before
        else:
            d["ws"] = self.ws.to_dict()
        d["sharing_fixed"] = {str(k): list(v) for k, v in self.sharing_fixed.items()}
        for k in ("policies", "seeds", "gt_seeds", "ws_seeds", "ws_eval_epochs", "sharing_gt_seeds", "sharing_ws_seeds"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        if "nodes" in d and "n_nodes" not in d:  # the 0.1 name
            warnings.warn("study setting 'nodes' is deprecated; use 'n_nodes'", DeprecationWarning, stacklevel=2)
            d["n_nodes"] = d.pop("nodes")
        known = {f.name for f in dataclasses.fields(cls)}
        bad = set(d) - known
        if bad:
            raise ValueError(f"unknown study setting(s) {sorted(bad)}; known: {sorted(known)}")
        for name in ("train", "search", "ws"):
            if name in d and d[name] is not None and not isinstance(d[name], TrainConfig):
                if not isinstance(d[name], dict):
                    raise ValueError(f"study setting {name!r} must be a table of TrainConfig fields, got {d[name]!r}")
                value = dict(d[name])
                preset = value.pop("preset", None)
                d[name] = TrainConfig.preset(preset, **value) if preset else TrainConfig.from_dict(value)
        if "sharing_fixed" in d:
            try:
                d["sharing_fixed"] = {int(k): (v[0], int(v[1])) for k, v in d["sharing_fixed"].items()}
            except (AttributeError, TypeError, ValueError, IndexError):
                raise ValueError("sharing_fixed must map node numbers to [op, predecessor] pairs, "
                                 f"got {d['sharing_fixed']!r}") from None
        for k in ("policies", "seeds", "gt_seeds", "ws_seeds", "ws_eval_epochs", "sharing_gt_seeds", "sharing_ws_seeds"):
            if k in d:
                if isinstance(d[k], (str, bytes, dict)) or not hasattr(d[k], "__iter__"):
                    raise ValueError(f"study setting {k!r} must be a list, got {d[k]!r}")
                d[k] = tuple(d[k])
        for k in ("policy_options", "policy_defaults"):
            if k in d and not isinstance(d[k], dict):
                raise ValueError(f"{k} must be a table, got {d[k]!r}")
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


def _cpu_settings():
    """The seeds and policies of the scaled presets past the smoke test: two ground-truth and
    three WS seeds (the sharing experiment's too), the paper's policies at their "cpu" presets
    (fresh dicts per call: each spec owns its own)."""
    return dict(gt_seeds=(0, 1), ws_seeds=(0, 1, 2), sharing_gt_seeds=(0, 1), sharing_ws_seeds=(0, 1, 2),
                policies=PAPER_POLICIES, policy_defaults=_policy_presets("cpu"))


_STUDY_PRESETS = {
    # seconds per job: d = 16, a 6k-token slice of PTB, 2 epochs everywhere, the policies' smoke presets
    "smoke": lambda: StudySpec(name="smoke", train=_tiny("study-tiny"), search=_tiny("study-tiny-search"), seeds=(0, 1, 2),
                              gt_seeds=(0, 1), ws_seeds=(0, 1, 2), ws_eval_epochs=(1, 2), policies=PAPER_POLICIES,
                              # NAO refuses fewer than 3 controller rounds: 4 super-net epochs, not the 2 of the recipe
                              policy_defaults=_policy_presets("smoke", nao={"epochs": 4})),
    # d = 64 on a 50k-token slice of PTB, 3 epochs (WS: 4)
    "quick": lambda: StudySpec(
        name="quick", **_recipes("quick", 64, 50000, 5000, epochs=3, search_epochs=4),
        seeds=(0, 1, 2, 3, 4), ws_eval_epochs=(2, 4), **_cpu_settings()),
    # d = 64 on a 200k-token slice of PTB, 4 epochs (WS: 6), two
    # ground-truth seeds, three WS seeds
    "small": lambda: StudySpec(
        name="small", **_recipes("small", 64, 200000, 20000, epochs=4, search_epochs=6),
        seeds=(0, 1, 2, 3, 4), ws_eval_epochs=(2, 4, 6), **_cpu_settings()),
    # the main job, sized by evidence (docs/presets.md): d = 32 on a 100k-token slice of PTB,
    # 4 epochs (~356 SGD steps) for ground truth, retraining and super-nets alike -- the
    # cheapest measured budget where every architecture and the WS super-net are clearly off
    # the unigram plateau (worst run at 0.68 x the unigram perplexity). Its ground-truth seeds
    # agree only to tau = 0.37 [-0.01, 0.71]: the noise ceiling of 0.8 was not reached at any
    # budget a 2-core machine affords (0.50 at twice this one), and its reports say so.
    # Two ground-truth, three WS and six search seeds (the fewest with which a two-sided
    # Wilcoxon test can reach p < 0.05). With random and ws-random only it ran in 19 min 34 s
    # on an idle 2-vCPU Zen 3 (issue 22); ENAS, DARTS and NAO at their "cpu" presets (the
    # search recipe's 4 epochs, each algorithm's loop intact) bring it to ~27 min, estimated.
    "standard": lambda: StudySpec(
        name="standard", **_recipes("standard", 32, 100000, 5000, epochs=4, search_epochs=4),
        seeds=(0, 1, 2, 3, 4, 5), ws_eval_epochs=(2, 4), **_cpu_settings()),
    # the paper's 8-node experiment (its Table 2 and Figure 3) at a 2-core scale: each policy's
    # pick against the random architecture of each of 10 search seeds, all retrained with the
    # standard recipe; 2.6e9 architectures, so no exhaustive ground truth, no WS ranking and no
    # amount-of-sharing experiment. NAO's pool is 20 architectures (20% of this space is
    # not a pool), DARTS first order (its mixed 8-node cell relaxes 36 edges x 4 ops)
    "8node": lambda: StudySpec(
        name="8node", n_nodes=8, **_recipes("standard", 32, 100000, 5000, epochs=4, search_epochs=4),
        seeds=tuple(range(10)), gt_seeds=(), ws_seeds=(), sharing=False, policies=PAPER_POLICIES,
        policy_defaults={"enas": {"preset": "cpu"}, "darts": {"preset": "cpu-first-order"},
                         "nao": {"preset": "cpu", "pool_fraction": None, "pool_size": 20}}),
    # the paper's 2-node protocol: final-training recipe, 10 seeds (GPU-months)
    "paper": lambda: StudySpec(name="paper", train=TrainConfig.preset("paper"),
                               search=TrainConfig.preset("search"), ws=TrainConfig.preset("paper-ws"),
                               seeds=tuple(range(10)), gt_seeds=(0, 1, 2), ws_seeds=tuple(range(10)),
                               ws_eval_epochs=tuple(range(50, 1001, 50)), sharing_gt_seeds=(0, 1, 2),
                               sharing_ws_seeds=tuple(range(10)), policies=PAPER_POLICIES,
                               policy_defaults={"enas": {"preset": "paper-2node"}, "darts": {"preset": "reference"},
                                                "nao": {"preset": "paper-2node"}}),
}


# durations: estimated with benchmarks/estimate_study.py (nas_eval.eta's cost model, calibrated
# on the standard study with random and ws-random, measured at 19 min 34 s on an idle 2-vCPU
# AMD EPYC Zen 3 in issue 22), not measured with ENAS, DARTS and NAO; standard and 8node are
# measured with every policy (README)
_EST = "on 2 Zen 3 cores, estimated"
_DOCS = {
    "smoke": ("a smoke test of the whole protocol: d=16 on a 6k-token slice, 2 epochs, every policy at its "
              "'smoke' preset", f"~1 min {_EST}"),
    "quick": ("d=64 on a 50k-token slice, 3 epochs (WS: 4), policies at 'cpu'; mostly noise, see docs/presets.md",
              f"~28 min {_EST}"),
    "small": ("d=64 on a 200k-token slice, 4 epochs (WS: 6), 2 ground-truth and 3 WS seeds, policies at 'cpu'",
              f"~2.5 h {_EST}"),
    "standard": ("the main job, sized by evidence (docs/presets.md): d=32 on a 100k-token slice, 4 epochs "
                 "(WS too), 2 ground-truth, 3 WS and 6 search seeds; random, ENAS, DARTS, NAO at their 'cpu' "
                 "presets and ws-random", "20 min on 2 Zen 3 cores, measured (121 jobs, fresh clone, 2026-12-07)"),
    "8node": ("the paper's 8-node experiment (Table 2, Figure 3) at the standard recipe: each policy's pick "
              "against random picks, 10 search seeds, no exhaustive ground truth",
              "21.6 min on 2 Zen 3 cores, measured (90 jobs, fresh store, 2026-12-07)"),
    "paper": ("the paper's 2-node protocol: final-training recipe, the paper's WS super-net recipe, 10 seeds "
              "(GPU-months)", ""),
}
STUDY_PRESETS = Presets("study")
for _name, _make in _STUDY_PRESETS.items():
    STUDY_PRESETS.add(_name, _make, *_DOCS[_name])
# "tiny" was a study of another scale than TrainConfig's "tiny": renamed in 0.2
STUDY_PRESETS.alias("tiny", "smoke")


def study_preset(name, /, **overrides):
    """A named study preset, optionally with settings replaced (``name=`` renames it)."""
    spec = STUDY_PRESETS.get(name)
    if overrides:
        merged = spec.to_dict()
        for key, value in overrides.items():
            if key in ("train", "search", "ws") and isinstance(value, dict):
                base = merged.get(key) or merged["search"]
                if "preset" in value:
                    value = dict(value)
                    base = TrainConfig.preset(value.pop("preset")).to_dict()
                merged[key] = {**base, **value}
            else:
                merged[key] = value
        spec = StudySpec.from_dict(merged)
    return spec
