"""Summaries of standalone results: the ground truth of a space as per-architecture means
over seeds and the ranking by mean validation perplexity (docs/design.md §7).

Pure analysis: works on tables from a store or from ``nas_eval.ground_truth`` alike, and
never needs the C core.

>>> import pandas as pd
>>> runs = pd.DataFrame({"arch_id": [0, 0, 1, 1], "arch": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1],
...                      "valid_ppl": [10.0, 12.0, 9.0, 9.5], "test_ppl": [9.0, 11.0, 8.0, 8.5]})
>>> GroundTruth(runs).summary[["arch_id", "valid_ppl_mean", "rank"]].values.tolist()
[[1, 9.25, 1], [0, 11.0, 2]]
"""
import pandas as pd


def rank_min(values):
    """Ranks (1 = lowest, ties share the smallest rank) as ints; float with NaN where a value
    is missing (a failed or unfinished run), which then has no rank."""
    ranks = values.rank(method="min")
    return ranks.astype(int) if ranks.notna().all() else ranks


def summarize_ground_truth(runs):
    """Per architecture: mean / std / count of validation and test perplexity over seeds, and
    the rank by mean validation perplexity (1 = best; missing means get no rank)."""
    g = runs.groupby(["arch_id", "arch"], sort=True)
    summary = g.agg(valid_ppl_mean=("valid_ppl", "mean"), valid_ppl_std=("valid_ppl", "std"),
                    test_ppl_mean=("test_ppl", "mean"), test_ppl_std=("test_ppl", "std"),
                    seeds=("seed", "count")).reset_index()
    summary["rank"] = summary["valid_ppl_mean"].pipe(rank_min)
    return summary.sort_values("rank", kind="stable").reset_index(drop=True)


class GroundTruth:
    """Standalone results: ``runs`` (one row per architecture and seed) and ``summary``
    (one row per architecture). ``config`` is the recipe that produced them and ``corpus``
    the data's name, for every number printed from them."""

    def __init__(self, runs, config=None, corpus=None):
        self.runs, self.config, self.corpus = runs, config, corpus
        self.summary = summarize_ground_truth(runs) if len(runs) else pd.DataFrame(
            columns=["arch_id", "arch", "valid_ppl_mean", "valid_ppl_std", "test_ppl_mean",
                     "test_ppl_std", "seeds", "rank"])

    def values(self, seed=None):
        """Series arch_id -> validation perplexity (mean over seeds, or one seed's)."""
        if seed is None:
            return self.summary.set_index("arch_id")["valid_ppl_mean"].sort_index()
        runs = self.runs[self.runs["seed"] == seed]
        return runs.set_index("arch_id")["valid_ppl"].sort_index()

    @property
    def empty(self):
        return len(self.runs) == 0

    def __len__(self):
        return len(self.summary)

    def __repr__(self):
        seeds = self.runs["seed"].nunique() if len(self.runs) else 0
        recipe = self.config.describe() if hasattr(self.config, "describe") else self.config
        return (f"GroundTruth({self.summary.shape[0]} architectures x {seeds} seeds, "
                f"{recipe}, data={self.corpus})")
