"""Property-based fuzzing (hypothesis) of the input surfaces (issue 13): the architecture
parser, the study settings / TOML loader, the corpus reader, and the C entry points'
argument checks. Each property: any input either works or raises a clean, documented
exception (never a crash, a hang, another exception type, or a silent NaN/wrap).

CI runs 100 examples per target (``NAS_EVAL_FUZZ_EXAMPLES``);
``benchmarks/fuzz_campaign.py`` runs the same properties for >= 1M inputs each."""
import math
import os
import tempfile

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import nas_eval  # noqa: E402
from nas_eval import Arch, SearchSpace, datasets  # noqa: E402
from nas_eval.spec import StudySpec  # noqa: E402

EXAMPLES = int(os.environ.get("NAS_EVAL_FUZZ_EXAMPLES", "100"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=list(HealthCheck), derandomize=os.environ.get("NAS_EVAL_FUZZ_RANDOM") is None)
OPS = ["tanh", "relu", "sigmoid", "identity"]

# --- the architecture parser ------------------------------------------------------------------
node = st.tuples(st.integers(-3, 12), st.sampled_from(OPS + ["", "foo", "TANH", "tanh ", "relu:"]))
arch_text = st.one_of(
    st.text(max_size=40),
    st.lists(node, max_size=10).map(lambda ns: " ".join(f"{p}:{o}" for p, o in ns)),
    st.lists(node, max_size=10).map(lambda ns: ",".join(f"{p}:{o}" for p, o in ns)),
)


def attempt(call, valid=None, what="input", errors=ValueError):
    """``call()``'s result, or ``REFUSED`` when it raised one of ``errors``: a clean refusal,
    which must carry a message or, when the property knows whether its input is ``valid``, must
    refuse only an invalid one (and then a result must come only from a valid one)."""
    try:
        out = call()
    except errors as e:
        if valid is None:
            assert str(e)
        else:
            assert not valid, f"valid {what} refused: {e}"
        return REFUSED
    assert valid is None or valid, f"invalid {what} accepted"
    return out


REFUSED = object()


def check_arch_text(text):
    arch = attempt(lambda: Arch.parse(text))
    if arch is REFUSED:
        return "error"
    again = Arch.parse(str(arch))  # the canonical form parses back to the same cell
    assert again == arch and str(again) == str(arch)
    assert 1 <= arch.n_nodes and arch in SearchSpace(arch.n_nodes) if arch.n_nodes <= 4 else True
    return "ok"


@FUZZ
@given(arch_text)
def test_fuzz_arch_parser(text):
    check_arch_text(text)


def check_arch_non_string(obj):
    try:
        Arch.parse(obj)
    except ValueError:
        return "error"
    raise AssertionError(f"accepted {obj!r}")


@FUZZ
@given(st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=8), st.lists(st.integers(), max_size=3)))
def test_fuzz_arch_parser_non_strings(obj):
    check_arch_non_string(obj)


# --- the study settings and the TOML loader -----------------------------------------------------
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-5, 40), st.floats(allow_nan=True, allow_infinity=True),
                        st.text(max_size=6), st.sampled_from(["smoke", "tiny", "ws-random", "random", "node", "ptb"]))
json_value = st.recursive(json_scalar, lambda c: st.one_of(st.lists(c, max_size=4),
                                                             st.dictionaries(st.text(max_size=6), c, max_size=4)),
                          max_leaves=10)
KEYS = ["name", "n_nodes", "corpus", "policies", "seeds", "train_seed", "gt_seeds", "ws_seeds", "ws_eval_epochs",
        "sharing", "sharing_fixed", "sharing_gt_seeds", "sharing_ws_seeds", "train", "search", "policy_options",
        "bogus"]
TRAIN_KEYS = ["preset", "epochs", "lr", "hidden_size", "bptt", "bptt_mode", "dropout", "asgd", "bogus", "batch_size"]
train_table = st.dictionaries(st.sampled_from(TRAIN_KEYS), json_value, max_size=4)
settings_dict = st.dictionaries(st.sampled_from(KEYS), st.one_of(json_value, train_table), max_size=6)


def check_settings(d):
    spec = attempt(lambda: StudySpec.from_dict(d))
    if spec is REFUSED:
        return "error"
    assert StudySpec.from_dict(spec.to_dict()) == spec  # what it accepts round-trips
    return "ok"


@FUZZ
@given(settings_dict)
def test_fuzz_study_settings(d):
    check_settings(d)


def _toml_lines(d):
    out = []
    for k, v in d.items():
        if isinstance(v, bool):
            out.append(f"{k} = {'true' if v else 'false'}")
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out.append(f"{k} = {v!r}")
        elif isinstance(v, str):
            out.append(f"{k} = {v!r}".replace("'", '"'))
        elif isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
            out.append(f"{k} = {v!r}")
    return out


toml_text = st.one_of(st.text(max_size=80),
                      settings_dict.map(lambda d: "\n".join(_toml_lines(d))),
                      st.tuples(st.sampled_from(["", 'preset = "smoke"\n', 'preset = "nope"\n', "preset = 3\n"]),
                                settings_dict).map(lambda t: t[0] + "\n".join(_toml_lines(t[1]))))


def check_toml(text, directory):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "skipped"  # a lone surrogate: no file can hold it
    path = os.path.join(directory, "study.toml")
    with open(path, "w", encoding="utf-8", errors="surrogatepass") as f:
        f.write(text)
    # tomllib.TOMLDecodeError is a ValueError
    return "error" if attempt(lambda: StudySpec.from_toml(path)) is REFUSED else "ok"


@FUZZ
@given(toml_text)
def test_fuzz_toml_loader(text):
    with tempfile.TemporaryDirectory() as d:
        check_toml(text, d)


# --- the corpus reader -------------------------------------------------------------------------------
corpus_text = st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
                        st.lists(st.sampled_from(["a", "b", "<unk>", "\n", " ", "\t", "<eos>", "é"]), max_size=60).map("".join))


def check_corpus(texts, directory):
    for split, text in zip(("train", "valid", "test"), texts):
        with open(os.path.join(directory, f"{split}.txt"), "w", encoding="utf-8") as f:
            f.write(text)
    corpus = attempt(lambda: datasets.load(directory))
    if corpus is REFUSED:
        return "error"
    for split in ("train", "valid", "test"):
        ids = getattr(corpus, split)
        assert ids.ndim == 1 and np.issubdtype(ids.dtype, np.integer)
        assert ids.size == 0 or (ids.min() >= 0 and ids.max() < corpus.vocab_size)
    return "ok"


@FUZZ
@given(st.tuples(corpus_text, corpus_text, corpus_text))
def test_fuzz_corpus_reader(texts):
    with tempfile.TemporaryDirectory() as d:
        check_corpus(texts, d)


synthetic_spec = st.one_of(
    st.text(max_size=30).map(lambda t: "synthetic:" + t),
    st.dictionaries(st.sampled_from(["vocab_size", "train_tokens", "valid_tokens", "test_tokens", "seed", "order",
                                     "branching", "bogus"]),
                    st.one_of(st.integers(-3, 60).map(str), st.sampled_from(["x", "", "1.5", "0x10"])), max_size=4)
    .map(lambda d: "synthetic:" + ",".join(f"{k}={v}" for k, v in d.items())),
)


def check_synthetic_spec(spec):
    c = attempt(lambda: datasets.from_spec(spec))
    if c is REFUSED:
        return "error"
    assert c.train.size == 0 or c.train.max() < c.vocab_size
    return "ok"


@FUZZ
@given(synthetic_spec)
def test_fuzz_corpus_spec(spec):
    check_synthetic_spec(spec)


# --- the C entry points ---------------------------------------------------------------------------
V, D = 13, 4
DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32, np.uint64, np.float32, np.float64, np.bool_]


@st.composite
def token_arrays(draw):
    dtype = draw(st.sampled_from(DTYPES))
    ndim = draw(st.sampled_from([0, 1, 2, 2, 2, 3]))
    shape = tuple(draw(st.integers(0, 5)) for _ in range(ndim))
    n = int(np.prod(shape)) if shape else 1
    if np.issubdtype(dtype, np.floating):
        vals = draw(st.lists(st.sampled_from([0.0, 1.0, 2.5, -1.0, np.nan, np.inf, 12.0, 13.0, 2.0**33]), min_size=n, max_size=n))
    elif dtype is np.bool_:
        vals = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    else:
        info = np.iinfo(dtype)
        vals = draw(st.lists(st.one_of(st.integers(0, V - 1), st.integers(int(info.min), int(info.max)),
                                       st.sampled_from([V, -1, 2**31, 2**32 + 1])), min_size=n, max_size=n))
        vals = [min(max(v, int(info.min)), int(info.max)) for v in vals]
    arr = np.array(vals, dtype=dtype).reshape(shape)
    if ndim == 2 and draw(st.booleans()) and arr.shape[1] > 1:
        arr = np.repeat(arr, 2, axis=1)[:, ::2]  # a strided view of the same values
    if draw(st.booleans()) and arr.ndim == 2 and arr.shape[0] and arr.shape[1]:
        arr = np.asfortranarray(arr)
    return arr


floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 1e-3, -1.0]))
hidden = st.one_of(st.none(), st.tuples(st.integers(0, 6), st.integers(0, 6), st.sampled_from([np.float32, np.float64, np.int32]),
                                        st.sampled_from([0.0, 1.0, np.nan, np.inf])))


@pytest.fixture(scope="module")
def model():
    from nas_eval.engine import CellLM
    return CellLM("0:tanh 1:relu", V, D, seed=0)


def check_step(model, inputs, targets, h, tar, ar, same):
    if same:
        targets = inputs  # aliasing: the same buffer as inputs and targets
    if h is not None:
        b, d, dt, fill = h
        h = np.full((b, d), fill).astype(dt)
    valid = (isinstance(inputs, np.ndarray) and inputs.ndim == 2 and inputs.shape == np.shape(targets)
             and inputs.size > 0 and np.issubdtype(inputs.dtype, np.integer) and np.issubdtype(targets.dtype, np.integer)
             and inputs.min() >= 0 and inputs.max() < V and targets.min() >= 0 and targets.max() < V
             and all(math.isfinite(x) and 0 <= x <= 1e6 for x in (tar, ar))
             and (h is None or (h.shape == (inputs.shape[1], D) and np.isfinite(h).all())))
    out = attempt(lambda: model.loss_and_grad(inputs, targets, hidden=h, tar=tar, ar=ar), valid)
    if out is REFUSED:
        return "error"
    loss, _, h1 = out
    assert math.isfinite(loss) and h1.shape == (inputs.shape[1], D)
    return "ok"


@FUZZ
@given(token_arrays(), token_arrays(), hidden, floats, floats, st.booleans())
def test_fuzz_c_step_arguments(model, inputs, targets, h, tar, ar, same):
    check_step(model, inputs, targets, h, tar, ar, same)


def test_campaign_finding_a_huge_tar_is_refused_not_an_infinite_loss(model):
    """benchmarks/fuzz_atheris.py, c_step: tar = 1.3e291 (finite) overflowed the penalty and
    loss_and_grad returned an infinite loss without a word."""
    inputs = np.array([[5, 8, 5], [5, 5, 5], [5, 5, 5]], dtype=np.int8)
    targets = np.array([[8, 8, 5], [5, 5, 5], [5, 5, 5]], dtype=np.uint32)
    with pytest.raises(ValueError, match="tar must be at most 1e\\+06.*overflow"):
        model.loss_and_grad(inputs, targets, tar=1.3156173915389996e+291)
    loss, _, _ = model.loss_and_grad(inputs, targets, tar=1e6)  # the largest allowed is finite here
    assert math.isfinite(loss)


def test_campaign_finding_a_bad_id_in_the_dropped_tail_is_refused(model):
    """benchmarks/fuzz_atheris.py, c_evaluate: id 13 (vocabulary 13) in the tail that
    batchify drops was accepted; a stream with a bad id is bad data wherever the id sits."""
    tokens = np.array([0, 0, 0, 0, 13], dtype=np.uint8)
    with pytest.raises(ValueError, match="token id 13 is outside the vocabulary"):
        model.loss(tokens, 2, 2**63)
    assert math.isfinite(model.loss(tokens[:4], 2, 2**63))


def evaluate_stream(tokens):
    """The token input of the evaluate property: big 2-D arrays flattened into a stream."""
    return tokens.ravel() if tokens.ndim == 2 and tokens.size > 40 else tokens


def check_loss(model, tokens, batch_size, bptt):
    valid = (tokens.ndim == 1 and np.issubdtype(tokens.dtype, np.integer) and tokens.size and tokens.min() >= 0
             and tokens.max() < V and isinstance(batch_size, int) and batch_size >= 1
             and tokens.size // batch_size >= 2 and isinstance(bptt, int) and bptt >= 1)
    loss = attempt(lambda: model.loss(tokens, batch_size, bptt), valid)
    if loss is REFUSED:
        return "error"
    assert math.isfinite(loss)
    return "ok"


@FUZZ
@given(token_arrays(), st.one_of(st.integers(-2, 8), st.sampled_from([2**31, 1.5, None])),
       st.one_of(st.integers(-2, 40), st.sampled_from([2**31 - 1, 2**31, 2**63, 0.5, None])))
def test_fuzz_c_evaluate_arguments(model, tokens, batch_size, bptt):
    check_loss(model, evaluate_stream(tokens), batch_size, bptt)


arch_tables = st.tuples(st.integers(1, 5), st.integers(-2, 6), st.integers(-1, 5), st.integers(-1, 6), st.integers(-1, 2),
                        st.sampled_from([np.int32, np.int64, np.float64, np.int16]), st.integers(0, 3))


def check_arch_table(spec):
    """The raw binding's architecture table (4, n): every field out of range, other dtypes,
    other shapes. Errors only (ValueError, or TypeError for a dtype NumPy will not cast
    safely). Every integer dtype is accepted: the binding checks each value in int64 before
    the cast (csrc/py_args.h's arg_ints, the contract of token ids), so nothing wraps."""
    from nas_eval.engine.native import core

    n, pred, op, mat, out, dtype, extra_rows = spec
    m = core.Model(V, D, 3, 4, 0)
    table = np.array([[min(pred, i) if pred >= 0 else pred for i in range(n)], [op] * n, [mat] * n, [out] * n])
    table = np.vstack([table] + [table[:1]] * (extra_rows - 3 if extra_rows > 3 else 0))[: max(extra_rows, 1) if extra_rows != 3 else 4]
    table = table.astype(dtype)
    seg = (np.arange(8) % V).reshape(4, 2).astype(np.int32)
    valid = (table.shape[0] == 4 and dtype in (np.int32, np.int16, np.int64) and 1 <= n <= 4 and 0 <= op < 4 and 0 <= mat < 3 and out != 0
             and pred >= 0)
    out = attempt(lambda: m.step(table, seg, seg), valid, f"table {table.tolist()}", (ValueError, TypeError))
    return "error" if out is REFUSED else "ok"


@FUZZ
@given(arch_tables)
def test_fuzz_c_arch_tables(spec):
    check_arch_table(spec)
