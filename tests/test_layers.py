"""The layers of docs/design.md §13: the analysis and orchestration layer works without the
C extension, and no module reaches into another's private names."""
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from study_fixture import tiny_study_path  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]

# modules a user needs to read, summarise and report a study: none may load the C core
ANALYSIS = ["nas_eval", "nas_eval.space", "nas_eval.datasets", "nas_eval.config", "nas_eval.presets",
            "nas_eval.rng", "nas_eval.metrics", "nas_eval.summaries", "nas_eval.sharing", "nas_eval.plots",
            "nas_eval.report", "nas_eval.spec", "nas_eval.plan", "nas_eval.jobkinds", "nas_eval.jobs",
            "nas_eval.store", "nas_eval.executors", "nas_eval.study", "nas_eval.provenance",
            "nas_eval.policies", "nas_eval.policies.random", "nas_eval.policies.ws_random", "nas_eval.cli"]

BLOCK_CORE = textwrap.dedent("""
    import sys
    class BlockCore:
        def find_spec(self, name, path=None, target=None):
            if name == "nas_eval._core":
                raise ImportError("the C extension is blocked for this test")
    sys.meta_path.insert(0, BlockCore())
""")


def _run(code):
    return subprocess.run([sys.executable, "-c", BLOCK_CORE + textwrap.dedent(code)], capture_output=True,
                          text=True, cwd=ROOT.parent, timeout=300)


def test_the_analysis_layer_imports_without_the_c_extension():
    r = _run("import nas_eval.report, nas_eval.metrics, nas_eval.study; print('ok')")
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    r = _run("import nas_eval.engine")  # the block is real: the engine needs the core
    assert r.returncode != 0 and "the C extension is blocked" in r.stderr


@pytest.mark.parametrize("module", ANALYSIS)
def test_no_analysis_module_loads_the_engine(module):
    r = subprocess.run([sys.executable, "-c", f"import sys, {module}; "
                        "print(sorted(m for m in sys.modules if m.startswith(('nas_eval.engine', 'nas_eval._core'))))"],
                       capture_output=True, text=True, cwd=ROOT.parent, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", f"{module} loads {r.stdout.strip()}"


def test_a_study_reports_without_the_c_extension(tiny_study_path, tmp_path):
    r = _run(f"""
        import nas_eval, nas_eval.policies
        study = nas_eval.Study({str(tiny_study_path)!r})
        gt = study.ground_truth()
        results = nas_eval.report.write(study, {str(tmp_path)!r}, n_boot=50, n_perm=50)
        nas_eval.policies.check_options("ws-random", {{"candidates": 10}})
        print(len(gt), len(results["files"]))
    """)
    assert r.returncode == 0, r.stderr
    n_archs, n_files = map(int, r.stdout.split())
    assert n_archs == 32 and n_files >= 10
    assert (tmp_path / "report.md").exists()


PRIVATE = re.compile(r"\b_core\b|\._table\b|(?<!self)\._prepare\b|import _prepare\b|\b_SeqLen\b|\b_native\b")


def test_no_private_reaches_across_modules():
    """Only nas_eval/engine/native.py names the extension; nobody else uses the old private
    helpers (the grep of issue 12, over the package, tests, benchmarks and notebooks)."""
    owner = ROOT / "nas_eval" / "engine" / "native.py"
    # the source-tree check looks for the built file by name (it imports nothing), and its test
    source_tree = {ROOT / "nas_eval" / "_source_tree.py", ROOT / "tests" / "test_source_tree.py"}
    offenders = []
    for folder in ("nas_eval", "tests", "benchmarks", "notebooks"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix not in (".py", ".ipynb") or path in {owner, Path(__file__).resolve()} | source_tree:
                continue
            for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if PRIVATE.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
