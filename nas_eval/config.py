"""Training recipes as dataclass configs with named presets (docs/design.md §4).

>>> from nas_eval import TrainConfig
>>> TrainConfig.preset("paper").hidden_size
850
>>> TrainConfig.preset("tiny", epochs=3).epochs
3
"""
import dataclasses
import hashlib
import json
import warnings
from dataclasses import dataclass

from ._moved import renamed
from ._validate import Fields
from .presets import Presets

BPTT_MODES = ("fixed", "search", "awd")
LR_SCHEDULES = ("constant", "cosine", "linear")
# fields added after studies were stored: left out of to_dict() (and so of job keys) while
# at these defaults, so a store written before they existed resumes with the same keys
_LATE_DEFAULTS = {"lr_schedule": "constant", "lr_min": 0.0, "carry_hidden": False, "hidden_clip": 0.0}
# the largest TAR/AR coefficient accepted: 1e291 (found by fuzzing) overflowed the float32
# penalty to inf and the loss with it; anything past 1e6 is a mistake, not a setting
MAX_PENALTY = 1e6


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a standalone training run, except the seed and the data.

    bptt_mode: ``"fixed"`` (always ``bptt``), ``"search"`` (``bptt`` w.p. 0.95 else
    ``bptt // 2``, no noise: DARTS search) or ``"awd"`` (base ``bptt`` w.p. 0.95 else
    ``bptt / 2``; length ``max(5, int(N(base, 5)))`` capped at ``bptt + max_seq_len_delta``).
    The learning rate of a step is scaled by its length / ``bptt`` in every mode.
    asgd: switch to averaged SGD by the NT-ASGD rule (``nonmono``) of AWD-LSTM.
    lr_schedule: ``"constant"`` (``lr`` throughout), ``"cosine"`` or ``"linear"`` (from ``lr``
    at the first step down to ``lr_min`` at the last step of the run's budget, ``epochs``
    epochs; see ``nas_eval.engine.loop.LrSchedule``). It multiplies with the BPTT length
    scaling and is independent of NT-ASGD.
    train_tokens / valid_tokens / test_tokens: use only that prefix of a split (small presets);
    None means the whole split. max_steps_per_epoch: cap an epoch at that many steps.
    carry_hidden, hidden_clip: weight-sharing super-nets only (WS rankings, ws-random): keep
    the hidden state across architecture switches instead of resetting it, and rescale every
    row of the carried hidden state whose L2 norm exceeds ``hidden_clip`` to that norm (0: off)
    -- the paper's WS recipe (preset ``paper-ws``; docs/fidelity.md "WS super-net").
    """
    name: str = "custom"  # the preset this config came from ("tiny+epochs=1" when changed)
    hidden_size: int = 300
    batch_size: int = 64
    eval_batch_size: int = 10
    test_batch_size: int = 1  # as DARTS's rnn/train.py: valid at batch 10, test at batch 1
    lr: float = 20.0
    clip: float = 0.25
    bptt: int = 35
    bptt_mode: str = "awd"
    max_seq_len_delta: int = 20
    dropout: float = 0.75  # on h_t before the decoder; where each of the five acts: docs/design.md §4.2
    dropouth: float = 0.25
    dropoutx: float = 0.75
    dropouti: float = 0.2
    dropoute: float = 0.1
    weight_decay: float = 8e-7
    tar: float = 1e-3  # AWD-LSTM's beta (temporal activation regularization); ar, its alpha
    ar: float = 0.0
    epochs: int = 1000
    asgd: bool = True
    nonmono: int = 5  # NT-ASGD's patience in epochs (docs/design.md §4.4)
    output: str = "mean"
    train_tokens: int = None
    valid_tokens: int = None
    test_tokens: int = None
    max_steps_per_epoch: int = None
    max_recoveries: int = 10  # non-finite training losses a run recovers from before it raises
    lr_schedule: str = "constant"
    lr_min: float = 0.0
    carry_hidden: bool = False
    hidden_clip: float = 0.0

    def __post_init__(self):
        self.validate()

    # --- presets -------------------------------------------------------------------
    @classmethod
    def preset(cls, name, /, **overrides):
        """A named preset, optionally with some fields replaced (``name=`` renames it)."""
        name = PRESETS.resolve(name)
        base = dict(PRESETS.get(name))
        overrides = _renamed_fields(overrides)
        bad = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if bad:
            raise ValueError(f"unknown TrainConfig field(s) {sorted(bad)}")
        base.update(overrides)
        if overrides and "name" not in overrides:
            base["name"] = name + "+" + ",".join(f"{k}={v}" for k, v in sorted(overrides.items()))
        return cls(**base)

    @classmethod
    def presets(cls):
        return PRESETS.names()

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    # --- checks and identity ------------------------------------------------------
    def validate(self):
        f = Fields(self, "TrainConfig.")
        for name in ("hidden_size", "batch_size", "eval_batch_size", "test_batch_size", "bptt", "epochs", "nonmono"):
            f.integer(name, 1)
        for name in ("train_tokens", "valid_tokens", "test_tokens", "max_steps_per_epoch"):
            if getattr(self, name) is not None:
                f.integer(name, 1)
        for name in ("dropout", "dropouth", "dropoutx", "dropouti", "dropoute"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0.0 <= v < 1.0:
                f.fail(name, "in [0, 1)")
        for name in ("lr", "clip", "weight_decay", "tar", "ar", "lr_min"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not v >= 0 or v != v or v == float("inf"):
                f.fail(name, "a finite number >= 0")
            if name in ("tar", "ar") and v > MAX_PENALTY:
                raise ValueError(f"TrainConfig.{name} must be at most {MAX_PENALTY:g} (AWD-LSTM uses 1 and 2), "
                                 f"got {v!r}: the penalty would overflow float32")
        f.choice("lr_schedule", LR_SCHEDULES)
        if self.lr_min > self.lr:
            raise ValueError(f"TrainConfig.lr_min must be at most lr ({self.lr!r}): it is the floor the "
                             f"schedule decays to, got {self.lr_min!r}")
        f.choice("bptt_mode", BPTT_MODES)
        if self.output not in ("mean", "loose_ends"):
            f.fail("output", "'mean' or 'loose_ends'")
        f.boolean("carry_hidden")
        v = self.hidden_clip
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < float("inf"):
            f.fail("hidden_clip", "a finite number >= 0 (0: off)")
        if not isinstance(self.max_seq_len_delta, int) or self.max_seq_len_delta < 0:
            f.fail("max_seq_len_delta", "an integer >= 0")

    def to_dict(self):
        d = dataclasses.asdict(self)
        for name, default in _LATE_DEFAULTS.items():
            if d[name] == default:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d):
        d = _renamed_fields(d)
        known = {f.name for f in dataclasses.fields(cls)}
        bad = set(d) - known
        if bad:
            raise ValueError(f"unknown TrainConfig field(s) {sorted(bad)}")
        return cls(**d)

    def hash(self):
        """Short content hash of every field (job keys use it)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    hidden = renamed("TrainConfig", "hidden", "hidden_size")
    wdecay = renamed("TrainConfig", "wdecay", "weight_decay")

    def slice(self, corpus):
        """The (train, valid, test) token arrays this recipe uses: each split cut to its
        ``*_tokens`` prefix (None = the whole split)."""
        for split in ("train", "valid", "test"):
            if not hasattr(corpus, split):
                raise ValueError(f"corpus has no {split} split; load one with nas_eval.datasets.load()")
        return tuple(getattr(corpus, split)[: getattr(self, f"{split}_tokens")]
                     for split in ("train", "valid", "test"))

    @property
    def dropouts(self):
        return {k: getattr(self, k) for k in ("dropout", "dropouth", "dropoutx", "dropouti", "dropoute")}

    def describe(self):
        """One line naming the preset and its scale, for every printed number."""
        data = []
        for split in ("train", "valid", "test"):
            n = getattr(self, f"{split}_tokens")
            if n is not None:
                data.append(f"{split}[:{n}]")
        return (f"preset={self.name} d={self.hidden_size} B={self.batch_size} epochs={self.epochs}"
                + (f" steps/epoch<={self.max_steps_per_epoch}" if self.max_steps_per_epoch else "")
                + (f" lr={self.lr:g}->{self.lr_min:g} ({self.lr_schedule})" if self.lr_schedule != "constant" else "")
                + (" data=" + ",".join(data) if data else ""))


# docs/design.md §4, columns "final training" and "search-time training", and two presets scaled
# for a 2-core machine. Each scaled preset says what it changes and why.
_PRESETS = {
    # the paper's final training, exactly
    "paper": dict(name="paper", hidden_size=850, batch_size=64, eval_batch_size=10, test_batch_size=1,
                  bptt_mode="awd", dropout=0.75, dropouth=0.25, dropoutx=0.75, dropouti=0.2,
                  dropoute=0.1, weight_decay=8e-7, tar=1e-3, epochs=1000, asgd=True),
    # DARTS search-time training
    "search": dict(name="search", hidden_size=300, batch_size=256, eval_batch_size=10, test_batch_size=1,
                   bptt_mode="search", dropout=0.75, dropouth=0.25, dropoutx=0.75, dropouti=0.2,
                   dropoute=0.0, weight_decay=5e-7, tar=1e-3, epochs=50, asgd=False),
    # the paper's WS super-net ranking (nas-landmarkreg random_policy/random_search_space_2.sh,
    # search_policy ws_r_batch, search_configs.py defaults): d=850, batch 64, search-time BPTT
    # (seq_len = int(35 or 17.5)), NT-ASGD judged on the mean WS perplexity at each
    # evaluation, 1000 epochs, scored at batch 256 (weight_sharing_ranking_random_on_batch.py),
    # the hidden state carried across architecture switches, its norm clipped at 30
    # (darts_model.py handle_hidden_mode == 'NORM'; --clip_hidden_norm is parsed but unused)
    "paper-ws": dict(name="paper-ws", hidden_size=850, batch_size=64, eval_batch_size=256, test_batch_size=1,
                     bptt_mode="search", dropout=0.75, dropouth=0.25, dropoutx=0.75, dropouti=0.2,
                     dropoute=0.1, weight_decay=8e-7, tar=1e-3, epochs=1000, asgd=True,
                     carry_hidden=True, hidden_clip=30.0),
    # minutes on PTB: d 850 -> 256, 1000 epochs -> 4 epochs of 250 steps (~2.2M tokens),
    # dropouts scaled down (a small, briefly trained model underfits rather than overfits),
    # test batch 1 -> 10 (batch 1 evaluation is latency-bound on a CPU), NT-ASGD kept
    "laptop": dict(name="laptop", hidden_size=256, batch_size=64, eval_batch_size=10, test_batch_size=10,
                  bptt_mode="awd", dropout=0.3, dropouth=0.1, dropoutx=0.2, dropouti=0.1,
                  dropoute=0.0, weight_decay=8e-7, tar=1e-3, epochs=4, asgd=True, max_steps_per_epoch=250),
    # seconds, for tests and smoke runs: d 32, a 20k-token slice of train, 5k of valid/test
    "tiny": dict(name="tiny", hidden_size=32, batch_size=16, eval_batch_size=10, test_batch_size=10,
                 bptt=20, bptt_mode="fixed", dropout=0.1, dropouth=0.05, dropoutx=0.1, dropouti=0.05,
                 dropoute=0.0, weight_decay=8e-7, tar=1e-3, epochs=3, asgd=False, train_tokens=20000,
                 valid_tokens=5000, test_tokens=5000, lr=20.0),
}

_DOCS = {
    "paper": "the paper's final training (d=850, batch 64, NT-ASGD, 1000 epochs)",
    "search": "DARTS search-time training (d=300, batch 256, 50 epochs, no averaging)",
    "paper-ws": "the paper's WS super-net (d=850, batch 64, NT-ASGD, 1000 epochs, eval batch 256, hidden state "
                "carried across switches, norms clipped at 30)",
    "laptop": "minutes per architecture on full PTB (d=256, 4 epochs of 250 steps)",
    "tiny": "seconds, for tests and smoke runs (d=32, a 20k-token slice)",
}
PRESETS = Presets("training")
for _name, _fields in _PRESETS.items():
    PRESETS.add(_name, lambda f=_fields: dict(f), _DOCS[_name])
# "quick" meant this recipe and also a study preset of another scale: renamed in 0.2
PRESETS.alias("quick", "laptop")

_RENAMED = {"hidden": "hidden_size", "wdecay": "weight_decay"}


def _renamed_fields(d):
    """Fields under their 0.1 names, renamed (with a DeprecationWarning)."""
    old = set(d) & set(_RENAMED)
    if not old:
        return dict(d)
    for name in sorted(old):
        warnings.warn(f"TrainConfig field {name!r} is deprecated; use {_RENAMED[name]!r}",
                      DeprecationWarning, stacklevel=3)
    return {_RENAMED.get(k, k): v for k, v in d.items()}
