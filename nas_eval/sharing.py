"""The amount-of-sharing experiment (paper §4.3.1, docs/design.md §9): its subspace and its
tables. Pure analysis; :func:`nas_eval.serial.amount_of_sharing` runs it serially and a Study
runs it as jobs. The subspace itself (:func:`sharing_space`, :func:`shared_matrices`) is
defined in :mod:`nas_eval.space`, which every layer may import.

In the 3-node space with nodes 1 and 2 fixed (default: node 1 = tanh on s0, node 2 = relu on
node 1), node 3 enumerates its 12 choices. Node 3's input chain reaches 0, 1 or 2 of the
fixed nodes' matrices W1, W2: with node-level sharing, those architectures' W3 is trained
alongside matrices that every other architecture also updates. The paper found that the
architectures sharing no matrices with nodes 1, 2 rank best under WS, and more sharing ranks
worse; ``sharing="none"`` (every architecture its own cell matrices) is the control.
"""
import pandas as pd

from . import metrics
from .space import DEFAULT_FIXED, shared_matrices, sharing_space  # noqa: F401 (defined with the space)
from .summaries import rank_min

def sharing_table(gt_summary, ws, ws_control=None, fixed=None):
    """The experiment's table from a ground-truth summary and WS rows (last epoch used).

    One row per architecture: arch_id, arch, shared (0/1/2), gt_ppl, gt_rank, ws_ppl (mean
    over WS seeds), ws_rank and, with a control, ws_ppl_none / ws_rank_none."""
    space = sharing_space(fixed)
    fixed_nodes = tuple(range(1, space.n_nodes))
    gt = gt_summary.set_index("arch_id")

    def last_epoch_mean(rows):
        rows = rows[rows["epoch"] == rows["epoch"].max()]
        return rows.groupby("arch_id")["ws_ppl"].mean()

    table = pd.DataFrame({"arch_id": [space.parent.index(a) for a in space]})
    table["arch"] = [str(a) for a in space]
    table["shared"] = [shared_matrices(a, fixed_nodes=fixed_nodes) for a in space]
    table["gt_ppl"] = table["arch_id"].map(gt["valid_ppl_mean"])
    table["gt_rank"] = table["gt_ppl"].pipe(rank_min)
    ws_mean = last_epoch_mean(ws)
    table["ws_ppl"] = table["arch_id"].map(ws_mean)
    table["ws_rank"] = table["ws_ppl"].pipe(rank_min)
    if ws_control is not None:
        control = last_epoch_mean(ws_control)
        table["ws_ppl_none"] = table["arch_id"].map(control)
        table["ws_rank_none"] = table["ws_ppl_none"].pipe(rank_min)
    return table.sort_values("ws_rank", kind="stable").reset_index(drop=True)


def sharing_summary(table):
    """Mean WS rank per amount of sharing, and τ of WS vs ground truth (with the control)."""
    out = {"mean_ws_rank_by_shared": table.groupby("shared")["ws_rank"].mean().to_dict(),
           "tau_ws_vs_gt": metrics.kendall_tau(table["ws_ppl"].to_numpy(), table["gt_ppl"].to_numpy()),
           "tau_shared_vs_ws_rank": metrics.kendall_tau(table["shared"].to_numpy(float), table["ws_rank"].to_numpy(float))}
    # the paper's finding (more sharing ranks worse) is a claim about this tau: its CI says
    # whether twelve architectures can carry it
    ci = metrics.bootstrap_ci(metrics.kendall_tau, table["shared"].to_numpy(float),
                              table["ws_rank"].to_numpy(float), n_boot=1000, seed=0)
    out["tau_shared_vs_ws_rank_ci"] = [float(ci.low), float(ci.high)]
    if "ws_rank_none" in table:
        out["mean_ws_rank_none_by_shared"] = table.groupby("shared")["ws_rank_none"].mean().to_dict()
        out["tau_none_vs_gt"] = metrics.kendall_tau(table["ws_ppl_none"].to_numpy(), table["gt_ppl"].to_numpy())
    return out
