"""Serial drivers: run an experiment's engine units one after another in this process, then
its analysis (docs/design.md §13: orchestration, importing the engine only inside a call).

A Study fans the same units out as jobs; these are for a notebook or a script that wants the
whole experiment in one call.
"""
from .sharing import sharing_summary, sharing_table
from .space import sharing_space

__all__ = ["amount_of_sharing"]


def amount_of_sharing(corpus, config, ws_config, gt_seeds, ws_seeds, eval_epochs, fixed=None,
                      control=True, progress=None):
    """Run the amount-of-sharing experiment serially: ground truth of the 12 architectures,
    WS ranking with node-level sharing and (control) with no sharing. Returns (table, summary)."""
    from .engine.experiments import ground_truth, ws_ranking

    space = sharing_space(fixed)
    gt = ground_truth(space, corpus, config, gt_seeds, progress=progress)
    ws = ws_ranking(space, corpus, ws_config, ws_seeds, eval_epochs, sharing="node", progress=progress)
    ws_none = (ws_ranking(space, corpus, ws_config, ws_seeds, eval_epochs, sharing="none", progress=progress)
               if control else None)
    table = sharing_table(gt.summary, ws, ws_none, fixed)
    return table, sharing_summary(table)
