"""A driver for test_orphans.py: runs sleeping selftest jobs of the store at argv[1] on a
process pool (or a local Dask cluster) of argv[2] ('process' or 'dask'), printing its
workers' pids once they run, then waits to be SIGKILLed."""
import os
import sys

from nas_eval.executors import make_executor, run_pending
from nas_eval.jobs import Job
from nas_eval.store import Storage


def main():
    path, kind = sys.argv[1], sys.argv[2]
    storage = Storage(path)
    storage.add([Job("selftest", {"seed": s, "sleep": 120}) for s in range(4)])
    ex = make_executor(kind, workers=2)
    run_pending(storage, ex, progress=False)


if __name__ == "__main__":
    print(os.getpid(), flush=True)
    main()
