"""Standalone training: the recipe learns, is deterministic, recovers from non-finite losses."""
import math

import numpy as np
import pytest

import nas_eval
from nas_eval import TrainConfig
from nas_eval.engine.training import nt_asgd_should_switch

from conftest import ptb_or_skip


@pytest.fixture(scope="module")
def corpus():
    return nas_eval.datasets.synthetic(vocab_size=60, train_tokens=12000, valid_tokens=2000,
                                       test_tokens=2000, seed=2)


def small(**changes):
    base = dict(hidden_size=24, batch_size=8, eval_batch_size=5, test_batch_size=5, bptt=12,
                bptt_mode="awd", max_seq_len_delta=6, epochs=3, dropout=0.1, dropouth=0.05,
                dropoutx=0.1, dropouti=0.05, dropoute=0.05, asgd=True, nonmono=1)
    base.update(changes)
    return TrainConfig(**base)


def test_training_learns_far_below_the_untrained_perplexity(corpus):
    arch = nas_eval.SearchSpace(3).sample(0)
    untrained = math.exp(nas_eval.CellLM(arch, corpus.vocab_size, 24).loss(corpus.valid))
    result = nas_eval.train(arch, corpus, small(), seed=0, progress=False)
    assert untrained > 50
    assert result.valid_ppl < untrained / 3
    assert math.isfinite(result.test_ppl)
    h = result.history
    assert list(h["epoch"]) == [1, 2, 3]
    assert result.valid_ppl == pytest.approx(h["valid_ppl"].min())
    assert result.best_epoch == int(h.loc[h["valid_ppl"].idxmin(), "epoch"])
    record = result.to_dict()
    assert record["preset"] == "custom" and record["arch"] == str(arch)


def test_same_seed_same_threads_is_bitwise_deterministic(corpus):
    arch = "0:tanh 1:relu 0:sigmoid"
    a = nas_eval.train(arch, corpus, small(epochs=2), seed=3, progress=False)
    b = nas_eval.train(arch, corpus, small(epochs=2), seed=3, progress=False)
    c = nas_eval.train(arch, corpus, small(epochs=2), seed=4, progress=False)
    assert a.history["train_loss"].tolist() == b.history["train_loss"].tolist()
    assert a.valid_ppl == b.valid_ppl and a.test_ppl == b.test_ppl
    assert a.history["train_loss"].tolist() != c.history["train_loss"].tolist()


def test_nt_asgd_rule():
    assert not nt_asgd_should_switch([5.0, 4.0, 3.0], nonmono=1)
    assert nt_asgd_should_switch([5.0, 4.0, 4.5], nonmono=1)
    assert not nt_asgd_should_switch([5.0, 4.0, 4.5], nonmono=5)  # too few logged
    assert nt_asgd_should_switch([5, 4, 3, 3.5, 3.6, 3.7, 3.8, 3.9], nonmono=5)


def test_asgd_average_is_the_mean_of_the_iterates(corpus):
    model = nas_eval.CellLM("0:relu 1:tanh", corpus.vocab_size, 8, seed=1)
    data = nas_eval.engine.batchify(corpus.train, 4)
    model.start_averaging()
    iterates, h = [], None
    for k in range(3):
        h = model.train_step(data[k * 5 : k * 5 + 5], data[k * 5 + 1 : k * 5 + 6], h, lr=1.0, clip=0.5,
                             asgd=True).hidden
        iterates.append(model.weights())
    np.testing.assert_allclose(model.averaged_weights(), np.mean(iterates, axis=0), rtol=1e-5, atol=1e-7)
    assert model.state()["average_count"] == 3


def test_a_non_finite_loss_restores_the_checkpoint_and_is_recorded(corpus, monkeypatch):
    from nas_eval.engine import training

    class FlakyLM(training.CellLM):
        """A model whose third training step reports a NaN loss."""
        calls = 0

        def train_step(self, *args, **kw):
            out = super().train_step(*args, **kw)
            FlakyLM.calls += 1
            return out._replace(loss_sum=math.nan) if FlakyLM.calls == 3 else out

    monkeypatch.setattr(training, "CellLM", FlakyLM)
    result = nas_eval.train("0:tanh 1:relu", corpus, small(epochs=2), seed=0, progress=False)
    assert [e["event"] for e in result.events if e["event"] == "non-finite loss"] == ["non-finite loss"]
    assert math.isfinite(result.valid_ppl) and result.valid_ppl < 60


def test_divergence_raises_a_clear_error(corpus):
    config = small(lr=1e30, clip=0.0, max_recoveries=2, epochs=2)
    with pytest.raises(FloatingPointError, match="diverged"):
        nas_eval.train("0:identity 1:identity", corpus, config, seed=0, progress=False)


def test_presets_and_config_validation():
    paper = TrainConfig.preset("paper")
    assert (paper.hidden_size, paper.batch_size, paper.test_batch_size, paper.epochs) == (850, 64, 1, 1000)
    assert (paper.dropout, paper.dropouth, paper.dropoutx, paper.dropouti, paper.dropoute) == (0.75, 0.25, 0.75, 0.2, 0.1)
    assert paper.weight_decay == 8e-7 and paper.asgd and paper.bptt_mode == "awd"
    search = TrainConfig.preset("search")
    assert (search.hidden_size, search.batch_size, search.weight_decay, search.asgd) == (300, 256, 5e-7, False)
    assert set(TrainConfig.presets()) >= {"paper", "search", "laptop", "tiny"}
    assert TrainConfig.preset("tiny", epochs=1).name == "tiny+epochs=1"
    assert TrainConfig.from_dict(paper.to_dict()) == paper and paper.hash() == TrainConfig.preset("paper").hash()
    with pytest.raises(ValueError, match="unknown training preset 'huge'"):
        TrainConfig.preset("huge")
    with pytest.raises(ValueError, match="unknown TrainConfig field"):
        TrainConfig.preset("tiny", hiden=3)
    with pytest.raises(ValueError, match="dropouth must be in"):
        TrainConfig(dropouth=1.5)
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        TrainConfig(hidden_size=0)
    with pytest.raises(ValueError, match="bptt_mode"):
        TrainConfig(bptt_mode="random")
    with pytest.raises(ValueError, match="lr must be a finite"):
        TrainConfig(lr=float("nan"))


def test_old_names_still_work_for_one_release_with_a_warning():
    with pytest.warns(DeprecationWarning, match="'quick' is deprecated; it is now called 'laptop'"):
        assert TrainConfig.preset("quick") == TrainConfig.preset("laptop")
    with pytest.warns(DeprecationWarning, match="'hidden' is deprecated; use 'hidden_size'"):
        assert TrainConfig.preset("tiny", hidden=12).hidden_size == 12
    with pytest.warns(DeprecationWarning, match="use weight_decay"):
        assert TrainConfig.preset("paper").wdecay == 8e-7
    with pytest.warns(DeprecationWarning, match="hidden= is deprecated"):
        assert nas_eval.CellLM("0:tanh", 10, hidden=4).hidden_size == 4
    with pytest.warns(DeprecationWarning, match="CellLM.evaluate is deprecated"):
        nas_eval.CellLM("0:tanh", 10, 4).evaluate(np.arange(100) % 10)
    with pytest.warns(DeprecationWarning, match="SearchSpace.nodes is deprecated"):
        assert nas_eval.SearchSpace(3).nodes == 3


def test_bad_train_arguments(corpus):
    with pytest.raises(ValueError, match="config must be a TrainConfig"):
        nas_eval.train("0:tanh", corpus, {"hidden": 3})
    with pytest.raises(ValueError, match="unknown op"):
        nas_eval.train("0:tanhh", corpus, small())
    with pytest.raises(ValueError, match="seed must be"):
        nas_eval.train("0:tanh", corpus, small(), seed=-1)


def test_tiny_preset_on_ptb_learns():
    corpus = ptb_or_skip()
    result = nas_eval.train("0:tanh 1:relu", corpus, TrainConfig.preset("tiny", epochs=2), seed=0, progress=False)
    assert result.valid_ppl < 1500  # untrained: ~10,000
    assert result.corpus == "ptb"
