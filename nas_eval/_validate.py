"""The field checks of the dataclass configs (TrainConfig, StudySpec, the policies' configs).

One :class:`Fields` per ``validate()``: each check reads the field off the config and raises
``ValueError("{prefix}{field} must be {what}, got {value!r}")``, so every config words its
refusals the same way and each message names the field and the value (``prefix``: the
config's own name for it, e.g. ``"TrainConfig."`` or ``"nao option "``).

Pure Python: the foundation layer (docs/design.md §13) and the policies import it.

>>> from dataclasses import dataclass
>>> @dataclass
... class C:
...     n: int = 0
>>> Fields(C(), "c option ").integer("n", 1, 9)
Traceback (most recent call last):
ValueError: c option n must be an integer in 1..9, got 0
"""
import math
import numbers


class Fields:
    """The checks of one config's fields. ``numpy_ints``: NumPy integers count as integers
    (the policies that take them from NumPy code); TrainConfig and StudySpec, whose fields
    go into JSON job keys, take Python integers only."""

    def __init__(self, config, prefix="", numpy_ints=False):
        self.config, self.prefix, self.numpy_ints = config, prefix, numpy_ints

    def fail(self, name, what):
        """Refuse field ``name``: it must be ``what``."""
        raise ValueError(f"{self.prefix}{name} must be {what}, got {getattr(self.config, name)!r}")

    def is_int(self, value):
        kinds = numbers.Integral if self.numpy_ints else int
        return isinstance(value, kinds) and not isinstance(value, bool)

    def integer(self, name, lo, hi=None, optional=False):
        """An integer in ``lo..hi`` (no upper bound when ``hi`` is None), or None if ``optional``."""
        v = getattr(self.config, name)
        if optional and v is None:
            return
        if not self.is_int(v) or v < lo or (hi is not None and v > hi):
            what = (f"an integer in {lo}..{hi}" if hi is not None else
                    "a positive integer" if lo == 1 else f"an integer >= {lo}")
            self.fail(name, what + (" or None" if optional else ""))

    def number(self, name, lo, hi, lo_open=False, hi_open=False, optional=False):
        """A finite int or float (not a bool) in the interval from ``lo`` to ``hi``, each end
        closed unless ``*_open``; or None if ``optional``."""
        v = getattr(self.config, name)
        if optional and v is None:
            return
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        if not (ok and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)):
            interval = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
            self.fail(name, f"a number in {interval}" + (" or None" if optional else ""))

    def choice(self, name, allowed, optional=False):
        """One of ``allowed`` (or None if ``optional``)."""
        v = getattr(self.config, name)
        if not (optional and v is None) and v not in allowed:
            self.fail(name, f"one of {allowed}")

    def boolean(self, *names):
        """True or False, each field of ``names``."""
        for name in names:
            if not isinstance(getattr(self.config, name), bool):
                self.fail(name, "true or false")
