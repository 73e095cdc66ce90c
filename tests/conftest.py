import copy
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests import reference.py

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def data_root():
    """Where the test corpora live: $NAS_EVAL_DATA, else ../shared/data beside the checkout."""
    env = os.environ.get("NAS_EVAL_DATA")
    return Path(env) if env else SHARED_DATA


def ptb_or_skip():
    import nas_eval

    root = data_root()
    if not (root / "ptb" / "train.txt").exists():
        pytest.skip(f"PTB not found under {root}")
    return nas_eval.datasets.load("ptb", root=root)


@pytest.fixture(scope="module")
def synth_corpus():
    """A small synthetic corpus (vocabulary 30, 4000 / 600 / 600 tokens, seed 3): the one of
    the training-loop tests."""
    import nas_eval

    return nas_eval.datasets.synthetic(vocab_size=30, train_tokens=4000, valid_tokens=600,
                                       test_tokens=600, seed=3)


def resumed_after_one_epoch(make):
    """Two searches from ``make()``: one run two epochs straight, one restored from (a deep
    copy of) the first's state after its first epoch and run its second. Returns both, for a
    test that the resumed one ends bitwise where the uninterrupted one does."""
    full = make()
    full.run_epoch()
    state = copy.deepcopy(full.state())
    full.run_epoch()
    resumed = make()
    resumed.restore(state)
    resumed.run_epoch()
    return full, resumed


@pytest.fixture
def resume_halfway():
    """:func:`resumed_after_one_epoch`, for the tests that check a search's state()/restore()."""
    return resumed_after_one_epoch
