"""notebooks/analysis.ipynb runs end to end (nbclient) against the tiny study."""
from pathlib import Path

import pytest

from study_fixture import tiny_study_path  # noqa: F401

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "analysis.ipynb"


def test_analysis_notebook_runs(tiny_study_path, tmp_path, monkeypatch):
    # the kernel inherits this process's environment
    monkeypatch.setenv("NAS_EVAL_STUDY", str(tiny_study_path))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit it without outputs"
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, errors
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    from nas_eval import report

    assert len(images) == len(report.FIGURES)  # the report's figures, inline
    tables = [o for o in outputs if "text/html" in o.get("data", {})]
    assert len(tables) >= 6
    text = "".join(o.get("text", "") for o in outputs)
    assert "policy means match the DataFrame" in text and "skipped" not in text
    assert not list(Path(tmp_path).iterdir())  # it reads the store, writes nothing
