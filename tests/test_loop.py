"""The one training loop: one definition of an epoch for standalone models and super-nets,
hooks, and state()/restore() that continue bitwise identically."""
import math

import numpy as np
import pytest

import nas_eval
from nas_eval import TrainConfig
from nas_eval.engine import BpttLengths, CellLM, StandaloneTraining, SuperNet, Trainer


def config(**kw):
    base = dict(hidden_size=12, batch_size=8, eval_batch_size=5, test_batch_size=5, bptt=10, epochs=3,
                bptt_mode="awd", dropout=0.1, dropouth=0.1, dropoutx=0.1, dropouti=0.1, dropoute=0.1,
                asgd=True, nonmono=1, train_tokens=None, valid_tokens=None, test_tokens=None)
    base.update(kw)
    return TrainConfig.preset("tiny", **base)


def test_an_epoch_is_the_same_walk_for_a_cell_and_a_super_net(synth_corpus):
    c = config(bptt_mode="search")
    cell = Trainer(CellLM("0:tanh 1:relu", synth_corpus.vocab_size, 12), synth_corpus.train, c, seed=4).run_epoch()
    net = SuperNet(nas_eval.SearchSpace(2), synth_corpus.vocab_size, 12, seed=4)
    ws = Trainer(net, synth_corpus.train, c, seed=4).run_epoch(sampler=net.uniform_sampler())
    assert cell["steps"] == ws["steps"] > 0 and cell["tokens"] == ws["tokens"]
    # the walk covers the slice once: every row but the last is a target... up to the length draws
    rows = len(synth_corpus.train) // c.batch_size
    assert rows - 2 <= cell["tokens"] / c.batch_size <= rows - 1
    capped = Trainer(CellLM("0:tanh", synth_corpus.vocab_size, 12), synth_corpus.train,
                     c.replace(max_steps_per_epoch=3), seed=4).run_epoch()
    assert capped["steps"] == 3


def test_bptt_lengths_follow_the_recipe_and_depend_only_on_seed_and_step():
    awd = BpttLengths(config(bptt=35, max_seq_len_delta=20), seed=1)
    lengths = [awd(k) for k in range(4000)]
    assert lengths == [BpttLengths(config(bptt=35, max_seq_len_delta=20), seed=1)(k) for k in range(4000)]
    assert min(lengths) >= 5 and max(lengths) <= 55 and 31 < np.mean(lengths) < 36
    search = [BpttLengths(config(bptt=35, bptt_mode="search"), seed=1)(k) for k in range(4000)]
    assert set(search) == {35, 17} and 0.93 < search.count(35) / 4000 < 0.97
    assert BpttLengths(config(bptt_mode="fixed"), seed=1)(7) == 10


def test_hooks_run_before_each_step_and_on_non_finite_steps(synth_corpus):
    model = CellLM("0:tanh", synth_corpus.vocab_size, 12, seed=0)
    trainer = Trainer(model, synth_corpus.train, config(max_steps_per_epoch=4), seed=0)
    seen = []
    trainer.run_epoch(on_step=lambda t, step: seen.append((step, t.pos)))
    assert [s for s, _ in seen] == [0, 1, 2, 3] and seen[0][1] == 0 and seen[1][1] > 0
    broken = []
    trainer.on_nonfinite = lambda t: broken.append(t.step)
    original = model.train_step
    model.train_step = lambda *a, **kw: original(*a, **kw)._replace(loss_sum=math.nan)
    stats = trainer.run_epoch()
    # non-finite steps do not count towards the cap, so the epoch walks the whole slice
    assert broken == list(range(5, trainer.step + 1)) and len(broken) > 4  # counted after the step
    assert stats["steps"] == 0 and trainer.hidden is None


def test_standalone_training_resumes_bitwise(synth_corpus):
    """Stop after any epoch, restore the state in a fresh object, finish: the same numbers as
    an uninterrupted run (NT-ASGD switches on the way: nonmono=1)."""
    c = config(epochs=4)
    # seed 0: the validation loss rises at epoch 2, so ASGD is on when the state is saved, at
    # every instruction-set level and with either decoder pass (seed 2 switched at epoch 4 or
    # not at all, depending on float rounding)
    full = nas_eval.train("0:sigmoid 1:tanh", synth_corpus, c, seed=0, progress=False)
    states = []
    nas_eval.train("0:sigmoid 1:tanh", synth_corpus, c.replace(epochs=2), seed=0, progress=False,
                   on_epoch=lambda run: states.append(run.state()))
    resumed = nas_eval.train("0:sigmoid 1:tanh", synth_corpus, c, seed=0, progress=False, resume=states[-1])
    assert resumed.valid_ppl == full.valid_ppl and resumed.test_ppl == full.test_ppl
    assert resumed.best_epoch == full.best_epoch
    assert resumed.history["valid_loss"].tolist() == full.history["valid_loss"].tolist()
    assert any(e["event"] == "switched to ASGD" for e in full.events)
    np.testing.assert_array_equal(resumed.model.weights(), full.model.weights())


def test_super_net_training_resumes_bitwise(synth_corpus):
    c = config(dropoute=0.0)
    space = nas_eval.SearchSpace(2)

    def make():
        net = SuperNet(space, synth_corpus.vocab_size, 12, sharing="edge", seed=6, **c.dropouts)
        return net, Trainer(net, synth_corpus.train, c, seed=6)

    net, trainer = make()
    for _ in range(3):
        trainer.run_epoch(sampler=net.uniform_sampler())
    net2, trainer2 = make()
    trainer2.run_epoch(sampler=net2.uniform_sampler())
    state = trainer2.state()
    net3, trainer3 = make()
    trainer3.restore(state)
    for _ in range(2):
        trainer3.run_epoch(sampler=net3.uniform_sampler())
    np.testing.assert_array_equal(net3.weights(), net.weights())
    assert net3.budget() == net.budget() and trainer3.step == trainer.step
