"""Old names that moved to another module, or were renamed in place, keep answering with a
DeprecationWarning.

``__getattr__ = moved(__name__, {"old": "new.module:attr"})`` in the old module (PEP 562): the
new module is imported only when the old name is asked for, so a name that moved up a layer
(docs/design.md §13) adds no import from the lower layer to the upper one.
"""
import importlib
import warnings


def moved(module, names):
    """A module ``__getattr__`` resolving ``names`` ({old name: "module:attribute"})."""
    def __getattr__(name):
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        where, _, attr = names[name].partition(":")
        warnings.warn(f"{module}.{name} is deprecated; use {where}.{attr}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(where), attr)

    return __getattr__


def renamed(owner, old, new):
    """A read-only property ``old`` answering attribute ``new`` of the same object, with a
    DeprecationWarning (``{owner}.{old} is deprecated; use {new}``): an attribute renamed in
    place, e.g. ``hidden = renamed("TrainConfig", "hidden", "hidden_size")``."""
    def get(self):
        warnings.warn(f"{owner}.{old} is deprecated; use {new}", DeprecationWarning, stacklevel=2)
        return getattr(self, new)

    return property(get, doc=f"Deprecated: use :attr:`{new}`.")
