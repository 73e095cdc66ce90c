"""Is this ``nas_eval`` a source checkout whose C core was never built? (docs/design.md §13.1)

Python puts the current directory first on ``sys.path``, so ``python`` started in the
repository root imports the source tree ``./nas_eval`` even when ``pip install .`` put a
built copy in site-packages; the source tree holds no compiled core unless it was built in
place. Two cases, two answers:

* an installed ``nas_eval`` exists elsewhere on ``sys.path``: the source tree shadows it,
  which is never what was meant, so ``import nas_eval`` fails at once (:func:`check`) and
  says so, as NumPy and SciPy do from their source trees;
* nothing else is installed: the analysis layer works without the core (a laptop without a
  compiler reads and reports a study run elsewhere), so the import succeeds and only the
  engine's first use fails, with :func:`core_missing_message`.

Standard library only, and nothing is imported here: the core is looked for as a file.
"""
import importlib.machinery
import os
import sys

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
CORE = "_core"

DEVELOPER_INSTALL = ("a developer install that builds the core in place: `pip install -e .` "
                     "(or `python setup.py build_ext --inplace`) in the repository root")


def _has_core(package_dir):
    return any(os.path.isfile(os.path.join(package_dir, CORE + suffix))
               for suffix in importlib.machinery.EXTENSION_SUFFIXES)


def is_source_tree(package_dir=PACKAGE_DIR):
    """A checkout of the repository: setup.py and csrc/ beside the package."""
    root = os.path.dirname(package_dir)
    return os.path.isfile(os.path.join(root, "setup.py")) and os.path.isdir(os.path.join(root, "csrc"))


def installed_elsewhere(package_dir=PACKAGE_DIR, path=None):
    """Another ``nas_eval`` with a built core that Python could import instead of this one (the
    copy it shadows), or None: looked for along ``path`` (default ``sys.path``) and, by
    default, through the import system's other finders too (an editable install's)."""
    here = os.path.realpath(package_dir)
    candidates = [os.path.join(entry or os.getcwd(), "nas_eval") for entry in (sys.path if path is None else path)]
    if path is None:
        for finder in sys.meta_path:
            if finder is importlib.machinery.PathFinder or not hasattr(finder, "find_spec"):
                continue
            try:
                spec = finder.find_spec("nas_eval", None)
            except Exception:  # noqa: BLE001 - a foreign finder's failure only means "not there"
                continue
            if spec is not None and spec.origin:
                candidates.append(os.path.dirname(spec.origin))
    for candidate in candidates:
        if os.path.realpath(candidate) != here and os.path.isfile(os.path.join(candidate, "__init__.py")) \
                and _has_core(candidate):
            return candidate
    return None


def core_missing_message(package_dir=PACKAGE_DIR, path=None):
    """Why the core cannot be imported from ``package_dir`` and what to do, or None if it is built."""
    if _has_core(package_dir) or not is_source_tree(package_dir):
        return None
    root = os.path.dirname(package_dir)
    other = installed_elsewhere(package_dir, path)
    if other is not None:
        return (f"nas_eval was imported from its source tree {package_dir}, whose C core is not built, "
                f"and this source tree shadows the installed nas_eval at {other} (Python looks in the "
                f"current directory first). Run Python from another directory than {root} to use the "
                f"installed package, or make the source tree importable with {DEVELOPER_INSTALL}.")
    return (f"the C core of nas_eval is not built in the source tree {package_dir}: the engine (models, "
            f"training, searches) needs it; the analysis layer (metrics, reports, reading a study) does "
            f"not. Build it with {DEVELOPER_INSTALL}, or install the package (`pip install .`) and run "
            f"Python from another directory than {root}.")


def check(package_dir=PACKAGE_DIR, path=None):
    """Raise ImportError at ``import nas_eval`` when a core-less source tree shadows an install."""
    if not _has_core(package_dir) and is_source_tree(package_dir) and installed_elsewhere(package_dir, path):
        raise ImportError(core_missing_message(package_dir, path))
