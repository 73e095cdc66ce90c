"""Inside the search phase: what each policy spent, and what it believed (docs/design.md §6-§8).

Every search records a budget (super-net steps, training tokens, validation tokens scored,
policy-specific costs) and, in enumerable spaces, its *beliefs*: the policy's own preference
for every architecture after each epoch or round (ENAS: the controller's exact probability;
DARTS: the product of its edges' op probabilities; NAO: the predictor's score; higher =
preferred). Here those become tables: the budget per policy, Kendall τ of the beliefs against
the ground truth by epoch (does the search learn the ranking it is meant to exploit?), and
where each pick sits in its policy's final belief (how much mass collapsed onto it).

Pure analysis: DataFrames in, DataFrames out; no C core.

>>> import pandas as pd
>>> beliefs = pd.DataFrame({"policy": "p", "seed": 0, "epoch": [1, 1, 1, 2, 2, 2],
...                         "arch_id": [0, 1, 2, 0, 1, 2], "belief": [0.2, 0.3, 0.5, 0.6, 0.3, 0.1]})
>>> gt = pd.Series({0: 60.0, 1: 65.0, 2: 70.0})
>>> belief_tau(beliefs, gt)["tau"].tolist()
[-1.0, 1.0]
"""
import numpy as np
import pandas as pd

from . import metrics

BUDGET_COLUMNS = ("supernet_steps", "train_tokens", "valid_tokens", "wall_time")


def budget_table(searches):
    """Mean (and max) of every numeric budget column per policy, with the number of seeds."""
    if searches is None or searches.empty:
        return pd.DataFrame()
    skip = {"seed", "arch_id"}
    numeric = [c for c in searches.columns if c not in skip and pd.api.types.is_numeric_dtype(searches[c])]
    g = searches.groupby("policy")
    out = g[numeric].mean()
    out.insert(0, "seeds", g.size())
    return out.reset_index()


def belief_tau(beliefs, gt_values):
    """Kendall τ-b between each (policy, seed, epoch)'s beliefs and the ground truth.

    ``gt_values``: Series arch_id -> mean ground-truth validation perplexity (lower is
    better). A belief is "higher = preferred", so it is compared as ``-belief``: τ = 1 means
    the policy prefers exactly the architectures that are truly better."""
    if beliefs is None or beliefs.empty or gt_values is None or len(gt_values) < 2:
        return pd.DataFrame(columns=["policy", "seed", "epoch", "tau", "n_archs"])
    gt_values = pd.Series(gt_values, dtype=float).dropna()
    rows = []
    for (policy, seed, epoch), g in beliefs.groupby(["policy", "seed", "epoch"], sort=True):
        b = g.set_index("arch_id")["belief"].astype(float)
        common = b.index.intersection(gt_values.index)
        tau = metrics.kendall_tau(-b[common], gt_values[common]) if len(common) >= 2 else np.nan
        rows.append({"policy": policy, "seed": int(seed), "epoch": int(epoch), "tau": tau,
                     "n_archs": int(len(common))})
    return pd.DataFrame(rows)


def belief_tau_summary(taus):
    """Per policy and epoch: mean, min and max of τ over seeds."""
    if taus is None or taus.empty:
        return pd.DataFrame(columns=["policy", "epoch", "mean", "min", "max", "seeds"])
    g = taus.groupby(["policy", "epoch"])["tau"]
    return pd.DataFrame({"mean": g.mean(), "min": g.min(), "max": g.max(), "seeds": g.count()}).reset_index()


def picks_in_beliefs(beliefs, searches):
    """For each search: the pick's share of its policy's final belief (belief of the pick over
    the sum over the space; for ENAS the controller's probability of its pick), the largest
    share of any architecture, and the pick's rank in that belief (1 = the favourite)."""
    if beliefs is None or beliefs.empty or searches is None or searches.empty:
        return pd.DataFrame()
    rows = []
    for s in searches.itertuples(index=False):
        b = beliefs[(beliefs["policy"] == s.policy) & (beliefs["seed"] == s.seed)]
        if b.empty:
            continue
        last = b[b["epoch"] == b["epoch"].max()].set_index("arch_id")["belief"].astype(float)
        total = last.clip(lower=0).sum()
        pick = last.get(s.arch_id, np.nan)
        rows.append({"policy": s.policy, "seed": int(s.seed), "arch_id": int(s.arch_id),
                     "epoch": int(b["epoch"].max()),
                     "pick_share": float(pick / total) if total > 0 else np.nan,
                     "top_share": float(last.max() / total) if total > 0 else np.nan,
                     "pick_rank": int((last > pick).sum() + 1) if np.isfinite(pick) else None})
    return pd.DataFrame(rows)
