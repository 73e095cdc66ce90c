"""Storage: the job store of a resumable study, one SQLite file, JSON only.

Why SQLite: one file, no server, transactional. WAL mode lets readers (a notebook, a
report) look at the study while the driver writes. Only the driver process writes;
workers return results to it. Every write is its own transaction, so killing the driver
(even SIGKILL) loses nothing that finished: a job is ``done`` exactly when its result is.

States::

    pending --mark_running--> running --mark_done--> done      (never rerun)
                                      --mark_failed-> failed    (error text kept; rerun
                                                                 only with retry_failed)
    running (owner is a dead driver) --reset_stale--> stale     (rerun like pending)

``owner`` is ``host:pid:uuid`` of the driver that marked a job running. A new driver takes
the driver lock (``driver()``, an OS file lock the kernel drops when a process dies) and
then ``reset_stale()``: every job still ``running`` under another owner was left by a dead
driver. Readers never reset anything, so opening a store to look at it is harmless.

Values are JSON text (Python's json; NaN/Infinity allowed so diverged runs round-trip).
No pickle: a store can be read by any tool and never executes code when loaded.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import time
import uuid
from typing import Dict, Iterable, List, Optional

from .jobs import Job, to_json

__all__ = ["Storage", "StoreBusy", "StoreError", "StoreWriteError", "STATES", "RUNNABLE"]

SCHEMA_VERSION = 1
STATES = ("pending", "running", "done", "failed", "stale")
RUNNABLE = ("pending", "stale")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, params TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', result TEXT, error TEXT, provenance TEXT,
    wall_time REAL, attempts INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL, started REAL, finished REAL, owner TEXT);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, kind);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    time REAL NOT NULL, key TEXT, kind TEXT NOT NULL, message TEXT NOT NULL);
"""
_JSON_COLS = ("params", "result", "provenance")
_DB_SUFFIXES = (".db", ".sqlite", ".sqlite3")


class StoreBusy(RuntimeError):
    """Another live driver holds this store."""


class StoreError(ValueError):
    """The path does not hold a usable store (not a database, corrupt, unwritable)."""


class StoreWriteError(StoreError):
    """A write to the store could not be made (disk full, read-only, I/O error). The
    write's transaction was rolled back: the store holds what it held before."""


def _write_failure(path: str, exc: BaseException) -> StoreWriteError:
    text = str(exc)
    low = text.lower()
    if "full" in low or "no space" in low or "quota" in low:
        why = (f"the disk holding {path} is full ({text}); this write was rolled back and the store "
               f"is intact: free some space and rerun the same command to resume")
    elif "readonly" in low or "read-only" in low:
        why = (f"{path} is read-only ({text}); the store is intact: copy the study directory somewhere "
               f"writable to run it (status and report --out can still read it)")
    else:
        why = f"could not write {path} ({text}); this write was rolled back and the store is intact"
    return StoreWriteError(why)


def _resolve_path(path) -> str:
    path = os.fspath(path)
    if os.path.isdir(path) or os.path.splitext(path)[1] not in _DB_SUFFIXES:
        if os.path.exists(path) and not os.path.isdir(path):
            raise StoreError(f"{path} is a file, not a study directory (give a directory, or a "
                             f"{'/'.join(_DB_SUFFIXES)} file)")
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the study directory {path}: {e.strerror}") from None
        return os.path.join(path, "study.db")
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot create the directory of {path}: {e.strerror}") from None
    return path


class Storage:
    """``Storage(path)``: ``path`` is a ``.db``/``.sqlite`` file, or else a directory
    (created if needed; the file is ``study.db`` inside). Use from one thread."""

    def __init__(self, path):
        self.path = _resolve_path(path)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lock_fd = None
        self.readonly = None  # why the store can only be read, or None
        try:
            self._open()
        except sqlite3.DatabaseError as e:  # not a database, corrupt, read-only, disk full
            if getattr(self, "_conn", None) is not None:
                self._conn.close()
            if not self._open_readonly(e):
                raise StoreError(f"{self.path} is not a usable nas_eval store: {e}") from None

    def _open(self):
        # autocommit mode; writes open their own transaction in _tx()
        self._conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL: a commit survives a killed process (not a power cut), cheaply
        self._conn.execute("PRAGMA synchronous=NORMAL")
        with self._tx() as c:
            for stmt in filter(str.strip, _SCHEMA.split(";")):  # executescript would COMMIT
                c.execute(stmt)
            c.execute("INSERT INTO schema_version SELECT ? WHERE NOT EXISTS (SELECT 1 FROM schema_version)",
                      (SCHEMA_VERSION,))
        self._check_version()

    def _check_version(self):
        row = self._conn.execute("SELECT version FROM schema_version").fetchone()
        if row is not None and row[0] != SCHEMA_VERSION:
            raise StoreError(f"{self.path}: store schema {row[0]}, this nas_eval reads schema {SCHEMA_VERSION}")

    def _open_readonly(self, error) -> bool:
        """A store in a directory this process cannot write (a read-only mount, another
        user's study) opens for reading only: status and reports work, writes raise
        StoreWriteError. False when the directory is writable (the error was something
        else) or there is no store to read."""
        folder = os.path.dirname(os.path.abspath(self.path))
        if os.access(folder, os.W_OK) or not os.path.isfile(self.path):
            return False
        from urllib.parse import quote

        uri = "file:" + quote(os.path.abspath(self.path))
        # mode=ro still needs the WAL index (-shm) beside the file; immutable=1 does not,
        # and nothing can change a file in a folder nobody here may write
        for flags in ("?mode=ro", "?immutable=1"):
            try:
                self._conn = sqlite3.connect(uri + flags, uri=True, timeout=60, isolation_level=None)
                self._conn.execute("SELECT count(*) FROM jobs").fetchone()
                self._check_version()
            except sqlite3.DatabaseError:
                self._conn.close()
                continue
            self.readonly = f"{folder} cannot be written ({error})"
            return True
        return False

    # --- plumbing -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _tx(self):
        self._check_writable()
        try:
            # BEGIN IMMEDIATE takes the write lock up front: no upgrade deadlocks with readers
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                # nothing to roll back when a failed COMMIT has rolled back already
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as e:  # disk full, read-only, I/O; a busy lock stays itself
            if "locked" in str(e):
                raise
            raise _write_failure(self.path, e) from None

    def _check_writable(self):
        if self.readonly:
            raise _write_failure(self.path, sqlite3.OperationalError("read-only: " + self.readonly))

    def close(self):
        self.release_driver()
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"Storage({self.path!r})"

    # --- the driver lock --------------------------------------------------------------------
    def acquire_driver(self):
        """Become the one writing driver; raises StoreBusy if a live process is one.
        The lock is an flock on ``<db>.lock``: the kernel releases it when the holder
        dies, so a crashed driver never blocks the next one."""
        if self._lock_fd is not None:
            return
        self._check_writable()
        try:
            fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise _write_failure(self.path + ".lock", e) from None
        try:
            import fcntl
        except ImportError:  # no flock (Windows): single-driver use is on the user
            self._lock_fd = fd
            return
        # a reader's liveness probe (driver_alive) holds a shared lock for an instant: retry
        for attempt in range(20):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if attempt == 19:
                    os.close(fd)
                    raise StoreBusy(f"{self.path} is being run by another live driver") from None
                time.sleep(0.05)
        self._lock_fd = fd

    def driver_alive(self) -> bool:
        """Whether a live process holds the driver lock (this one included). Readers use it
        to tell jobs that are running from jobs a dead driver left ``running``."""
        if self._lock_fd is not None:
            return True
        try:
            import fcntl
        except ImportError:
            return True  # cannot tell: trust the store
        try:
            fd = os.open(self.path + ".lock", os.O_RDONLY)
        except OSError:
            return False  # never driven
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)  # drops the probe's lock at once
        return False

    def release_driver(self):
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    @contextlib.contextmanager
    def driver(self):
        """``with storage.driver():`` hold the driver lock and reset stale jobs."""
        self.acquire_driver()
        try:
            self.reset_stale()
            yield self
        finally:
            self.release_driver()

    # --- jobs --------------------------------------------------------------------------------
    def add(self, jobs: Iterable[Job]) -> List[str]:
        """Insert jobs; existing keys are left untouched (idempotent). Returns keys."""
        jobs = list(jobs)
        now = time.time()
        with self._tx() as c:
            c.executemany(
                "INSERT OR IGNORE INTO jobs (key, kind, params, created) VALUES (?,?,?,?)",
                [(j.key, j.kind, j.params_json, now) for j in jobs])
        return [j.key for j in jobs]

    def __contains__(self, key) -> bool:
        return self._conn.execute("SELECT 1 FROM jobs WHERE key=?", (key,)).fetchone() \
            is not None

    def __len__(self) -> int:
        return self._conn.execute("SELECT count(*) FROM jobs").fetchone()[0]

    def get(self, key: str) -> dict:
        """The full record of one job (JSON columns parsed); KeyError if unknown."""
        rows = self._select("WHERE key=?", (key,))
        if not rows:
            raise KeyError(key)
        return rows[0]

    def records(self, kind: Optional[str] = None, states: Optional[Iterable[str]] = None
                ) -> List[dict]:
        where, args = [], []
        if kind is not None:
            where.append("kind=?")
            args.append(kind)
        if states is not None:
            states = list(states)
            where.append(f"state IN ({','.join('?' * len(states))})")
            args += states
        return self._select(("WHERE " + " AND ".join(where)) if where else "", args)

    def _select(self, where: str, args) -> List[dict]:
        cur = self._conn.execute(f"SELECT * FROM jobs {where} ORDER BY rowid", tuple(args))
        cols = [d[0] for d in cur.description]
        out = []
        for row in cur:
            rec = dict(zip(cols, row))
            for col in _JSON_COLS:
                if rec[col] is not None:
                    rec[col] = json.loads(rec[col])
            out.append(rec)
        return out

    def state_counts(self) -> Dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        counts.update(self._conn.execute(
            "SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
        return counts

    def pending(self, kinds: Optional[Iterable[str]] = None, retry_failed: bool = False
                ) -> List[dict]:
        """Runnable jobs in insertion order: pending and stale, plus failed if asked."""
        states = list(RUNNABLE) + (["failed"] if retry_failed else [])
        recs = self.records(states=states)
        if kinds is not None:
            kinds = set([kinds] if isinstance(kinds, str) else kinds)
            recs = [r for r in recs if r["kind"] in kinds]
        return recs

    def _set(self, key, sql, args):
        with self._tx() as c:
            if c.execute(f"UPDATE jobs SET {sql} WHERE key=?", (*args, key)).rowcount != 1:
                raise KeyError(key)

    def mark_running(self, key: str, owner: Optional[str] = None):
        self._set(key, "state='running', owner=?, started=?, attempts=attempts+1",
                  (owner or self.owner, time.time()))

    def mark_pending(self, key: str):
        """Back to pending (a job submitted but never started, e.g. on Ctrl-C)."""
        self._set(key, "state='pending', owner=NULL, attempts=max(attempts-1, 0)", ())

    def mark_stale(self, key: str, reason: str = "interrupted"):
        self._set(key, "state='stale'", ())
        self.log_event("stale", reason, key=key)

    def mark_done(self, key: str, payload: dict):
        """``payload`` is what ``jobs.run_job`` returns: result, wall_time, provenance."""
        self._set(key, "state='done', result=?, provenance=?, wall_time=?, error=NULL, "
                       "finished=?",
                  (to_json(payload["result"]), to_json(payload.get("provenance")),
                   payload.get("wall_time"), time.time()))

    def mark_failed(self, key: str, error: str):
        # the last error stays on the job; every error also goes to the event log
        with self._tx() as c:
            if c.execute("UPDATE jobs SET state='failed', error=?, finished=? WHERE key=?",
                         (error, time.time(), key)).rowcount != 1:
                raise KeyError(key)
            c.execute("INSERT INTO events VALUES (?,?,?,?)",
                      (time.time(), key, "failed", error))

    def reset_stale(self) -> int:
        """Jobs ``running`` under another owner become ``stale``. Call only as the driver
        (see ``driver()``): a live driver's running jobs would be reset too."""
        with self._tx() as c:
            keys = [k for (k,) in c.execute(
                "SELECT key FROM jobs WHERE state='running' AND owner IS NOT ?",
                (self.owner,))]
            c.executemany("UPDATE jobs SET state='stale' WHERE key=?", [(k,) for k in keys])
            now = time.time()
            c.executemany("INSERT INTO events VALUES (?,?,?,?)",
                          [(now, k, "stale", "left running by a dead driver")
                           for k in keys])
        return len(keys)

    # --- events and study-level metadata -----------------------------------------------------
    def log_event(self, kind: str, message: str, key: Optional[str] = None):
        """Record something worth keeping (non-finite loss recovery, stale reset...)."""
        with self._tx() as c:
            c.execute("INSERT INTO events VALUES (?,?,?,?)", (time.time(), key, kind, message))

    def events(self, kind: Optional[str] = None):
        import pandas as pd
        sql, args = "SELECT * FROM events", ()
        if kind is not None:
            sql, args = sql + " WHERE kind=?", (kind,)
        return pd.read_sql_query(sql + " ORDER BY rowid", self._conn, params=args)

    def set_meta(self, key: str, value):
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES (?,?)", (key, to_json(value)))

    def get_meta(self, key: str, default=None):
        row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    # --- results as DataFrames ---------------------------------------------------------------
    def results(self, kind: Optional[str] = None):
        """One row per job: key, kind, state, ``params.*`` columns (nested params
        flattened with dots), wall_time, attempts, error, started/finished (Unix s), and
        ``result`` / ``provenance`` as dict columns."""
        import pandas as pd

        recs = self.records(kind=kind)
        base = pd.DataFrame([{c: r[c] for c in ("key", "kind", "state", "wall_time",
                                                 "attempts", "error", "started",
                                                 "finished")} for r in recs],
                            columns=["key", "kind", "state", "wall_time", "attempts",
                                     "error", "started", "finished"])
        params = pd.json_normalize([r["params"] for r in recs]).add_prefix("params.")
        params.index = base.index
        df = pd.concat([base.iloc[:, :3], params, base.iloc[:, 3:]], axis=1)
        df["result"] = [r["result"] for r in recs]
        df["provenance"] = [r["provenance"] for r in recs]
        return df

    def results_table(self, kind: str, fields: Optional[List[str]] = None):
        """Done jobs of one kind: key, ``params.*`` and the chosen result fields (dotted
        paths into the result, e.g. ``"curves.val_ppl"``) as columns; all result fields,
        flattened, if ``fields`` is None."""
        import pandas as pd

        df = self.results(kind)
        df = df[df["state"] == "done"].reset_index(drop=True)
        res = list(df["result"])
        if fields is None:
            cols = pd.json_normalize(res) if res else pd.DataFrame()
        else:
            cols = pd.DataFrame({f: [_dig(r, f) for r in res] for f in fields})
        keep = ["key"] + [c for c in df.columns if c.startswith("params.")] + ["wall_time"]
        return pd.concat([df[keep], cols.set_axis(df.index)], axis=1)


def _dig(d, path: str):
    for part in path.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d
