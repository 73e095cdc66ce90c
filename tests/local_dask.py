"""A Dask cluster of separate processes on 127.0.0.1, started from the command lines the
README gives (``dask scheduler``, ``dask worker ADDRESS --nthreads 1 --nworkers 1``), for
tests/test_dask_cluster.py and benchmarks/dask_cluster.py.

Every process runs in its own session (process group), so one ``dask worker`` (its nanny
and the worker process it starts) can be SIGKILLed at once, as a lost machine would be,
and :meth:`LocalDaskCluster.close` kills every group it started: no orphans.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nas_eval

REPO = Path(__file__).resolve().parents[1]
# Where the nas_eval this process imported lives: the checkout after a developer install that
# builds the core in place, site-packages after `pip install .` (CI). Child processes import
# the same one; the checkout itself would shadow an installed package with an unbuilt core.
PACKAGE_ROOT = Path(nas_eval.__file__).resolve().parents[1]
DASK = str(Path(sys.executable).parent / "dask")  # the venv's own dask command
START_TIMEOUT = 90.0  # seconds; generous for a loaded 2-core machine, but bounded


def repo_env(**extra):
    """The environment of a process that imports the nas_eval this process imported (run it
    from a directory other than the checkout: ``python -m`` puts the current one first)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


class LocalDaskCluster:
    """``with LocalDaskCluster(tmp) as c: c.start_scheduler(); c.start_worker("w1")``."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.scheduler = None
        self.workers = {}  # name -> Popen
        self.port = None
        self._logs = []

    @property
    def address(self):
        return f"tcp://127.0.0.1:{self.port}"

    def _popen(self, name, argv, env):
        log = open(self.workdir / f"{name}.log", "ab")
        self._logs.append(log)
        return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=self.workdir, start_new_session=True)

    def start_scheduler(self):
        """Start ``dask scheduler`` on 127.0.0.1 (a free port the first time, the same port
        after a restart) and wait until it accepts connections."""
        sched_file = self.workdir / "scheduler.json"
        if sched_file.exists():
            sched_file.unlink()
        argv = [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(self.port or 0), "--no-dashboard",
                "--scheduler-file", str(sched_file)]
        self.scheduler = self._popen("scheduler", argv, repo_env())
        deadline = time.monotonic() + START_TIMEOUT
        while not sched_file.exists():
            self._check_alive(self.scheduler, "dask scheduler", deadline)
            time.sleep(0.1)
        for _ in range(50):  # the file may be seen before it is completely written
            try:
                address = json.loads(sched_file.read_text())["address"]
                break
            except (ValueError, KeyError):
                time.sleep(0.1)
        self.port = int(address.rsplit(":", 1)[1])
        return self.address

    def start_worker(self, name, preload=None, **env):
        """Start ``dask worker ADDRESS --nthreads 1 --nworkers 1`` (with its nanny) named
        ``name``; ``env`` adds (or, with None, removes) environment variables."""
        argv = [DASK, "worker", self.address, "--nthreads", "1", "--nworkers", "1", "--name", name,
                "--host", "127.0.0.1", "--no-dashboard", "--local-directory", str(self.workdir / name)]
        if preload:
            argv += ["--preload", str(preload)]
        self.workers[name] = self._popen(name, argv, repo_env(**env))
        return self.workers[name]

    def wait_for_workers(self, n, timeout=START_TIMEOUT):
        from distributed import Client

        with Client(self.address, timeout=timeout) as client:
            client.wait_for_workers(n, timeout=timeout)
            return client.run(os.getpid)  # worker address -> pid

    def _check_alive(self, proc, what, deadline):
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; see {self.workdir}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not start within {START_TIMEOUT:.0f} s; see {self.workdir}")

    @staticmethod
    def kill(proc):
        """SIGKILL a process and everything in its session (a dask worker's nanny and worker)."""
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def kill_worker(self, name):
        self.kill(self.workers.pop(name))

    def kill_scheduler(self):
        self.kill(self.scheduler)
        self.scheduler = None

    def close(self):
        for proc in [*self.workers.values(), self.scheduler]:
            self.kill(proc)
        self.workers.clear()
        self.scheduler = None
        for log in self._logs:
            log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
