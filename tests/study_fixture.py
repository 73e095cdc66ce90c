"""A real, tiny study (a second or so): the tiny preset on a synthetic corpus with d = 8 and
2 epochs. Shared by test_report.py and test_notebook.py; import the fixtures by name::

    from study_fixture import tiny_study_path, tiny_study  # noqa: F401

The study is built once per test session (cached here, since a fixture imported into two
test modules is registered twice by pytest).
"""
import pytest

import nas_eval
from nas_eval.spec import study_preset

CORPUS = "synthetic:vocab_size=40,train_tokens=3000,valid_tokens=600,test_tokens=600"
SMALL = {"train_tokens": None, "valid_tokens": None, "test_tokens": None, "hidden_size": 8, "epochs": 2}

_BUILT = {}


def tiny_spec(**overrides):
    """The tiny study preset on the synthetic corpus, d = 8, 2 epochs, policies random and
    ws-random unless ``overrides`` (as in ``study_preset``) say otherwise."""
    overrides.setdefault("policies", ["random", "ws-random"])
    return study_preset("smoke", corpus=CORPUS, train=dict(SMALL), search=dict(SMALL), **overrides)


def run_study(path, spec):
    study = nas_eval.Study(str(path))
    study.run(spec, executor="serial", progress=False)
    return study


@pytest.fixture(scope="session")
def tiny_study_path(tmp_path_factory):
    """Path of a finished tiny study store (ground truth, WS ranking, ws-random searches,
    random baselines, retraining and the amount-of-sharing experiment)."""
    if "tiny" not in _BUILT:
        path = tmp_path_factory.mktemp("tiny_study")
        run_study(path, tiny_spec()).close()
        _BUILT["tiny"] = path
    return _BUILT["tiny"]


@pytest.fixture
def tiny_study(tiny_study_path):
    """The tiny study opened for reading."""
    study = nas_eval.Study(str(tiny_study_path))
    yield study
    study.close()
