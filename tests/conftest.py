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
