"""Importing a source checkout whose C core was never built (issue 18, docs/design.md §13.1).

From the repository root Python imports the source tree ``./nas_eval`` before an installed
copy. Without a built core that import must not end in a bare ``cannot import name '_core'``:
it fails at once, saying why and what to do, when the tree shadows an installed nas_eval;
without an install elsewhere the analysis layer keeps working and the engine's first use says
how to build the core.
"""
import importlib.machinery
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nas_eval import _source_tree

ROOT = Path(__file__).resolve().parents[1]
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def _checkout(tmp_path):
    """A copy of the repository's Python sources as a fresh clone has them: setup.py, csrc/,
    nas_eval/**.py, and no built core."""
    repo = tmp_path / "clone"
    for src in sorted((ROOT / "nas_eval").rglob("*.py")):
        dst = repo / src.relative_to(ROOT)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    shutil.copy2(ROOT / "setup.py", repo / "setup.py")
    (repo / "csrc").mkdir()
    assert not list((repo / "nas_eval").glob("_core*"))
    return repo


def _installed(tmp_path):
    """A stand-in for site-packages' nas_eval: a package with a built core (never imported)."""
    site = tmp_path / "site"
    (site / "nas_eval").mkdir(parents=True)
    (site / "nas_eval" / "__init__.py").write_text("")
    (site / "nas_eval" / f"_core{SUFFIX}").write_bytes(b"")
    return site


def _python(code, cwd, pythonpath):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_a_source_tree_that_shadows_an_install_fails_at_once_and_says_why(tmp_path):
    repo, site = _checkout(tmp_path), _installed(tmp_path)
    r = _python("import nas_eval", cwd=repo, pythonpath=site)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: nas_eval was imported from its source tree")
    assert "cannot import name" not in r.stderr
    assert f"shadows the installed nas_eval at {site / 'nas_eval'}" in last
    assert "another directory" in last and "pip install -e ." in last and "build_ext --inplace" in last
    # from another directory the same interpreter imports the installed copy
    elsewhere = _python("import nas_eval, sys; print(nas_eval.__file__)", cwd=tmp_path, pythonpath=site)
    assert elsewhere.returncode == 0 and elsewhere.stdout.strip() == str(site / "nas_eval" / "__init__.py")


def test_without_an_install_the_analysis_layer_works_and_the_engine_says_how_to_build(tmp_path):
    repo = _checkout(tmp_path)
    pkg = str(repo / "nas_eval")
    assert _source_tree.is_source_tree(pkg)
    # nothing installed on this path: importing is allowed (docs/design.md §13: analysis only)
    _source_tree.check(pkg, path=[str(repo)])
    why = _source_tree.core_missing_message(pkg, path=[str(repo)])
    assert why.startswith(f"the C core of nas_eval is not built in the source tree {pkg}")
    assert "pip install -e ." in why and "build_ext --inplace" in why and "another directory" in why
    # with an install on the path, the same tree is refused at import
    site = _installed(tmp_path)
    with pytest.raises(ImportError, match="shadows the installed nas_eval"):
        _source_tree.check(pkg, path=[str(repo), str(site)])
    # a built tree, and an installed copy (no setup.py beside it), are never refused
    (repo / "nas_eval" / f"_core{SUFFIX}").write_bytes(b"")
    assert _source_tree.core_missing_message(pkg, path=[str(site)]) is None
    _source_tree.check(pkg, path=[str(site)])
    assert not _source_tree.is_source_tree(str(site / "nas_eval"))


def test_the_engine_import_carries_the_message(tmp_path):
    """The engine's import of the core (engine/native.py) raises the message, not the bare
    'cannot import name', where the tree is a checkout without its core."""
    repo = _checkout(tmp_path)
    # this machine has nas_eval installed; the clone's copy is told it has not
    with open(repo / "nas_eval" / "_source_tree.py", "a") as f:
        f.write("\n\ndef installed_elsewhere(package_dir=PACKAGE_DIR, path=None):\n    return None\n")
    # and an editable install's finder (this machine's) may not hand it that install's core
    code = ("import sys\n"
            "sys.meta_path[:] = [f for f in sys.meta_path if getattr(f, '__module__', '').startswith('_frozen')]\n"
            "import nas_eval.metrics, nas_eval.report\n"  # the analysis layer imports without the core
            "print('analysis ok', flush=True)\n"
            "import nas_eval.engine\n")
    r = _python(code, cwd=repo, pythonpath=None)
    assert r.stdout.strip() == "analysis ok", r.stderr
    assert r.returncode != 0
    assert "ImportError: the C core of nas_eval is not built in the source tree" in r.stderr
    assert "pip install -e ." in r.stderr


def test_the_developer_install_is_documented():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install -e '.[test]'" in text and "setup.py build_ext --inplace" in text
    # the message names the same commands as the README
    assert "pip install -e ." in _source_tree.DEVELOPER_INSTALL
    assert "build_ext --inplace" in _source_tree.DEVELOPER_INSTALL
