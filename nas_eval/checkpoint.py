"""Checkpoints inside long jobs: save a job's whole state, resume it after a kill.

A :class:`Checkpoint` is one file, ``<directory>/<job_key>.ckpt``, holding a state tree
(nested dicts and lists of NumPy arrays, NumPy scalars, Python numbers, strings, bools and
None) — what ``Trainer.state()``, ``StandaloneTraining.state()`` or a policy's own state
returns. The format is plain data, never code:

* line 1: the magic ``NAS-EVAL-CHECKPOINT 1``;
* line 2: a JSON envelope ``{"job_key", "version", "sha256", "size"}``;
* the rest: an ``.npz`` (``numpy.savez``) with one entry per array of the tree and a
  ``__tree__`` entry, the tree as JSON text (arrays replaced by references). It is read with
  ``allow_pickle=False``, so loading a checkpoint never runs code.

``save`` writes a temporary file in the same directory, fsyncs it and renames it over the
old one (``os.replace`` is atomic), so a kill at any instant leaves the previous checkpoint
or the new one, never half of one. ``load`` checks the magic, the size, the SHA-256 of the
payload, the job key and the package version; a checkpoint that fails any check is ignored
(``load`` returns None, the job starts over) and reported through ``on_event`` (default: a
``logging`` warning) and :attr:`Checkpoint.events`.

This module is pure Python and NumPy: it never imports the C core.

>>> import tempfile, numpy as np
>>> ck = Checkpoint(tempfile.mkdtemp(), "0123abcd")
>>> ck.save({"epoch": 3, "w": np.arange(4, dtype=np.float32), "best": float("inf")})
>>> state = ck.load()
>>> state["epoch"], state["w"].dtype.name, state["best"]
(3, 'float32', inf)
>>> ck.remove(); ck.load() is None
True
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import time
import uuid
from typing import Callable, List, Optional

import numpy as np

__all__ = ["Checkpoint", "MAGIC", "SUFFIX"]

MAGIC = b"NAS-EVAL-CHECKPOINT 1\n"
SUFFIX = ".ckpt"
_KEY_RE = re.compile(r"^[0-9A-Za-z_-]{1,128}$")
_log = logging.getLogger("nas_eval.checkpoint")


def takes_checkpoint(fn) -> bool:
    """Whether a job kind or a policy's ``search`` accepts ``checkpoint=`` (the job runner and
    the policies both ask; here, in this pure-Python module, so that neither imports the other)."""
    import inspect

    try:
        return "checkpoint" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _version():
    from . import __version__
    return __version__


# --- the state tree <-> (JSON text, arrays) ----------------------------------------------------
def _encode(obj, arrays, path):
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError(f"checkpoint state {path}: object arrays are not storable")
        name = f"a{len(arrays)}"
        arrays[name] = obj
        return {"__array__": name}
    if isinstance(obj, np.generic):  # keep the exact dtype of NumPy scalars
        if isinstance(obj, (np.floating, np.integer, np.bool_)):
            return {"__scalar__": obj.dtype.str, "value": obj.item()}
        raise TypeError(f"checkpoint state {path}: unsupported NumPy scalar {obj.dtype}")
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"checkpoint state {path}: keys must be strings, got {k!r}")
            if k.startswith("__") and k.endswith("__"):
                raise TypeError(f"checkpoint state {path}: reserved key {k!r}")
            out[k] = _encode(v, arrays, f"{path}.{k}")
        return out
    if isinstance(obj, (list, tuple)):
        return [_encode(v, arrays, f"{path}[{i}]") for i, v in enumerate(obj)]
    raise TypeError(f"checkpoint state {path}: {type(obj).__name__} is not storable "
                    f"(use arrays, numbers, strings, bools, None, dicts and lists)")


def _decode(obj, arrays):
    if isinstance(obj, dict):
        if "__array__" in obj:
            return arrays[obj["__array__"]]
        if "__scalar__" in obj:
            return np.dtype(obj["__scalar__"]).type(obj["value"])
        return {k: _decode(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    return obj


def _payload(state) -> bytes:
    arrays = {}
    tree = _encode(state, arrays, "state")
    text = json.dumps(tree, allow_nan=True, separators=(",", ":"))
    buf = io.BytesIO()
    np.savez(buf, __tree__=np.frombuffer(text.encode(), dtype=np.uint8), **arrays)
    return buf.getvalue()


def _unpayload(data: bytes):
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {name: z[name] for name in z.files}
    text = arrays.pop("__tree__").tobytes().decode()
    return _decode(json.loads(text), arrays)


class Checkpoint:
    """``Checkpoint(directory, job_key, on_event=None, min_interval=0.0)``.

    ``save(state)`` every epoch (or, with ``min_interval`` > 0 seconds, ``maybe_save`` at
    most once per interval); ``load()`` -> the last saved state or None; ``remove()`` once
    the job's result is safely stored. ``on_event(kind, message)`` hears about checkpoints
    that were ignored (``checkpoint-corrupt``, ``checkpoint-foreign``) and resumes
    (``checkpoint-resumed``); every event is also kept in :attr:`events`.
    """

    def __init__(self, directory, job_key: str, on_event: Optional[Callable[[str, str], None]] = None,
                 min_interval: float = 0.0):
        if not isinstance(job_key, str) or not _KEY_RE.match(job_key):
            raise ValueError(f"job_key must be 1-128 characters of [0-9A-Za-z_-], got {job_key!r}")
        if isinstance(min_interval, bool) or not isinstance(min_interval, (int, float)) \
                or not min_interval >= 0:
            raise ValueError(f"min_interval must be a non-negative number of seconds, got {min_interval!r}")
        self.directory = os.fspath(directory)
        self.job_key = job_key
        self.on_event = on_event
        self.min_interval = float(min_interval)
        self.events: List[dict] = []
        self._last_save = time.monotonic()

    def __repr__(self):
        return f"Checkpoint({self.directory!r}, {self.job_key!r})"

    @property
    def path(self) -> str:
        return os.path.join(self.directory, self.job_key + SUFFIX)

    def note(self, kind, message):
        """Record an event (and pass it to ``on_event``)."""
        self.events.append({"kind": kind, "message": message})
        if self.on_event is not None:
            self.on_event(kind, message)
        else:
            _log.warning("%s: %s", kind, message)

    # --- writing ---------------------------------------------------------------------------
    def save(self, state) -> None:
        """Write ``state`` atomically (temporary file, fsync, rename)."""
        payload = _payload(state)
        envelope = {"job_key": self.job_key, "version": _version(),
                    "sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload)}
        os.makedirs(self.directory, exist_ok=True)
        tmp = os.path.join(self.directory, f".{self.job_key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(MAGIC)
                f.write(json.dumps(envelope, sort_keys=True).encode() + b"\n")
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        self._fsync_dir()
        self._last_save = time.monotonic()

    def maybe_save(self, state_fn) -> bool:
        """``save(state_fn())`` if ``min_interval`` seconds have passed since the last save
        (always when ``min_interval`` is 0). Returns whether it saved. A write that fails
        (disk full, a vanished directory) is reported as a ``checkpoint-write-failed`` event
        and the job goes on: losing a checkpoint must not lose the job."""
        if self.min_interval and time.monotonic() - self._last_save < self.min_interval:
            return False
        try:
            self.save(state_fn())
        except OSError as e:  # disk full, directory gone: the job goes on, without a checkpoint
            self.note("checkpoint-write-failed", f"{self.path}: {e.strerror or e}; the job continues")
            return False
        return True

    def _fsync_dir(self):
        try:
            fd = os.open(self.directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    # --- reading ---------------------------------------------------------------------------
    def load(self):
        """The last saved state, or None when there is none or it cannot be trusted."""
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        except OSError as e:
            self.note("checkpoint-corrupt", f"{self.path}: cannot read ({e}); starting over")
            return None
        problem, state = self._check(data)
        if problem is not None:
            kind, message = problem
            self.note(kind, f"{self.path}: {message}; ignored, starting over")
            return None
        return state

    def _check(self, data):
        if not data.startswith(MAGIC):
            return ("checkpoint-corrupt", "not a nas_eval checkpoint (bad magic)"), None
        head, sep, payload = data[len(MAGIC):].partition(b"\n")
        if not sep:
            return ("checkpoint-corrupt", "truncated header"), None
        try:
            env = json.loads(head.decode())
            key, version, digest, size = env["job_key"], env["version"], env["sha256"], env["size"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return ("checkpoint-corrupt", "unreadable header"), None
        if key != self.job_key:
            return ("checkpoint-foreign", f"belongs to job {key!r}, not {self.job_key!r}"), None
        if version != _version():
            return ("checkpoint-foreign", f"written by nas_eval {version!r}, this is {_version()!r}"), None
        if size != len(payload):
            return ("checkpoint-corrupt", f"truncated: {len(payload)} of {size} bytes"), None
        if hashlib.sha256(payload).hexdigest() != digest:
            return ("checkpoint-corrupt", "checksum mismatch"), None
        try:
            return None, _unpayload(payload)
        except Exception as e:  # a valid checksum over a payload we cannot parse
            return ("checkpoint-corrupt", f"unreadable payload ({type(e).__name__}: {e})"), None

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def remove(self) -> None:
        """Delete the checkpoint (and temporary files this job left behind)."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        for name in names:
            if name.startswith(f".{self.job_key}.") and name.endswith(".tmp"):
                try:
                    os.unlink(os.path.join(self.directory, name))
                except OSError:
                    pass
