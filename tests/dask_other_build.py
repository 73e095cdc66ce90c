"""``dask worker --preload tests/dask_other_build.py``: makes that worker report another
nas_eval than the driver's, as a machine with another install would, so that
tests/test_dask_cluster.py can check the driver refuses it by name. Which difference comes
from ``$NAS_EVAL_TEST_OTHER`` in the worker's environment: ``version`` (another
``nas_eval.__version__``) or ``core`` (the same version, a core built from other sources)."""
import os

import nas_eval
from nas_eval import executors

if os.environ.get("NAS_EVAL_TEST_OTHER") == "core":
    _real = executors.build_id()
    executors.build_id = lambda: {**_real, "core": "0123456789abcdef"}
else:
    nas_eval.__version__ = "0.1.9"
