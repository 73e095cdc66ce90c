"""The evaluation protocol of the paper's Figure 1c as a plan of content-addressed jobs
(docs/design.md §7).

For each policy and search seed s: search with seed s -> a_s; draw the uniform random
architecture of seed s -> r_s; retrain both from scratch with the same recipe and the same
fixed training seed. Beside it, where asked: the ground truth (every architecture of the
space, K seeds), the weight-sharing ranking (WS seeds), and the amount-of-sharing experiment
(3-node subspace, node-level sharing and the no-sharing control).

Job kinds (run by ``nas_eval.jobkinds``): ``train`` (one standalone training: ground truth
and retraining share it, so a pick retrained with the training seed reuses a ground-truth
run), ``search`` (one policy run) and ``ws`` (one super-net seed scoring a set of archs).
Params hold everything that changes an outcome and nothing machine-specific.
"""
from . import policies
from .jobs import Job
from .space import SearchSpace, sharing_space


def train_job(spec, arch, seed, n_nodes=None):
    space = SearchSpace(n_nodes or spec.n_nodes)
    return Job("train", {"n_nodes": space.n_nodes, "arch": str(arch), "arch_id": space.index(arch),
                         "corpus": spec.corpus, "config": spec.train.to_dict(), "seed": int(seed)})


def search_job(spec, policy, seed):
    return Job("search", {"n_nodes": spec.n_nodes, "policy": policy, "corpus": spec.corpus,
                          "config": spec.search.to_dict(), "seed": int(seed),
                          "options": spec.policy_options.get(policy, {})})


def ws_job(spec, archs, seed, sharing="node", n_nodes=None, epochs=None):
    space = SearchSpace(n_nodes or spec.n_nodes)
    return Job("ws", {"n_nodes": space.n_nodes, "archs": [str(a) for a in archs],
                      "corpus": spec.corpus, "config": spec.search.to_dict(), "seed": int(seed),
                      "eval_epochs": list(epochs or spec.eval_epochs), "sharing": sharing})


# --- the plan ------------------------------------------------------------------------------
def plan_first_phase(spec):
    """Jobs that need nothing else: ground truth, WS rankings, searches, random baselines,
    and the amount-of-sharing experiment. Returns {role: [(label, Job)]}."""
    space = spec.space
    plan = {"ground_truth": [], "ws": [], "search": [], "random": [], "sharing_gt": [], "sharing_ws": []}
    if spec.gt_seeds:
        plan["ground_truth"] = [((space.index(a), s), train_job(spec, a, s)) for a in space for s in spec.gt_seeds]
    if spec.ws_seeds:
        plan["ws"] = [(s, ws_job(spec, list(space), s)) for s in spec.ws_seeds]
    # the random policy's pick of seed s is the baseline r_s itself: no separate search
    plan["search"] = [((p, s), search_job(spec, p, s)) for p in spec.policies if p != "random"
                      for s in spec.seeds]
    plan["random"] = [(s, train_job(spec, policies.random_arch(space, s), spec.train_seed)) for s in spec.seeds]
    if spec.sharing:
        sub = sharing_space(spec.sharing_fixed)
        archs = list(sub)
        plan["sharing_gt"] = [((sub.parent.index(a), s), train_job(spec, a, s, n_nodes=sub.n_nodes))
                              for a in archs for s in spec.sharing_gt_seeds]
        plan["sharing_ws"] = [((sharing, s), ws_job(spec, archs, s, sharing=sharing, n_nodes=sub.n_nodes))
                              for sharing in ("node", "none") for s in spec.sharing_ws_seeds]
    return plan


def plan_retrains(spec, picks):
    """Retraining jobs of the policies' picks: ``picks`` maps (policy, seed) -> Arch."""
    return [((policy, seed), train_job(spec, arch, spec.train_seed)) for (policy, seed), arch in picks.items()]
