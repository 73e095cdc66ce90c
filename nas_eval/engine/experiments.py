"""Ground truth (every architecture trained standalone with K seeds), weight-sharing
rankings (a super-net trained with uniform sampling scores every architecture),
docs/design.md §5, §7.

Each function runs its units serially here; a Study fans the same units out as jobs
(``ground_truth_run`` and ``ws_run`` are those units). The amount-of-sharing experiment, which
also analyses its runs, is :func:`nas_eval.serial.amount_of_sharing` (the engine imports no
analysis module).
"""
import time

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .._progress import disabled
from ..config import TrainConfig
from ..space import Arch, SearchSpace
from ..summaries import GroundTruth
from .loop import Trainer
from .supernet import SuperNet
from .training import nt_asgd_should_switch, train


def _archs(space_or_archs):
    """(space, list of archs, ids in the full space) from a space or a list of archs."""
    if isinstance(space_or_archs, SearchSpace):
        space = space_or_archs
        archs = list(space)
    else:
        archs = [Arch.parse(a) if isinstance(a, str) else a for a in space_or_archs]
        if not archs:
            raise ValueError("no architectures given")
        for a in archs:
            if not isinstance(a, Arch):
                raise ValueError(f"expected architectures, got {type(a).__name__}")
        n = {a.n_nodes for a in archs}
        if len(n) != 1:
            raise ValueError(f"architectures have different numbers of nodes: {sorted(n)}")
        space = SearchSpace(n.pop())
    full = space.parent
    return space, archs, [full.index(a) for a in archs]


def _seeds(seeds):
    seeds = [seeds] if isinstance(seeds, (int, np.integer)) else list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds contain duplicates: {seeds!r}")
    return [int(s) for s in seeds]


def ground_truth_run(arch, corpus, config, seed, on_epoch=None, resume=None):
    """One standalone training, as a flat record (a row of ground_truth's table).
    ``on_epoch`` and ``resume`` are :func:`train`'s (checkpoints)."""
    r = train(arch, corpus, config, seed, progress=False, on_epoch=on_epoch, resume=resume)
    return {"arch": str(r.arch), "genotype": str(list(r.arch.genotype)), "seed": r.seed, "valid_ppl": r.valid_ppl, "test_ppl": r.test_ppl,
            "best_epoch": r.best_epoch, "epochs": len(r.history), "wall_time": r.wall_time,
            "curve": r.history["valid_ppl"].tolist(), "events": r.events}


def ground_truth(space_or_archs, corpus, config, seeds, progress=None):
    """Train every architecture standalone with every seed (``nas_eval.train``)."""
    _check_config(config)
    space, archs, ids = _archs(space_or_archs)
    seeds = _seeds(seeds)
    rows = []
    units = [(i, a, s) for i, a in zip(ids, archs) for s in seeds]
    for arch_id, arch, seed in tqdm(units, desc="ground truth", disable=disabled(progress), unit="run"):
        rows.append({"arch_id": arch_id, **ground_truth_run(arch, corpus, config, seed)})
    return GroundTruth(pd.DataFrame(rows), config, corpus.name)


def _check_config(config):
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")


def ws_run(archs, corpus, config, seed, eval_epochs, sharing="node", ids=None, carry_hidden=None,
           with_budget=False, on_epoch=None, resume=None):
    """One weight-sharing seed: train a super-net with one uniformly drawn architecture per
    mini-batch (the search-time recipe of ``config``), and at each epoch in ``eval_epochs``
    score every architecture on validation. Returns tidy rows (epoch, arch_id, arch, ws_ppl),
    and the super-net's budget too when ``with_budget``.

    The recipe's ``carry_hidden`` (``carry_hidden=None``: the recipe's; True/False overrides
    it) keeps the hidden state across architecture switches and its ``hidden_clip`` clips the
    hidden state's row norms -- after every time step, in training and evaluation, with
    ``hidden_clip_mode="step"``, as the paper's WS code did, or only the carried state
    (``"carry"``); with ``asgd`` the super-net
    switches to averaged SGD by the NT-ASGD rule on the mean WS perplexity of each evaluation,
    and scores with the averaged weights from then on (weight_sharing_ranking_random_on_batch.py).

    Checkpoints: ``on_epoch(state)`` is called after every epoch with the run's whole state
    (the :class:`Trainer`'s, the rows so far and the seconds spent); ``resume`` is such a
    state to continue from, giving the same numbers as a run that was never interrupted."""
    _check_config(config)
    space, archs, full_ids = _archs(archs)
    ids = full_ids if ids is None else list(ids)
    eval_epochs = list(eval_epochs)
    if any(isinstance(e, bool) or not isinstance(e, (int, np.integer)) for e in eval_epochs):
        raise ValueError(f"eval_epochs must be positive integers (epoch numbers), got {eval_epochs!r}")
    eval_epochs = sorted({int(e) for e in eval_epochs})
    if not eval_epochs or eval_epochs[0] < 1:
        raise ValueError(f"eval_epochs must be positive epoch numbers, got {eval_epochs!r}")
    train_tokens, valid_tokens, _ = config.slice(corpus)
    # uniform sampling over exactly the architectures being ranked
    net = SuperNet(space, corpus.vocab_size, config.hidden_size, sharing=sharing, seed=seed,
                   archs=archs, output=config.output, **config.dropouts)
    net.hidden_clip = config.step_hidden_clip
    carry = config.carry_hidden if carry_hidden is None else bool(carry_hidden)
    trainer = Trainer(net, train_tokens, config, seed=seed, carry_hidden=carry, hidden_clip=config.carry_hidden_clip)
    rows, t0, judged = [], time.perf_counter(), []  # judged: mean WS perplexity per evaluation
    if resume is not None:
        trainer.restore(resume["trainer"])
        rows = [dict(r) for r in resume["rows"]]
        judged = list(resume.get("judged", []))
        t0 -= float(resume["seconds"])  # wall_time counts the earlier processes' time too
    for epoch in range(trainer.epoch + 1, eval_epochs[-1] + 1):
        loss = trainer.run_epoch(sampler=net.uniform_sampler())["train_loss"]
        if epoch in eval_epochs:
            with net.using_average():
                ppl = net.perplexity(archs, valid_tokens, config.eval_batch_size, config.bptt)
            if config.asgd and not net.averaging:
                judged.append(float(np.mean(ppl)))
                if nt_asgd_should_switch(judged, config.nonmono):
                    net.start_averaging()
            for arch_id, arch, p in zip(ids, archs, ppl):
                rows.append({"seed": int(seed), "epoch": epoch, "arch_id": arch_id, "arch": str(arch),
                             "ws_ppl": float(p), "train_loss": loss,
                             "wall_time": time.perf_counter() - t0})
        if on_epoch is not None:
            on_epoch({"trainer": trainer.state(), "rows": [dict(r) for r in rows],
                      "seconds": time.perf_counter() - t0, "judged": list(judged)})
    return (rows, net.budget()) if with_budget else rows


def ws_ranking(space_or_archs, corpus, config, seeds, eval_epochs, sharing="node", progress=None):
    """Per WS seed and evaluation epoch, the WS perplexity of every architecture (tidy)."""
    space, archs, ids = _archs(space_or_archs)
    rows = []
    for seed in tqdm(_seeds(seeds), desc=f"WS ({sharing})", disable=disabled(progress), unit="seed"):
        rows.extend(ws_run(archs, corpus, config, seed, eval_epochs, sharing=sharing, ids=ids))
    return pd.DataFrame(rows)
