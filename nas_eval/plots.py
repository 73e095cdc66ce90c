"""The paper's figures as matplotlib PNGs. Every function takes a ``caption`` naming the
preset, seeds and data that produced the numbers, and writes it under the title."""
import textwrap

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator, ScalarFormatter  # noqa: E402

SHARED_COLOURS = {0: "#1b9e77", 1: "#d95f02", 2: "#7570b3"}


def _finish(fig, title, caption, path, ax=None):
    """Title (on ``ax``, or over the whole figure), the caption wrapped under it with room
    made for every line, then save to ``path`` (and close) when given."""
    if ax is not None:
        ax.set_title(title, fontsize=11)
    else:
        fig.suptitle(title, fontsize=11)
    bottom = 0.0
    if caption:
        width = max(40, int(fig.get_figwidth() * 15))  # characters per line at 7 pt
        lines = textwrap.wrap(caption, width)
        fig.text(0.5, 0.005, "\n".join(lines), ha="center", va="bottom", fontsize=7, color="#444444")
        bottom = min(0.4, (0.12 * len(lines) + 0.05) / fig.get_figheight())
    fig.tight_layout(rect=(0, bottom, 1, 1 if ax is not None else 0.95))
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig


def rank_changes(changes, path=None, caption="", title="Rank of the ground-truth top architectures under WS"):
    """Figure 4: ``changes`` maps a label (e.g. 'best seed (τ=0.28)') to a rank_changes
    DataFrame (arch_id, true_rank, ws_rank); a line joins each architecture's two ranks."""
    fig, axes = plt.subplots(1, len(changes), figsize=(4 * len(changes), 4.2), squeeze=False)
    for ax, (label, df) in zip(axes[0], changes.items()):
        for _, row in df.iterrows():
            ax.plot([0, 1], [row["true_rank"], row["ws_rank"]], "-o", color="#555555", lw=1, ms=4)
        # one label per WS rank: architectures tied under WS share it ("11, 8")
        for rank, ids in df.groupby("ws_rank", sort=False)["arch_id"]:
            ax.annotate(", ".join(str(int(i)) for i in ids), (1.02, rank), fontsize=7, va="center")
        ax.set_xticks([0, 1], ["ground truth", "weight sharing"])
        ax.set_xlim(-0.2, 1.3)
        ax.invert_yaxis()
        ax.set_ylabel("rank (1 = best)")
        ax.set_title(label, fontsize=9)
    return _finish(fig, title, caption, path)


def tau_vs_epoch(df, path=None, caption="", title="Kendall τ of WS vs ground truth by epoch"):
    """``df``: columns seed, epoch, tau (optionally low/high for a CI band)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for seed, g in df.groupby("seed"):
        g = g.sort_values("epoch")
        ax.plot(g["epoch"], g["tau"], "-o", ms=3, label=f"WS seed {seed}")
        if {"low", "high"} <= set(g):
            ax.fill_between(g["epoch"], g["low"], g["high"], alpha=0.15)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("super-net epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("Kendall τ")
    ax.set_ylim(-1, 1)
    ax.legend(fontsize=7)
    return _finish(fig, title, caption, path, ax)


def sharing(table, path=None, caption="", title="Amount of sharing: WS ranking of the 12 architectures"):
    """Figure 5: architectures in WS rank order, bar = ground-truth perplexity, colour = how
    many of W1, W2 node 3's input depends on."""
    fig, ax = plt.subplots(figsize=(8, 4))
    t = table.sort_values("ws_rank", kind="stable")
    x = np.arange(len(t))
    ax.bar(x, t["gt_ppl"], color=[SHARED_COLOURS.get(int(s), "grey") for s in t["shared"]])
    ax.set_xticks(x, [f"{r}\n{a.split()[-1]}" for r, a in zip(t["ws_rank"], t["arch"])], fontsize=7)
    ax.set_xlabel("WS rank (node 3's choice)")
    ax.set_ylabel("ground-truth validation ppl")
    lo, hi = t["gt_ppl"].min(), t["gt_ppl"].max()
    ax.set_ylim(lo - 0.2 * (hi - lo + 1e-9), hi + 0.2 * (hi - lo + 1e-9))
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in SHARED_COLOURS.values()]
    ax.legend(handles, [f"shares {k} of W1, W2" for k in SHARED_COLOURS], fontsize=7)
    return _finish(fig, title, caption, path, ax)


def ws_vs_ground_truth(ws, gt, path=None, caption="", title="WS vs ground-truth perplexity"):
    """Scatter of per-architecture values (two Series keyed by arch id)."""
    common = ws.index.intersection(gt.index)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.scatter(gt[common], ws[common], s=14)
    for i in common:
        ax.annotate(str(i), (gt[i], ws[i]), fontsize=6, alpha=0.7)
    ax.set_xlabel("ground-truth validation ppl (mean over seeds)")
    ax.set_ylabel("WS validation ppl")
    return _finish(fig, title, caption, path, ax)


def learning_curves(curves, path=None, caption="", title="Validation perplexity while retraining"):
    """Figure 3: ``curves`` maps a label (policy or 'random') to a list of per-seed curves."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (label, per_seed) in enumerate(curves.items()):
        colour = "black" if label == "random" else colours[k % len(colours)]
        for j, curve in enumerate(per_seed):
            ax.plot(np.arange(1, len(curve) + 1), curve, color=colour, alpha=0.5, lw=1,
                    label=label if j == 0 else None, ls="--" if label == "random" else "-")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation ppl")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(ScalarFormatter())
    ax.legend(fontsize=7)
    return _finish(fig, title, caption, path, ax)


def belief_tau(summary, path=None, caption="", title="Kendall τ of each policy's beliefs vs ground truth"):
    """``summary``: columns policy, epoch, mean, min, max (over search seeds): one line per
    policy with a band from the worst to the best seed."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for policy, g in summary.groupby("policy"):
        g = g.sort_values("epoch")
        line, = ax.plot(g["epoch"], g["mean"], "-o", ms=3, label=f"{policy} (mean over seeds)")
        ax.fill_between(g["epoch"], g["min"].astype(float), g["max"].astype(float), alpha=0.15,
                        color=line.get_color())
    ax.axhline(0.0, color="#999999", lw=0.8, ls="--")
    ax.set_xlabel("search epoch / round")
    ax.set_ylabel("Kendall τ (1 = prefers the truly better)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(-1.05, 1.05)
    ax.legend(fontsize=8)
    return _finish(fig, title, caption, path, ax)
