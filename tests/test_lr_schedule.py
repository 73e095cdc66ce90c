"""The learning-rate schedule of the one training loop (TrainConfig.lr_schedule / lr_min):
its values at steps, its checks, and resume staying bitwise identical."""
import math

import numpy as np
import pytest

import nas_eval
from nas_eval import TrainConfig
from nas_eval.engine import CellLM, Trainer
from nas_eval.engine.loop import LrSchedule
from nas_eval.jobs import Job


def config(**kw):
    base = dict(hidden_size=12, batch_size=8, eval_batch_size=5, test_batch_size=5, bptt=10, epochs=3,
                bptt_mode="fixed", train_tokens=None, valid_tokens=None, test_tokens=None, lr=20.0)
    base.update(kw)
    return TrainConfig.preset("tiny", **base)


@pytest.mark.parametrize("shape", ["cosine", "linear"])
def test_schedule_values_at_steps(shape):
    c = config(lr_schedule=shape, lr_min=2.0, epochs=4)
    s = LrSchedule(c, n_rows=92)  # ceil(90 / 10) = 9 steps an epoch, 36 in all
    assert s.total_steps == 36
    assert s(0) == 20.0 and s(35) == pytest.approx(2.0) and s(1000) == pytest.approx(2.0)
    mid = 35 / 2
    assert s(mid) == pytest.approx(11.0)  # halfway between lr and lr_min for both shapes
    quarter = s(35 / 4)
    assert quarter == pytest.approx(2 + 18 * (0.5 * (1 + math.cos(math.pi / 4)) if shape == "cosine" else 0.75))
    values = [s(k) for k in range(36)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert LrSchedule(config(epochs=4), 92)(20) == 20.0  # constant
    assert LrSchedule(c.replace(max_steps_per_epoch=5), 92).total_steps == 20


def test_trainer_steps_on_the_schedule_over_the_run(synth_corpus):
    """The rate each step uses (Trainer.upcoming) follows the schedule over config.epochs, and
    the schedule's step count is the run's (fixed BPTT)."""
    c = config(lr_schedule="cosine", lr_min=1.0)
    trainer = Trainer(CellLM("0:tanh 1:relu", synth_corpus.vocab_size, 12, seed=0), synth_corpus.train, c, seed=0)
    rates = []
    for _ in range(c.epochs):
        trainer.run_epoch(on_step=lambda t, step: rates.append((step, t.upcoming()[3], t._length)))
    assert trainer.step == trainer.schedule.total_steps == len(rates)
    steps, lrs, lengths = map(np.array, zip(*rates))
    np.testing.assert_allclose(lrs, [trainer.schedule(k) * T / c.bptt for k, T in zip(steps, lengths)])
    assert lrs[0] == 20.0 and trainer.schedule(steps[-1]) == pytest.approx(1.0)


def test_a_schedule_changes_the_run_and_resumes_bitwise(synth_corpus):
    c = config(lr_schedule="linear", lr_min=0.5, epochs=4)
    full = nas_eval.train("0:sigmoid 1:tanh", synth_corpus, c, seed=2, progress=False)
    constant = nas_eval.train("0:sigmoid 1:tanh", synth_corpus, c.replace(lr_schedule="constant"), seed=2,
                              progress=False)
    assert full.valid_ppl != constant.valid_ppl
    states = []
    # stopped after epoch 2 of the 4-epoch run: the state is the run's, its schedule the 4-epoch one
    nas_eval.train("0:sigmoid 1:tanh", synth_corpus, c, seed=2, progress=False,
                   on_epoch=lambda run: states.append(run.state()))
    resumed = nas_eval.train("0:sigmoid 1:tanh", synth_corpus, c, seed=2, progress=False, resume=states[1])
    assert resumed.history["valid_loss"].tolist() == full.history["valid_loss"].tolist()
    np.testing.assert_array_equal(resumed.model.weights(), full.model.weights())


@pytest.mark.parametrize("changes, field", [
    (dict(lr_schedule="step"), "lr_schedule"),
    (dict(lr_schedule=None), "lr_schedule"),
    (dict(lr_schedule="cosine", lr_min=-1.0), "lr_min"),
    (dict(lr_schedule="cosine", lr_min=math.nan), "lr_min"),
    (dict(lr_schedule="cosine", lr_min=25.0), "lr_min"),
    (dict(lr_schedule="linear", lr_min="1"), "lr_min"),
])
def test_bad_schedules_are_refused_naming_the_field(changes, field):
    with pytest.raises(ValueError, match=f"TrainConfig.{field}"):
        config(**changes)


def test_default_schedule_leaves_config_dicts_and_job_keys_as_before():
    c = config()
    assert "lr_schedule" not in c.to_dict() and "lr_min" not in c.to_dict()
    assert TrainConfig.from_dict(c.to_dict()) == c
    cos = c.replace(lr_schedule="cosine", lr_min=1.0)
    assert cos.to_dict()["lr_schedule"] == "cosine" and TrainConfig.from_dict(cos.to_dict()) == cos
    assert Job("train", {"config": c.to_dict()}).key != Job("train", {"config": cos.to_dict()}).key
    assert "cosine" in cos.describe() and "cosine" not in c.describe()
