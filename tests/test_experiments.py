"""Ground truth, WS ranking, the amount-of-sharing experiment and the figures."""
import numpy as np
import pandas as pd
import pytest

import nas_eval
from nas_eval import TrainConfig, plots
from nas_eval.serial import amount_of_sharing
from nas_eval.sharing import shared_matrices, sharing_space, sharing_table
from nas_eval.space import Arch

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def corpus():
    return nas_eval.datasets.synthetic(vocab_size=40, train_tokens=4000, valid_tokens=800,
                                       test_tokens=800, seed=4)


@pytest.fixture(scope="module")
def config():
    return TrainConfig(name="test", hidden_size=8, batch_size=8, eval_batch_size=5, test_batch_size=5, bptt=10,
                       bptt_mode="fixed", epochs=2, dropout=0.0, dropouth=0.0, dropoutx=0.0, dropouti=0.0,
                       dropoute=0.0, asgd=False)


def test_ground_truth_table_and_summary(corpus, config):
    archs = ["0:tanh 1:relu", "0:sigmoid 0:identity", "0:relu 1:relu"]
    gt = nas_eval.ground_truth(archs, corpus, config, seeds=[0, 1], progress=False)
    space = nas_eval.SearchSpace(2)
    assert sorted(gt.runs["arch_id"].unique()) == sorted(space.index(a) for a in archs)
    assert len(gt.runs) == 6 and set(gt.runs["seed"]) == {0, 1}
    s = gt.summary
    assert list(s["rank"]) == sorted(s["rank"]) and s["seeds"].eq(2).all()
    one = gt.runs[gt.runs["arch"] == archs[0]]["valid_ppl"]
    row = s[s["arch"] == archs[0]].iloc[0]
    assert row["valid_ppl_mean"] == pytest.approx(one.mean()) and row["valid_ppl_std"] == pytest.approx(one.std())
    assert gt.values().index.is_monotonic_increasing
    with pytest.raises(ValueError, match="duplicates"):
        nas_eval.ground_truth(archs, corpus, config, seeds=[1, 1])


def test_ws_ranking_is_tidy_and_deterministic(corpus, config):
    archs = nas_eval.SearchSpace(2).sample(1, size=5)
    archs = list(dict.fromkeys(archs))
    a = nas_eval.ws_ranking(archs, corpus, config, seeds=[0, 1], eval_epochs=[1, 2], progress=False)
    assert len(a) == 2 * 2 * len(archs)
    assert set(a.columns) >= {"seed", "epoch", "arch_id", "arch", "ws_ppl"}
    b = nas_eval.ws_ranking(archs, corpus, config, seeds=[0, 1], eval_epochs=[1, 2], progress=False)
    assert a["ws_ppl"].tolist() == b["ws_ppl"].tolist()
    with pytest.raises(ValueError, match="eval_epochs"):
        nas_eval.ws_ranking(archs, corpus, config, seeds=[0], eval_epochs=[0])


def test_shared_matrix_labels():
    space = sharing_space()  # node 1 = tanh(s0), node 2 = relu(node 1)
    labels = {str(a): shared_matrices(a) for a in space}
    assert len(labels) == 12
    assert labels["0:tanh 1:relu 0:sigmoid"] == 0
    assert labels["0:tanh 1:relu 1:sigmoid"] == 1
    assert labels["0:tanh 1:relu 2:sigmoid"] == 2
    other = sharing_space({1: ("tanh", 0), 2: ("relu", 0)})
    assert shared_matrices(Arch.parse("0:tanh 0:relu 2:tanh")) == 1  # node 2 reads s0 directly
    assert len(other) == 12
    with pytest.raises(ValueError, match="fix exactly nodes"):
        sharing_space({1: ("tanh", 0)})


def test_sharing_table_from_constructed_rows():
    space = sharing_space()
    ids = [space.parent.index(a) for a in space]
    gt = pd.DataFrame({"arch_id": ids, "valid_ppl_mean": np.arange(12, dtype=float) + 100})
    ws = pd.DataFrame({"seed": 0, "epoch": 1, "arch_id": ids, "ws_ppl": np.arange(12, 0, -1, dtype=float)})
    table = sharing_table(gt, ws, ws.assign(ws_ppl=np.arange(12, dtype=float)))
    assert list(table["ws_rank"]) == list(range(1, 13))
    assert table.iloc[0]["arch_id"] == ids[-1]  # the lowest WS perplexity ranks first
    assert set(table["shared"]) == {0, 1, 2}
    assert (table["ws_rank_none"] == table["gt_rank"]).all()


def test_amount_of_sharing_end_to_end(corpus, config):
    table, summary = amount_of_sharing(corpus, config, config, gt_seeds=[0], ws_seeds=[0], eval_epochs=[2],
                                       progress=False)
    assert len(table) == 12 and table["gt_ppl"].notna().all() and table["ws_ppl_none"].notna().all()
    assert set(summary["mean_ws_rank_by_shared"]) == {0, 1, 2}
    assert -1 <= summary["tau_ws_vs_gt"] <= 1


def test_figures_are_pngs(tmp_path):
    changes = {"best seed": pd.DataFrame({"arch_id": [3, 7], "true_rank": [1, 2], "ws_rank": [5, 1]})}
    plots.rank_changes(changes, tmp_path / "f4.png", caption="preset=test seeds=0 data=synthetic")
    plots.tau_vs_epoch(pd.DataFrame({"seed": [0, 0, 1, 1], "epoch": [1, 2, 1, 2], "tau": [0.1, 0.2, -0.1, 0.0]}),
                       tmp_path / "tau.png", caption="c")
    space = sharing_space()
    table = pd.DataFrame({"arch": [str(a) for a in space], "shared": [shared_matrices(a) for a in space],
                          "gt_ppl": np.linspace(100, 120, 12), "ws_rank": range(1, 13)})
    plots.sharing(table, tmp_path / "f5.png", caption="c")
    plots.ws_vs_ground_truth(pd.Series([1.0, 2.0], index=[0, 1]), pd.Series([3.0, 4.0], index=[0, 1]),
                             tmp_path / "scatter.png", caption="c")
    plots.learning_curves({"ws-random": [[300, 200, 150]], "random": [[310, 220, 160]]}, tmp_path / "f3.png",
                          caption="c")
    for name in ("f4", "tau", "f5", "scatter", "f3"):
        data = (tmp_path / f"{name}.png").read_bytes()
        assert data[:8] == PNG and len(data) > 5000, name


def test_engine_amount_of_sharing_is_a_deprecated_alias():
    """It analyses its runs, so it moved to the orchestration layer (nas_eval.serial): the
    engine imports no analysis module (docs/design.md §13); the old name warns."""
    import nas_eval.engine

    with pytest.warns(DeprecationWarning, match="nas_eval.serial.amount_of_sharing"):
        assert nas_eval.engine.amount_of_sharing is amount_of_sharing
    with pytest.raises(AttributeError):
        nas_eval.engine.no_such_name  # noqa: B018
