"""One preset mechanism for every config of the package: training recipes (TrainConfig),
studies (StudySpec) and policies (ENASConfig, ...).

A :class:`Presets` registry maps a name to a factory and says in one line what the preset
is for and, where measured, how long it runs on which machine, so ``--preset`` help and the
docs list every preset from one source. Deprecated names stay one release as aliases that
warn.

>>> reg = Presets("demo")
>>> reg.add("small", lambda: {"d": 8}, "eight wide")
>>> reg.get("small")
{'d': 8}
>>> reg.describe()
'small: eight wide'
"""
import warnings
from dataclasses import dataclass
from typing import Callable, Dict


@dataclass(frozen=True)
class Preset:
    name: str
    make: Callable[[], object]
    doc: str
    duration: str = ""  # measured wall time and machine, e.g. "~24 min, 2-core Zen 4"


class Presets:
    """Named presets of one kind of config (``kind`` appears in error messages)."""

    def __init__(self, kind):
        self.kind = kind
        self._presets: Dict[str, Preset] = {}
        self._aliases: Dict[str, str] = {}

    def add(self, name, make, doc, duration=""):
        if name in self._presets or name in self._aliases:
            raise ValueError(f"{self.kind} preset {name!r} is already defined")
        self._presets[name] = Preset(name, make, doc, duration)

    def alias(self, old, new):
        """``old`` keeps working for one release, with a DeprecationWarning naming ``new``."""
        self._aliases[old] = new

    def resolve(self, name):
        """The canonical name of ``name`` (warns for a deprecated alias)."""
        if not isinstance(name, str):
            raise ValueError(f"{self.kind} preset must be a name (a string), got {name!r}")
        if name in self._aliases:
            new = self._aliases[name]
            warnings.warn(f"{self.kind} preset {name!r} is deprecated; it is now called {new!r}",
                          DeprecationWarning, stacklevel=3)
            return new
        if name not in self._presets:
            raise ValueError(f"unknown {self.kind} preset {name!r}; choose one of {self.names()}")
        return name

    def get(self, name):
        return self._presets[self.resolve(name)].make()

    def __contains__(self, name):
        return name in self._presets or name in self._aliases

    def names(self):
        return sorted(self._presets)

    def info(self, name):
        return self._presets[self.resolve(name)]

    def describe(self, sep="\n"):
        """One line per preset: name, what it is for, and its measured duration."""
        lines = []
        for name in self.names():
            p = self._presets[name]
            lines.append(f"{name}: {p.doc}" + (f" ({p.duration})" if p.duration else ""))
        return sep.join(lines)
