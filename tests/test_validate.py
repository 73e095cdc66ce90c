"""nas_eval._validate: the one wording of the dataclass configs' field checks (issue 18), and
the configs that use it keep their messages (each names the config, the field and the value)."""
import doctest
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import nas_eval
from nas_eval import _validate
from nas_eval._validate import Fields
from nas_eval.spec import StudySpec


@dataclass
class Box:
    v: Any = None


def refusal(check, value, *args, prefix="box option ", **kw):
    with pytest.raises(ValueError) as e:
        getattr(Fields(Box(value), prefix), check)("v", *args, **kw)
    return str(e.value)


def test_docstring_example():
    result = doctest.testmod(_validate)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("check, value, args, kw, message", [
    ("integer", 0, (1, 9), {}, "box option v must be an integer in 1..9, got 0"),
    ("integer", True, (0, 9), {}, "box option v must be an integer in 0..9, got True"),
    ("integer", 2.0, (1, 9), {}, "box option v must be an integer in 1..9, got 2.0"),
    ("integer", 0, (1,), {}, "box option v must be a positive integer, got 0"),
    ("integer", -1, (0,), {}, "box option v must be an integer >= 0, got -1"),
    ("integer", "x", (1, 9), {"optional": True}, "box option v must be an integer in 1..9 or None, got 'x'"),
    ("number", 0.0, (0.0, 1.0), {"lo_open": True}, "box option v must be a number in (0.0, 1.0], got 0.0"),
    ("number", 1, (0, 1), {"hi_open": True}, "box option v must be a number in [0, 1), got 1"),
    ("number", float("nan"), (0, 1), {}, "box option v must be a number in [0, 1], got nan"),
    ("number", False, (0, 1), {}, "box option v must be a number in [0, 1], got False"),
    ("choice", "c", (("a", "b"),), {}, "box option v must be one of ('a', 'b'), got 'c'"),
    ("boolean", 1, (), {}, "box option v must be true or false, got 1"),
])
def test_each_check_names_the_field_and_the_value(check, value, args, kw, message):
    assert refusal(check, value, *args, **kw) == message


def test_valid_values_and_none_where_optional_pass():
    f = Fields(Box(3))
    f.integer("v", 1, 9)
    f.integer("v", 1)
    f.number("v", 0, 3)
    f.choice("v", (1, 2, 3))
    Fields(Box(None)).integer("v", 1, 9, optional=True)
    Fields(Box(None)).number("v", 0, 1, optional=True)
    Fields(Box(None)).choice("v", ("a",), optional=True)
    Fields(Box(False)).boolean("v")


def test_numpy_integers_count_only_where_asked():
    with pytest.raises(ValueError, match="must be an integer"):
        Fields(Box(np.int64(3))).integer("v", 1, 9)  # TrainConfig: its fields go into JSON job keys
    Fields(Box(np.int64(3)), numpy_ints=True).integer("v", 1, 9)
    with pytest.raises(ValueError, match="must be an integer"):
        Fields(Box(np.bool_(True)), numpy_ints=True).integer("v", 0, 9)


@pytest.mark.parametrize("make, message", [
    (lambda: nas_eval.TrainConfig.preset("tiny", epochs=0), "TrainConfig.epochs must be a positive integer, got 0"),
    (lambda: nas_eval.TrainConfig.preset("tiny", lr_schedule="step"),
     "TrainConfig.lr_schedule must be one of ('constant', 'cosine', 'linear'), got 'step'"),
    (lambda: nas_eval.TrainConfig.preset("tiny", carry_hidden=1), "TrainConfig.carry_hidden must be true or false, got 1"),
    (lambda: nas_eval.policies.check_options("nao", {"top_k": 0}), "nao option top_k must be an integer in 1..10000000, got 0"),
    (lambda: nas_eval.policies.check_options("nao", {"dropout": 1.0}),
     "nao option dropout must be a number in [0.0, 1.0), got 1.0"),
    (lambda: nas_eval.policies.check_options("enas", {"reward_mode": "x"}),
     "enas option reward_mode must be one of ('train', 'eval'), got 'x'"),
    (lambda: nas_eval.policies.check_options("enas", {"controller_batch": np.int64(0)}),
     "enas option controller_batch must be an integer in 1..4096, got"),
    (lambda: nas_eval.policies.check_options("ws-random", {"sharing": "none"}),
     "ws-random option sharing must be one of ('node', 'edge', 'edge_op'), got 'none'"),
    (lambda: nas_eval.policies.check_options("darts", {"order": 3}), "darts option order must be 1 or 2, got 3"),
    (lambda: StudySpec(n_nodes=0), "n_nodes must be an integer in 1..32, got 0"),
    (lambda: StudySpec(train_seed=-1), "train_seed must be a non-negative integer, got -1"),
])
def test_the_configs_word_their_refusals_through_it(make, message):
    with pytest.raises(ValueError) as e:
        make()
    assert str(e.value).startswith(message)


def test_enas_takes_numpy_integers():
    assert nas_eval.policies.check_options("enas", {"controller_batch": np.int64(2)}).controller_batch == 2
