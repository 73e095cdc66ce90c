"""The Evidence section's reliability row (the seed-mean ground truth) and external-validity
rows (nas_eval.external: agreement with the paper's published ranking), which appear for PTB
studies of the 2-node space and for no other."""
import numpy as np
import pandas as pd
import pytest

from nas_eval import evidence as ev
from nas_eval import external, reference
from nas_eval.spec import study_preset


class FakeStudy:
    """Duck-typed study: study_evidence reads a study through these methods only."""

    def __init__(self, spec, gt, ws=None):
        self.spec, self._gt, self._ws = spec, gt, ws

    def ground_truth(self):
        return self._gt

    def ws(self):
        if self._ws is None:
            raise ValueError("no WS")
        return self._ws

    def retrains(self):
        raise ValueError("none")

    sharing_ground_truth = sharing_ws = retrains


def ground_truth(noise, seeds=(0, 1, 2), seed=0):
    """Perplexities ordered like the published ranking (rank r -> 60 + r) plus noise."""
    rng = np.random.default_rng(seed)
    rank = reference.published_rank()
    return pd.DataFrame([{"arch_id": a, "seed": s, "valid_ppl": 60.0 + rank[a] + rng.normal(0, noise)}
                         for a in range(32) for s in seeds])


def ws_table(values):
    return pd.DataFrame({"seed": 0, "epoch": 4, "arch_id": range(32), "ws_ppl": values})


def test_external_validity_appears_for_a_ptb_2_node_study():
    spec = study_preset("standard")
    assert spec.n_nodes == 2 and external.is_ptb(spec.corpus)
    rng = np.random.default_rng(1)
    study = FakeStudy(spec, ground_truth(0.5), ws_table(rng.normal(100, 10, 32)))
    table = ev.study_evidence(study, n_boot=200, n_sim=100, max_seeds=8)
    ext = table[table["check"] == "external_validity"]
    assert list(ext["subject"]) == ["ground truth vs published", "WS seed 0 vs published"]
    gt_row, ws_row = ext.iloc[0], ext.iloc[1]
    assert gt_row["estimate"] > 0.9 and gt_row["low"] > 0 and bool(gt_row["passed"])
    assert gt_row["statement"].startswith("this study's ground truth " + external.AGREES)
    assert reference.RANKING_SOURCE in gt_row["statement"]
    # a random WS ranking: read against the published ranking and against the study's own
    assert external.DOES_NOT_AGREE in ws_row["statement"] and "this study's ground truth τ =" in ws_row["statement"]
    assert "0.282" in ws_row["statement"]
    md = ev.evidence_markdown(table)
    assert "external validity (ground truth vs published)" in md and "reliability (ground truth" in md


def test_a_ground_truth_unlike_the_published_one_does_not_agree():
    rng = np.random.default_rng(3)
    gt = pd.DataFrame([{"arch_id": a, "seed": s, "valid_ppl": v} for a, v in enumerate(rng.normal(100, 5, 32))
                       for s in (0, 1)])
    gt["valid_ppl"] += np.random.default_rng(4).normal(0, 0.1, len(gt))
    table = ev.study_evidence(FakeStudy(study_preset("standard"), gt), n_boot=200, n_sim=100, max_seeds=8)
    row = table[table["check"] == "external_validity"].iloc[0]
    assert row["statement"].startswith("this study's ground truth " + external.DOES_NOT_AGREE)
    assert not row["passed"]


@pytest.mark.parametrize("overrides", [dict(corpus="wikitext-2"), dict(n_nodes=3),
                                       dict(corpus="synthetic:vocab_size=40,train_tokens=3000")])
def test_no_external_validity_for_other_corpora_or_spaces(overrides):
    spec = study_preset("standard", **overrides)
    gt = ground_truth(0.5)
    if spec.n_nodes != 2:
        gt = gt.assign(arch_id=gt["arch_id"] + 100)  # ids of another space
    table = ev.study_evidence(FakeStudy(spec, gt), n_boot=100, n_sim=100, max_seeds=8)
    assert "external_validity" not in set(table["check"])
    assert "reliability" in set(table["check"])  # the reliability line does not depend on the space


def test_ptb_corpus_names():
    assert external.is_ptb("ptb") and external.is_ptb("/work/shared/data/ptb/") and external.is_ptb("data\\PTB")
    assert not external.is_ptb("wikitext-2") and not external.is_ptb("synthetic:vocab_size=40") and not external.is_ptb(None)


def test_reliability_row_sits_beside_the_noise_ceiling():
    table = ev.evidence(ground_truth(3.0, seeds=(0, 1, 2, 3)), n_boot=200)
    nc = table[table["check"] == "noise_ceiling"].iloc[0]
    rel = table[table["check"] == "reliability"].iloc[0]
    assert rel["subject"] == "ground truth, mean of 4 seeds" and rel["n"] == 32
    assert rel["low"] <= rel["estimate"] <= rel["high"] and rel["threshold"] == 0.8
    assert "seeds needed for 0.8" in rel["statement"]
    # the 4-seed mean is more reliable than one seed agrees with another
    assert rel["estimate"] > nc["estimate"]
    one = ev.evidence(ground_truth(3.0, seeds=(0,)), n_boot=50)
    assert "reliability" not in set(one["check"])  # a single seed: the noise ceiling row says why
