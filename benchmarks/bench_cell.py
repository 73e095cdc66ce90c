#!/usr/bin/env python3
"""Training/evaluation throughput of the cell language model: nas_eval vs PyTorch (CPU).

Both sides train the *same* model (docs/design.md §3: architecture, V, d, B, T, identical initial
weights, no dropout, plain SGD with gradient-norm clipping over all parameters, tied
embedding/decoder, hidden state carried across steps) on the same token stream. The
PyTorch model is written here, from docs/design.md §3, vectorised the way a careful researcher
would (input projection ``x·W0[:d]`` for all T steps in one matmul, one fused
``F.linear`` decoder, ``torch.optim.SGD`` + ``clip_grad_norm_``).

How it measures
---------------
* Every implementation/variant runs in its own fresh worker subprocess with its own
  environment; the parent drives them in lock step, one step at a time, round robin
  (rotating who goes first), so slow drifts of the machine hit every side equally.
  Workers not stepping are blocked on a pipe. A short pause (``--gap``) precedes each
  step so that the idle threads of the side that just ran (OpenBLAS workers spin for
  ~0.1 s, libgomp for a while) do not steal cycles from the next one.
* Quiet guard (for small shared machines): the parent keeps idling while other processes
  use CPU, and repeats any timed call during which others (or hypervisor steal) used more
  than 0.02 s + 5 % of its wall time; after ``--patience`` seconds per configuration it
  keeps what it gets and flags the row NOISY. Each step's process CPU time / wall time
  (cores actually used) is recorded too.
* Before timing, each worker runs a correctness check from the common initial weights:
  evaluation loss, first-step training loss and all parameters after 3 steps are
  compared with nas_eval (tolerances: loss 1e-4 relative, parameters 2e-3 relative in
  norm). These 3 steps also serve as warm-up, followed by ``--warmup`` more.
* PyTorch is measured at its best: intra-op threads 1 and 2 (never more than the
  configuration's thread count) in a "tuned" environment (``OMP_WAIT_POLICY=PASSIVE``,
  ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_`` raised to 1 GiB / 4 GiB so the ~90 MB
  logits buffers are reused from the heap instead of being mmapped afresh every step),
  plus its plain default environment with the configuration's thread count. The best
  variant by median step time is reported; all variants are in ``--json``.
* nas_eval runs in the plain environment with ``nas_eval.set_num_threads(k)``.
* ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` (which force a slower kernel) are removed
  from every worker's environment unless ``--keep-openblas-env``; the kernel OpenBLAS
  picked (``openblas_info()['corename']``) is reported.
* The sgemm rate is measured by a probe worker (same environment as nas_eval) through the
  very OpenBLAS the core uses (scipy_openblas32 via ctypes, ``scipy_cblas_sgemm``, threads
  via ``scipy_openblas_set_num_threads``) at the decoder forward shape C(B·T × V) =
  H(B·T × d)·Eᵀ — before, during (one call per round, interleaved with the steps) and after
  the timed steps; the best rate counts. The sgemm-bound limit is
  ``sgemm_flops / (3·(8d² + 4nd² + 2dV))`` tokens/s. *% of limit (paired)* sets each timed
  step against the probe of its own round instead (median over the rounds): on a host whose
  speed drifts, the median step against the best probe measures the drift as well as the
  code; on a steady host the two agree.
* Peak memory: in each worker, RSS is read just before the model is built (libraries
  imported, data prepared); after the correctness check the peak-RSS counter is reset
  (``/proc/self/clear_refs``, after ``malloc_trim``) and the reported figure is
  ``VmHWM − RSS_before_model`` over the warm-up and timed steps: model state plus the
  training step's working memory, excluding interpreter/library baseline.

Usage::

    python benchmarks/bench_cell.py                       # all 12 configurations
    python benchmarks/bench_cell.py --n 8 --threads 2     # the three target rows
    python benchmarks/bench_cell.py --quick --d 64        # fewer steps
    python benchmarks/bench_cell.py --json - > out.json   # machine-readable (table to stderr)
    python benchmarks/bench_cell.py --isa avx2 generic    # as on machines without AVX-512
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

B, T, V = 64, 35, 10_000
LR, CLIP = 20.0, 0.25
EVAL_B, EVAL_T = 10, 35
CHECK_STEPS = 3
LOSS_RTOL, PARAM_RTOL = 1e-4, 2e-3  # parameters: float32 training at lr 20 amplifies rounding (see BENCHMARKS.md)
LOAD_WARN = 0.1  # CPU cores used by other processes during timing above which we warn
SEED = 0

ARCHS = {
    # DARTS-V2 recurrent genotype: all four ops, varied predecessors
    8: "0:sigmoid 1:relu 1:relu 1:identity 2:tanh 5:sigmoid 3:tanh 5:relu",
    2: "0:tanh 1:sigmoid",
}

# default (warm-up, timed steps, eval segments) per hidden size; --quick uses fewer
# d = 32: the main job's size (issue 20), on request only (--d 32)
STEPS = {32: (2, 40, 40), 64: (2, 30, 40), 256: (2, 12, 12), 850: (1, 5, 3)}
QUICK_STEPS = {32: (1, 10, 10), 64: (1, 8, 10), 256: (1, 4, 4), 850: (1, 2, 1)}

TUNED_ENV = {
    "OMP_WAIT_POLICY": "PASSIVE",
    "MALLOC_MMAP_THRESHOLD_": str(1 << 30),
    "MALLOC_TRIM_THRESHOLD_": str(1 << 32),
}
OPENBLAS_FORCING = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

# --isa LEVEL: what a machine of that level would run. nas_eval's kernels (NAS_EVAL_ISA),
# and the BLAS kernels of everything measured capped to the same instruction set: OpenBLAS
# (nas_eval's and the sgemm probe's, hence the limit) and PyTorch's ATen, MKL and oneDNN.
ISA_ENV = {
    "avx512": {},
    "avx2": {"OPENBLAS_CORETYPE": "Haswell", "ATEN_CPU_CAPABILITY": "avx2",
             "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "generic": {"OPENBLAS_CORETYPE": "Nehalem", "ATEN_CPU_CAPABILITY": "default",
                "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "ONEDNN_MAX_CPU_ISA": "SSE41"},
}


def fwd_flops_per_token(n, d, vocab=V):
    """Forward matmul FLOPs per token: W0 (2·2d·2d), n node matrices (2·d·2d), decoder 2dV."""
    return 8 * d * d + 4 * n * d * d + 2 * d * vocab


def train_flops_per_token(n, d, vocab=V):
    return 3 * fwd_flops_per_token(n, d, vocab)


# ------------------------------------------------------------------------------------------
# worker side
# ------------------------------------------------------------------------------------------

def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def _reset_peak_rss():
    """Reset VmHWM to the current RSS (Linux ≥ 4.0); False if not possible."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _mallinfo():
    try:
        import ctypes

        class MI2(ctypes.Structure):
            _fields_ = [(k, ctypes.c_size_t) for k in
                        "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = MI2
        m = libc.mallinfo2()
        return {"heap_mb": m.arena / 2**20, "mmapped_mb": m.hblkhd / 2**20, "mmapped_chunks": m.hblks}
    except (OSError, AttributeError):
        return {}


def token_stream(n_tokens, seed):
    import numpy as np
    return np.random.default_rng(seed).integers(0, V, size=n_tokens, dtype=np.int64).astype(np.int32)


def batchify(tokens, bsz):
    """(N,) -> (N // bsz, bsz), column j a contiguous slice (as nas_eval and pytorch examples)."""
    import numpy as np
    n = len(tokens) // bsz
    return np.ascontiguousarray(tokens[: n * bsz].reshape(bsz, n).T)


class SgemmSide:
    """The core's OpenBLAS (scipy_openblas32, loaded exactly as nas_eval loads it) driven
    through ctypes at the decoder's training GEMM shapes; buffers are kept between calls."""

    RM, N_, T_ = 101, 111, 112

    def __init__(self, spec):
        import ctypes
        import scipy_openblas32
        self.ctypes = ctypes
        self.lib = ctypes.CDLL(os.path.join(scipy_openblas32.get_lib_dir(),
                                            scipy_openblas32.get_library(fullname=True)),
                               mode=ctypes.RTLD_GLOBAL)
        self.lib.scipy_openblas_set_num_threads(ctypes.c_int(spec["threads"]))
        f = self.f = self.lib.scipy_cblas_sgemm
        f.restype = None
        f.argtypes = [ctypes.c_int] * 6 + [ctypes.c_float, ctypes.c_void_p, ctypes.c_int,
                                           ctypes.c_void_p, ctypes.c_int, ctypes.c_float,
                                           ctypes.c_void_p, ctypes.c_int]
        self.d = None

    def info(self):
        self.lib.scipy_openblas_get_corename.restype = self.ctypes.c_char_p
        self.lib.scipy_openblas_get_config.restype = self.ctypes.c_char_p
        return {"corename": self.lib.scipy_openblas_get_corename().decode(),
                "config": self.lib.scipy_openblas_get_config().decode(),
                "threads": self.lib.scipy_openblas_get_num_threads()}

    def _prepare(self, d):
        import numpy as np
        if self.d == d:
            return
        M = B * T
        rng = np.random.default_rng(1)
        H = rng.standard_normal((M, d), dtype=np.float32)
        E = rng.standard_normal((V, d), dtype=np.float32)
        G = rng.standard_normal((M, V), dtype=np.float32)
        N_, T_ = self.N_, self.T_
        # name: (transA, transB, m, n, k, A, lda, B, ldb, C)
        self.shapes = {
            "fwd": (N_, T_, M, V, d, H, d, E, d, np.empty((M, V), np.float32)),         # logits = H·Eᵀ
            "bwd_input": (N_, N_, M, d, V, G, V, E, d, np.empty((M, d), np.float32)),   # dH = dlogits·E
            "bwd_weight": (T_, N_, V, d, M, G, V, H, d, np.empty((V, d), np.float32)),  # dE = dlogitsᵀ·H
        }
        self.d = d
        for name in self.shapes:  # first touch, thread start-up
            self.one(name)

    def one(self, name):
        ta, tb, m, n, k, A, lda, Bm, ldb, C = self.shapes[name]
        t0 = time.perf_counter()
        self.f(self.RM, ta, tb, m, n, k, 1.0, A.ctypes.data, lda, Bm.ctypes.data, ldb, 0.0,
               C.ctypes.data, C.shape[1])
        dt = time.perf_counter() - t0
        return 2.0 * m * n * k / dt / 1e9

    def sgemm(self, d, reps, shapes=("fwd", "bwd_input", "bwd_weight")):
        """Best GFLOP/s over `reps` calls of each shape."""
        self._prepare(d)
        return {name: max(self.one(name) for _ in range(reps)) for name in shapes}


class NasSide:
    def __init__(self, spec):
        import nas_eval
        from nas_eval.engine.native import core
        self.nas_eval, self.core = nas_eval, core
        nas_eval.set_num_threads(spec["threads"])
        self.spec = spec

    def info(self):
        import numpy  # noqa: F401
        info = dict(self.core.openblas_info())
        info["threads"] = self.nas_eval.get_num_threads()
        if hasattr(self.nas_eval, "build_info"):
            info["build"] = self.nas_eval.build_info()
        info["nas_eval_file"] = self.nas_eval.__file__
        return info

    def build(self, arch, d, init_path):
        from nas_eval.space import Arch
        self.model = self.nas_eval.CellLM(Arch.parse(arch), vocab_size=V, hidden_size=d, seed=SEED)
        import numpy as np
        np.savez(init_path, **self.model.parameters())

    def step(self, tokens):
        return self.model.fit_steps(tokens, steps=1, batch_size=B, bptt=T, lr=LR, clip=CLIP)

    def evaluate(self, tokens):
        return self.model.loss(tokens, batch_size=EVAL_B, bptt=EVAL_T)

    def params(self):
        return self.model.parameters()


class TorchSide:
    def __init__(self, spec):
        import torch
        self.torch = torch
        torch.set_num_threads(spec["threads"])
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
        self.spec = spec

    def info(self):
        t = self.torch
        return {"torch": t.__version__, "threads": t.get_num_threads(),
                "mkldnn": t.backends.mkldnn.is_available(), "mkl": t.backends.mkl.is_available(),
                "parallel": t.__config__.parallel_info().splitlines()[:6]}

    def sgemm(self, d, reps):
        """GFLOP/s of torch.mm at the decoder forward shape (informational)."""
        torch = self.torch
        H = torch.randn(B * T, d)
        E = torch.randn(V, d)
        C = torch.empty(B * T, V)
        times = []
        for _ in range(reps + 1):
            t0 = time.perf_counter()
            torch.mm(H, E.t(), out=C)
            times.append(time.perf_counter() - t0)
        del H, E, C
        return {"fwd": 2.0 * B * T * V * d / min(times[1:]) / 1e9}

    def build(self, arch, d, init_path):
        import numpy as np
        torch = self.torch
        init = np.load(init_path)
        self.model = TorchCellLM(torch, arch, d, {k: init[k] for k in init.files})
        self.params_list = list(self.model.parameters())
        self.opt = torch.optim.SGD(self.params_list, lr=LR)
        self.hidden = None
        self.pos = 0
        self.data = None

    def step(self, tokens):
        torch = self.torch
        if self.data is None:
            self.data = torch.from_numpy(batchify(tokens, B).astype("int64"))
        if self.pos + T + 1 > len(self.data):  # wrap like nas_eval (run sized for whole segments)
            self.pos, self.hidden = 0, None
        inp = self.data[self.pos : self.pos + T]
        tgt = self.data[self.pos + 1 : self.pos + T + 1]
        self.pos += T
        if self.hidden is None:
            self.hidden = torch.zeros(B, self.model.d)
        self.opt.zero_grad(set_to_none=True)
        loss, h = self.model(inp, tgt, self.hidden)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params_list, CLIP)
        self.opt.step()
        self.hidden = h.detach()
        return loss.item()

    def evaluate(self, tokens):
        torch = self.torch
        data = torch.from_numpy(batchify(tokens, EVAL_B).astype("int64"))
        total, count = 0.0, 0
        with torch.inference_mode():
            h = torch.zeros(EVAL_B, self.model.d)
            for i in range(0, len(data) - 1, EVAL_T):
                seq = min(EVAL_T, len(data) - 1 - i)
                inp, tgt = data[i : i + seq], data[i + 1 : i + 1 + seq]
                loss, h = self.model(inp, tgt, h, reduction="sum")
                total += loss.item()
                count += tgt.numel()
        return total / count

    def params(self):
        return {k: v.detach().numpy().copy() for k, v in self.model.named_parameters()}


def TorchCellLM(torch, arch, d, init):
    """docs/design.md §3 cell LM in PyTorch; parameters named as nas_eval's."""
    import torch.nn.functional as F
    from torch import nn

    ops = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda x: x}
    nodes = [(int(p), ops[o]) for p, o in (tok.split(":") for tok in arch.split())]

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.d, self.n = d, len(nodes)
            self.embedding = nn.Parameter(torch.from_numpy(init["embedding"].copy()))
            self.W0 = nn.Parameter(torch.from_numpy(init["W0"].copy()))
            for i in range(1, self.n + 1):
                setattr(self, f"W{i}", nn.Parameter(torch.from_numpy(init[f"W{i}"].copy())))
            self.decoder_bias = nn.Parameter(torch.from_numpy(init["decoder_bias"].copy()))
            self.Ws = [getattr(self, f"W{i}") for i in range(1, self.n + 1)]

        def forward(self, inp, tgt, h, reduction="mean"):
            Tn, Bn = inp.shape
            d = self.d
            x = F.embedding(inp, self.embedding)                      # (T, B, d)
            xw = (x.reshape(Tn * Bn, d) @ self.W0[:d]).view(Tn, Bn, 2 * d)
            Wh = self.W0[d:]
            outs = []
            for t in range(Tn):
                ab = torch.addmm(xw[t], h, Wh)
                c = torch.sigmoid(ab[:, :d])
                s = h + c * (torch.tanh(ab[:, d:]) - h)
                states = [s]
                for (p, f), W in zip(nodes, self.Ws):
                    sp = states[p]
                    ab = sp @ W
                    c = torch.sigmoid(ab[:, :d])
                    states.append(sp + c * (f(ab[:, d:]) - sp))
                h = torch.stack(states[1:]).mean(0)
                outs.append(h)
            H = torch.stack(outs).view(Tn * Bn, d)
            logits = F.linear(H, self.embedding, self.decoder_bias)
            loss = F.cross_entropy(logits, tgt.reshape(-1), reduction=reduction)
            return loss, h

    return Model()


def worker_main(spec):
    """Line protocol: one JSON command per stdin line, one JSON reply per line on the original
    stdout (anything the libraries print goes to stderr)."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    rss_start = _status_kb("VmRSS")
    side = {"nas_eval": NasSide, "torch": TorchSide, "sgemm": SgemmSide}[spec["impl"]](spec)
    state = {"rss_import_kb": _status_kb("VmRSS"), "rss_start_kb": rss_start}

    def reply(obj):
        proto.write(json.dumps(obj) + "\n")

    reply({"ok": True, "info": side.info(), **state})
    tokens = eval_tokens = None
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        try:
            if op == "sgemm":
                reply({"ok": True, "gflops": side.sgemm(cmd["d"], cmd["reps"],
                                                        *([cmd["shapes"]] if "shapes" in cmd else []))})
            elif op == "setup":
                tokens = token_stream(cmd["n_tokens"], SEED)
                eval_tokens = token_stream(cmd["n_eval_tokens"], SEED + 1) if cmd["n_eval_tokens"] else None
                _reset_peak_rss()
                rss0 = _status_kb("VmRSS")
                side.build(cmd["arch"], cmd["d"], cmd["init_path"])
                state["rss_before_model_kb"] = rss0
                reply({"ok": True, "rss_before_model_kb": rss0,
                       "hwm_build_kb": _status_kb("VmHWM")})
            elif op == "check":
                eval_loss = side.evaluate(eval_tokens) if eval_tokens is not None else None
                losses = [side.step(tokens) for _ in range(CHECK_STEPS)]
                import numpy as np
                np.savez(cmd["path"], **side.params())
                reply({"ok": True, "eval_loss": eval_loss, "losses": losses})
            elif op == "window":
                import gc
                gc.collect()
                reset = _reset_peak_rss()
                reply({"ok": True, "reset": reset, "rss_kb": _status_kb("VmRSS")})
            elif op == "step":
                c0, t0 = time.process_time(), time.perf_counter()
                loss = side.step(tokens)
                dt, cpu = time.perf_counter() - t0, time.process_time() - c0
                reply({"ok": True, "time": dt, "cpu": cpu, "loss": loss})
            elif op == "eval":
                t0 = time.perf_counter()
                loss = side.evaluate(eval_tokens)
                dt = time.perf_counter() - t0
                reply({"ok": True, "time": dt, "loss": loss, "tokens": len(eval_tokens)})
            elif op == "mem":
                reply({"ok": True, "hwm_kb": _status_kb("VmHWM"), "rss_kb": _status_kb("VmRSS"),
                       "rss_before_model_kb": state.get("rss_before_model_kb"),
                       "malloc": _mallinfo()})
            elif op == "quit":
                reply({"ok": True})
                return
            else:
                reply({"ok": False, "error": f"unknown op {op}"})
        except Exception as exc:  # report, keep the protocol alive
            import traceback
            reply({"ok": False, "error": f"{type(exc).__name__}: {exc}",
                   "traceback": traceback.format_exc()})


# ------------------------------------------------------------------------------------------
# parent side
# ------------------------------------------------------------------------------------------

class Worker:
    def __init__(self, name, spec, env):
        self.name, self.spec = name, spec
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, bufsize=1)
        self.hello = self._read()

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.name} died (exit {self.proc.wait()})")
        msg = json.loads(line)
        if not msg.get("ok"):
            raise RuntimeError(f"worker {self.name}: {msg.get('error')}\n{msg.get('traceback', '')}")
        return msg

    def __call__(self, op, **kw):
        self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        try:
            self("quit")
        except Exception:
            pass
        try:
            self.proc.stdin.close()
        except Exception:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def base_env(keep_openblas_env):
    env = dict(os.environ)
    if not keep_openblas_env:
        for k in OPENBLAS_FORCING:
            env.pop(k, None)
    # our own tuning knobs must not leak in from the caller's shell into "plain" workers
    for k in list(TUNED_ENV) + ["OMP_NUM_THREADS", "MKL_NUM_THREADS", "GLIBC_TUNABLES"]:
        env.pop(k, None)
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(here)
    env["PYTHONPATH"] = repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def torch_variants(threads, spec=None):
    if spec:
        out = []
        for item in spec.split(","):
            kind, k = item.split(":")
            if kind not in ("plain", "tuned"):
                raise SystemExit(f"--torch-variants: kind must be plain or tuned, got {kind!r}")
            out.append((kind, int(k)))
        return out
    out = [("plain", threads)]
    out += [("tuned", k) for k in (1, 2) if k <= threads]
    return out


def machine_info():
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            key, _, val = line.partition(":")
            if key.strip() in ("Model name", "CPU family", "Model", "Core(s) per socket", "Socket(s)",
                               "Thread(s) per core", "L2 cache", "L3 cache", "Hypervisor vendor", "Flags"):
                info[key.strip()] = val.strip()
        flags = next((l for l in out.splitlines() if l.startswith("Flags")), "")
        info["avx512f"] = " avx512f" in flags
    except (OSError, subprocess.SubprocessError):
        pass
    info["env_openblas"] = {k: os.environ[k] for k in OPENBLAS_FORCING if k in os.environ}
    info["loadavg_at_start"] = os.getloadavg()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        git = lambda *a: subprocess.run(["git", "-C", repo, *a], capture_output=True, text=True,
                                        timeout=10).stdout.strip()
        info["git_commit"] = git("rev-parse", "HEAD") or None
        info["git_dirty"] = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def _cpu_snapshot(pids):
    """(wall, busy jiffies of the whole machine, steal jiffies, jiffies used by `pids`)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice
    busy = v[0] + v[1] + v[2] + v[5] + v[6]
    ours = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ours += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return time.perf_counter(), busy, v[7] if len(v) > 7 else 0, ours


def _proc_times():
    """{pid: (command, CPU seconds)} for every process we can read."""
    hz = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                raw = f.read()
            comm = raw[raw.index("(") + 1 : raw.rindex(")")]
            fields = raw.rsplit(")", 1)[1].split()
            out[int(pid)] = (comm, (int(fields[11]) + int(fields[12])) / hz)
        except (OSError, ValueError, IndexError):
            pass
    return out


def _busiest(before, after, ours, top=3):
    """The other processes that used the most CPU between two _proc_times() snapshots."""
    used = []
    for pid, (comm, t) in after.items():
        if pid in ours:
            continue
        dt = t - before.get(pid, (comm, 0.0))[1]
        if dt > 0.05:
            used.append((dt, comm))
    return [(c, t) for t, c in sorted(used, reverse=True)[:top]]


def foreign_load(before, after):
    """Average CPU cores used by processes other than ours, and steal, between two snapshots."""
    hz = os.sysconf("SC_CLK_TCK")
    wall = after[0] - before[0]
    other = ((after[1] - before[1]) - (after[3] - before[3])) / hz / wall
    steal = (after[2] - before[2]) / hz / wall
    return max(other, 0.0), steal


class QuietGuard:
    """Runs timed calls only while the rest of the machine is idle, and repeats a call that
    other processes (or the hypervisor, as steal) disturbed.

    Before each call it idles ``gap`` seconds (so the previous side's spinning threads go
    to sleep) and keeps idling while other processes use the CPU. A call during which
    other processes used more than ``0.02 s + 5 % of its wall time`` of CPU is discarded
    and repeated. After ``patience`` seconds of waiting and repeating (per configuration)
    it gives up being picky, keeps what it gets and counts those calls as noisy."""

    def __init__(self, pids, gap, patience):
        self.pids, self.gap = pids, gap
        self.deadline = time.time() + patience
        self.hz = os.sysconf("SC_CLK_TCK")
        self.discarded = self.noisy = self.accepted = 0
        self.waited = self.foreign_s = self.wall_s = 0.0

    def _foreign(self, a, b):
        """CPU seconds used by others (steal included) between two snapshots."""
        return ((b[1] - a[1]) + (b[2] - a[2]) - (b[3] - a[3])) / self.hz

    @staticmethod
    def allowed(wall):
        return 0.02 + 0.05 * wall

    def settle(self):
        if self.gap <= 0:
            return
        window = self.gap
        while True:
            a = _cpu_snapshot(self.pids)
            time.sleep(window)
            b = _cpu_snapshot(self.pids)
            if self._foreign(a, b) <= self.allowed(b[0] - a[0]) or time.time() > self.deadline:
                return
            self.waited += b[0] - a[0]
            window = 0.5

    def run(self, fn):
        while True:
            self.settle()
            a = _cpu_snapshot(self.pids)
            res = fn()
            b = _cpu_snapshot(self.pids)
            foreign, wall = self._foreign(a, b), b[0] - a[0]
            clean = foreign <= self.allowed(wall)
            if clean or time.time() > self.deadline:
                self.accepted += 1
                self.noisy += not clean
                self.foreign_s += foreign
                self.wall_s += wall
                return res
            self.discarded += 1

    def summary(self):
        return {"accepted": self.accepted, "discarded": self.discarded, "noisy_kept": self.noisy,
                "waited_s": self.waited,
                # tick accounting makes this uncertain by ~0.05 cores; negative values read as 0
                "foreign_cores_in_timed_calls": max(self.foreign_s / self.wall_s, 0.0) if self.wall_s else 0.0}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def rel_norm(a, b):
    import numpy as np
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-30))


def compare(nas_ck, nas_params_path, tch_ck, tch_params_path, init_path):
    import numpy as np
    pn, pt, p0 = np.load(nas_params_path), np.load(tch_params_path), np.load(init_path)
    loss_rel = abs(nas_ck["losses"][0] - tch_ck["losses"][0]) / abs(nas_ck["losses"][0])
    eval_rel = 0.0
    if nas_ck["eval_loss"] is not None:
        eval_rel = abs(nas_ck["eval_loss"] - tch_ck["eval_loss"]) / abs(nas_ck["eval_loss"])
    losses_rel = max(abs(a - b) / abs(a) for a, b in zip(nas_ck["losses"], tch_ck["losses"]))
    par_rel = {k: rel_norm(pn[k], pt[k]) for k in pn.files}
    upd_rel = {k: float(np.linalg.norm(pn[k].astype(np.float64) - pt[k])
                        / max(np.linalg.norm(pn[k].astype(np.float64) - p0[k]), 1e-30)) for k in pn.files}
    worst = max(par_rel, key=par_rel.get)
    ok = loss_rel <= LOSS_RTOL and eval_rel <= LOSS_RTOL and par_rel[worst] <= PARAM_RTOL
    return {"ok": bool(ok), "first_loss_nas": nas_ck["losses"][0], "first_loss_torch": tch_ck["losses"][0],
            "first_loss_rel": loss_rel, "eval_loss_rel": eval_rel, "losses_rel_max": losses_rel,
            "param_rel_max": par_rel[worst], "param_rel_worst": worst,
            "param_rel_of_update_max": max(upd_rel.values())}


def summarise(times):
    return {"n": len(times), "min_s": min(times), "median_s": statistics.median(times),
            "max_s": max(times), "tok_s_best": B * T / min(times),
            "tok_s_median": B * T / statistics.median(times), "times_s": times}


def run_config(n, d, threads, args, env0, tmp):
    warmup, steps, eval_segs = (QUICK_STEPS if args.quick else STEPS)[d]
    if args.steps:
        steps = args.steps
    if args.warmup is not None:
        warmup = args.warmup
    if args.eval_segments is not None:
        eval_segs = args.eval_segments
    arch = ARCHS[n]
    # whole segments only; both sides wrap to the start (hidden state reset) if a repeated
    # step runs past the end, as nas_eval does at an epoch boundary
    n_tokens = B * (T * (CHECK_STEPS + warmup + steps + 8) + 1)
    n_eval_tokens = EVAL_B * (EVAL_T * eval_segs + 1) if eval_segs > 0 else 0
    init_path = os.path.join(tmp, f"init_n{n}_d{d}_t{threads}.npz")

    loadavg_start = os.getloadavg()
    log(f"\n== n={n} d={d} threads={threads}: warm-up {CHECK_STEPS}+{warmup}, timed {steps} steps, "
        f"eval {eval_segs}x{EVAL_T}x{EVAL_B} tokens")
    workers, sgw = {}, None
    try:
        workers["nas_eval"] = Worker("nas_eval", {"impl": "nas_eval", "threads": threads}, env0)
        for kind, k in torch_variants(threads, args.torch_variants):
            env = dict(env0)
            if kind == "tuned":
                env.update(TUNED_ENV)
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(k)
            name = f"torch-{kind}-{k}t"
            workers[name] = Worker(name, {"impl": "torch", "threads": k}, env)
        nasw = workers["nas_eval"]
        sgw = Worker("sgemm", {"impl": "sgemm", "threads": threads}, env0)
        if sgw.hello["info"]["corename"] != nasw.hello["info"]["corename"]:
            log(f"   WARNING: sgemm worker's OpenBLAS core {sgw.hello['info']['corename']} differs "
                f"from nas_eval's {nasw.hello['info']['corename']}")
        pids = [os.getpid(), sgw.proc.pid] + [w.proc.pid for w in workers.values()]
        guard = QuietGuard(pids, args.gap, args.patience)
        sg = guard.run(lambda: sgw("sgemm", d=d, reps=args.sgemm_reps))["gflops"]
        sg_fwd = [sg["fwd"]]
        sg_round = []  # one probe per timed round, right after that round's steps
        tsg = {name: w("sgemm", d=d, reps=args.sgemm_reps)["gflops"]
               for name, w in workers.items() if name != "nas_eval"}
        log(f"   OpenBLAS core {nasw.hello['info']['corename']} ({nasw.hello['info']['threads']} threads): "
            f"sgemm at decoder shapes (before steps) fwd {sg['fwd']:.1f}, dH {sg['bwd_input']:.1f}, "
            f"dE {sg['bwd_weight']:.1f} GFLOP/s; torch.mm fwd: "
            + ", ".join(f"{k} {v['fwd']:.1f}" for k, v in tsg.items()))
        setup = {}
        setup["nas_eval"] = nasw("setup", arch=arch, d=d, init_path=init_path,
                                 n_tokens=n_tokens, n_eval_tokens=n_eval_tokens)
        for name, w in workers.items():
            if name != "nas_eval":
                setup[name] = w("setup", arch=arch, d=d, init_path=init_path,
                                n_tokens=n_tokens, n_eval_tokens=n_eval_tokens)
        # correctness
        cks, checks = {}, {}
        for name, w in workers.items():
            cks[name] = w("check", path=os.path.join(tmp, f"ck_{name}.npz"))
        for name in workers:
            if name == "nas_eval":
                continue
            c = compare(cks["nas_eval"], os.path.join(tmp, "ck_nas_eval.npz"), cks[name],
                        os.path.join(tmp, f"ck_{name}.npz"), init_path)
            checks[name] = c
            log(f"   check {name}: {'PASS' if c['ok'] else 'FAIL'}  first-step loss nas_eval "
                f"{c['first_loss_nas']:.6f} vs torch {c['first_loss_torch']:.6f} (rel {c['first_loss_rel']:.1e}), "
                f"eval loss rel {c['eval_loss_rel']:.1e}, params after {CHECK_STEPS} steps rel "
                f"{c['param_rel_max']:.1e} ({c['param_rel_worst']}; {c['param_rel_of_update_max']:.1e} of the update)")
        for w in workers.values():
            w("window")
        names = list(workers)
        times = {k: [] for k in names}
        cpus = {k: [] for k in names}
        losses = {k: [] for k in names}
        procs0 = _proc_times()
        snap0 = _cpu_snapshot(pids)
        for r in range(warmup + steps):
            order = names[r % len(names):] + names[: r % len(names)]
            for name in order:
                if r < warmup:
                    time.sleep(args.gap)
                    workers[name]("step")
                    continue
                res = guard.run(lambda: workers[name]("step"))
                times[name].append(res["time"])
                cpus[name].append(res["cpu"])
                losses[name].append(res["loss"])
            if r >= warmup:  # the sgemm rate, sampled through the run like the steps
                sg_fwd.append(guard.run(lambda: sgw("sgemm", d=d, reps=1, shapes=["fwd"]))["gflops"]["fwd"])
                sg_round.append(sg_fwd[-1])
        load_train = foreign_load(snap0, _cpu_snapshot(pids))
        busiest = _busiest(procs0, _proc_times(), set(pids))
        sg_after = guard.run(lambda: sgw("sgemm", d=d, reps=args.sgemm_reps))["gflops"]
        sg_fwd.append(sg_after["fwd"])
        for k in sg:
            sg[k] = max(sg[k], sg_after[k])
        sg["fwd"] = max(sg_fwd)
        sg["fwd_median"] = statistics.median(sg_fwd)
        sg["fwd_samples"] = len(sg_fwd)
        mem = {name: w("mem") for name, w in workers.items()}
        etimes = {k: [] for k in names}
        eloss = {}
        for r in range(args.eval_reps if eval_segs > 0 else 0):
            order = names[r % len(names):] + names[: r % len(names)]
            for name in order:
                res = guard.run(lambda: workers[name]("eval"))
                etimes[name].append(res["time"])
                eloss[name] = res["loss"]
    finally:
        for w in list(workers.values()) + ([sgw] if sgw is not None else []):
            w.close()

    quiet = guard.summary()
    log(f"   quiet guard: {quiet['accepted']} timed calls kept, {quiet['discarded']} discarded as disturbed "
        f"and repeated, {quiet['waited_s']:.0f} s waited for other processes; "
        f"other processes' CPU during kept calls {quiet['foreign_cores_in_timed_calls']:.3f} cores")
    if quiet["noisy_kept"]:
        log(f"   WARNING: patience ran out: {quiet['noisy_kept']} disturbed calls were kept")
    if load_train[0] > LOAD_WARN or load_train[1] > LOAD_WARN:
        log(f"   note: other processes used {load_train[0]:.2f} cores (steal {load_train[1]:.2f}) "
            "on average during the timed loop (waits included)"
            + (f"; busiest: {', '.join(f'{c} ({t:.1f} s)' for c, t in busiest)}" if busiest else "")
            + " (the rest: processes that started and ended meanwhile)")
    log(f"   sgemm fwd through the run: best {sg['fwd']:.1f}, median {sg['fwd_median']:.1f} GFLOP/s "
        f"({sg['fwd_samples']} samples)")
    tpt = train_flops_per_token(n, d)
    limit = sg["fwd"] * 1e9 / tpt
    res = {"n": n, "d": d, "threads": threads, "B": B, "T": T, "V": V, "arch": ARCHS[n],
           "train_flops_per_token": tpt, "sgemm_gflops": sg, "torch_mm_gflops": tsg,
           "sgemm_limit_tok_s": limit, "openblas": nasw.hello["info"], "impl": {}, "checks": checks,
           "warmup": CHECK_STEPS + warmup, "steps": steps,
           "foreign_cores": load_train[0], "steal_cores": load_train[1],
           "foreign_busiest": busiest, "quiet_guard": quiet,
           "loadavg_start": loadavg_start, "loadavg_end": os.getloadavg()}
    for name in names:
        s = summarise(times[name])
        s["gflops_median"] = s["tok_s_median"] * tpt / 1e9
        s["cores_used"] = sum(cpus[name]) / sum(times[name])  # process CPU time / wall, timed steps
        s["frac_of_limit_median"] = s["tok_s_median"] / limit
        s["frac_of_limit_best"] = s["tok_s_best"] / limit
        # each step against the probe of its own round: on a host whose speed drifts (the
        # probe's best and median apart), the median step against the best probe measures
        # the drift as much as the code; this pairs like with like
        s["frac_of_limit_paired"] = statistics.median(
            B * T / t / (g * 1e9 / tpt) for t, g in zip(times[name], sg_round))
        m = mem[name]
        s["peak_mb"] = (m["hwm_kb"] - m["rss_before_model_kb"]) / 1024
        s["rss_before_model_mb"] = m["rss_before_model_kb"] / 1024
        s["malloc"] = m["malloc"]
        s["info"] = workers[name].hello["info"]
        s["losses"] = losses[name]
        if etimes[name]:
            s["eval_tokens"] = n_eval_tokens
            s["eval_tok_s_best"] = n_eval_tokens / min(etimes[name])
            s["eval_tok_s_median"] = n_eval_tokens / statistics.median(etimes[name])
            s["eval_gflops_median"] = s["eval_tok_s_median"] * fwd_flops_per_token(n, d) / 1e9
            s["eval_loss"] = eloss[name]
            s["eval_times_s"] = etimes[name]
        res["impl"][name] = s
    tnames = [k for k in names if k != "nas_eval"]
    best = min(tnames, key=lambda k: res["impl"][k]["median_s"])
    res["torch_best"] = best
    res["speedup_median"] = res["impl"][best]["median_s"] / res["impl"]["nas_eval"]["median_s"]
    res["speedup_best"] = res["impl"][best]["min_s"] / res["impl"]["nas_eval"]["min_s"]
    if etimes["nas_eval"]:
        ebest = max(tnames, key=lambda k: res["impl"][k]["eval_tok_s_median"])
        res["torch_eval_best"] = ebest
        res["eval_speedup_median"] = (res["impl"]["nas_eval"]["eval_tok_s_median"]
                                      / res["impl"][ebest]["eval_tok_s_median"])
    for name in names:
        s = res["impl"][name]
        log(f"   {name:16s} step min {s['min_s']*1e3:8.1f} ms  median {s['median_s']*1e3:8.1f} ms  "
            f"{s['tok_s_median']:9.0f} tok/s  {s['gflops_median']:6.1f} GFLOP/s  "
            f"{100*s['frac_of_limit_median']:5.1f}% of limit ({100*s['frac_of_limit_paired']:.1f}% paired)  {s['cores_used']:.2f} cores  peak {s['peak_mb']:7.1f} MB "
            f"(mmapped now {s['malloc'].get('mmapped_mb', float('nan')):.0f})"
            + (f"  eval {s['eval_tok_s_median']:8.0f} tok/s" if "eval_tok_s_median" in s else ""))
    return res


TABLE_HEAD = ("| n | d | thr | sgemm GFLOP/s (torch.mm) | limit tok/s | nas_eval tok/s (best / median) | nas GFLOP/s | "
              "nas % limit (paired) | best PyTorch | PyTorch tok/s (best / median) | PyTorch % limit | "
              "speed-up (median) | peak MB nas / torch | eval tok/s nas / torch (×) | check | others' CPU (cores) / repeats |")


def table(results):
    lines = [TABLE_HEAD, "|" + "---|" * (TABLE_HEAD.count("|") - 1)]
    for r in results:
        a, t = r["impl"]["nas_eval"], r["impl"][r["torch_best"]]
        ev = "–"
        if "eval_speedup_median" in r:
            ev = (f"{a['eval_tok_s_median']:.0f} / {r['impl'][r['torch_eval_best']]['eval_tok_s_median']:.0f}"
                  f" ({r['eval_speedup_median']:.2f}×)")
        ok = all(c["ok"] for c in r["checks"].values())
        lines.append(
            f"| {r['n']} | {r['d']} | {r['threads']} | {r['sgemm_gflops']['fwd']:.0f} "
            f"({max(v['fwd'] for v in r['torch_mm_gflops'].values()):.0f}) | "
            f"{r['sgemm_limit_tok_s']:.0f} | {a['tok_s_best']:.0f} / {a['tok_s_median']:.0f} | "
            f"{a['gflops_median']:.1f} | {100*a['frac_of_limit_median']:.0f}% ({100*a['frac_of_limit_paired']:.0f}%) | "
            f"{r['torch_best']} | "
            f"{t['tok_s_best']:.0f} / {t['tok_s_median']:.0f} | {100*t['frac_of_limit_median']:.0f}% | "
            f"{r['speedup_median']:.2f}× | {a['peak_mb']:.0f} / {t['peak_mb']:.0f} | {ev} | "
            f"{'pass' if ok else 'FAIL'} | {r['quiet_guard']['foreign_cores_in_timed_calls']:.3f} / "
            f"{r['quiet_guard']['discarded']}{' NOISY' if r['quiet_guard']['noisy_kept'] else ''} |")
    return "\n".join(lines)


def result_doc(machine, args, elapsed, results, partial=False):
    return {"machine": machine, "openblas_env_removed": not args.keep_openblas_env,
            "tuned_env": TUNED_ENV, "gap_s": args.gap, "patience_s": args.patience,
            "argv": sys.argv[1:], "elapsed_s": elapsed, "partial": partial,
            "command": " ".join(["python", os.path.relpath(os.path.abspath(__file__))] + sys.argv[1:]),
            "results": results}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, nargs="+", default=[2, 8], choices=sorted(ARCHS))
    ap.add_argument("--d", type=int, nargs="+", default=[64, 256, 850], choices=sorted(STEPS))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, help="timed steps per implementation (default: by d)")
    ap.add_argument("--warmup", type=int, help="extra untimed steps after the 3 check steps")
    ap.add_argument("--quick", action="store_true", help="fewer steps (rough numbers)")
    ap.add_argument("--eval-segments", type=int,
                    help=f"evaluate() stream length in {EVAL_T}-token windows (0: skip evaluate)")
    ap.add_argument("--eval-reps", type=int, default=3, help="timed evaluate() calls per implementation")
    ap.add_argument("--sgemm-reps", type=int, default=5)
    ap.add_argument("--gap", type=float, default=0.12,
                    help="seconds of idle before each timed step, so the previous side's spinning "
                         "threads have gone to sleep (default 0.12)")
    ap.add_argument("--torch-variants",
                    help="comma list of KIND:THREADS, KIND plain|tuned (default: plain:<thr>, tuned:1, tuned:2 "
                         "up to the configuration's threads)")
    ap.add_argument("--patience", type=float, default=300, metavar="SECONDS",
                    help="per configuration, how long to wait for / repeat around other processes' "
                         "CPU use before accepting disturbed timings (flagged NOISY; default 300)")
    ap.add_argument("--keep-openblas-env", action="store_true",
                    help="pass OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE to the workers (default: removed)")
    ap.add_argument("--isa", nargs="+", choices=sorted(ISA_ENV),
                    help="instruction-set levels to run the configurations at, one table each (default: "
                         "the machine's best, nothing forced); a lower level forces nas_eval's kernels "
                         "(NAS_EVAL_ISA) and caps OpenBLAS, ATen, MKL and oneDNN to it (ISA_ENV)")
    ap.add_argument("--json", metavar="PATH", nargs="?", const="-",
                    help="write results as JSON to PATH ('-' or no value: stdout, table to stderr)")
    args = ap.parse_args(argv)
    if args.worker:
        return worker_main(json.loads(args.worker))

    machine = machine_info()
    env0 = base_env(args.keep_openblas_env)
    log(f"machine: {machine.get('Model name')} — {machine['cpus']} CPUs; python {machine['python']}; "
        f"nas_eval at {machine.get('git_commit', '?')}{' (dirty tree)' if machine.get('git_dirty') else ''}")
    if machine["env_openblas"]:
        log(f"shell has {machine['env_openblas']}: "
            + ("kept for workers (--keep-openblas-env)" if args.keep_openblas_env
               else "removed from the workers' environment (--keep-openblas-env keeps them)"))
    levels = args.isa or [None]
    configs = [(lv, n, d, k) for lv in levels for n in args.n for d in args.d for k in args.threads]
    t_start = time.time()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_cell_") as tmp:
        for lv, n, d, k in configs:
            env = dict(env0)
            if lv:
                env.update(ISA_ENV[lv], NAS_EVAL_ISA=lv)
            results.append(run_config(n, d, k, args, env, tmp))
            results[-1]["isa"] = lv or results[-1]["impl"]["nas_eval"]["info"].get("build", {}).get("isa")
            results[-1]["isa_env"] = ISA_ENV[lv] if lv else {}
            log(table(results[-1:]).splitlines()[-1])
            if args.json and args.json != "-":  # keep what is done if the run is cut short
                with open(args.json, "w") as f:
                    json.dump(result_doc(machine, args, time.time() - t_start, results,
                                         partial=len(results) < len(configs)), f, indent=1)
    elapsed = time.time() - t_start
    out = result_doc(machine, args, elapsed, results)
    texts = []
    for lv in levels:
        rows = [r for r in results if lv is None or r["isa"] == lv]
        cores = {r["openblas"]["corename"] for r in rows}
        texts.append(f"ISA {rows[0]['isa'] if rows else lv}"
                     f"{' (forced: ' + ', '.join(f'{k}={v}' for k, v in ISA_ENV[lv].items()) + ')' if lv and ISA_ENV[lv] else ''}; "
                     f"OpenBLAS core: {', '.join(sorted(cores))}; B={B} T={T} V={V}; "
                     f"limit = sgemm(fwd decoder shape) / (3·(8d²+4nd²+2dV)); "
                     f"speed-up = best PyTorch median step / nas_eval median step\n" + table(rows))
    text = "\n\n".join(texts) + f"\n({elapsed:.0f} s)"
    if args.json:
        if args.json == "-":
            json.dump(out, sys.stdout, indent=1)
            sys.stdout.write("\n")
            log(text)
        else:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)
            print(text)
    else:
        print(text)
    if not all(c["ok"] for r in results for c in r["checks"].values()):
        log("CORRECTNESS CHECK FAILED for at least one configuration (see 'check' above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
