"""Which algorithm ran: one line per policy for the report, naming its preset and every
deviation from the paper's behaviour that docs/fidelity.md records (issue 19).

A policy module adds its own rule with :func:`describes`; a policy without one is named with
its preset and a pointer to docs/fidelity.md.

>>> from nas_eval.policies import describe
>>> describe("ws-random", {})
"ws-random (this project's addition, not a policy of the paper): WS top-1 of 100 candidates, node sharing"
>>> describe("darts", {"preset": "paper-2node"})
"darts, preset paper-2node: as the paper's code (second order, per-pass dropout masks)"
"""
from dataclasses import fields

_RULES = {}
# the line's text for a config without deviations (default: "as the paper's code")
_SAME = {"darts": "as the paper's code (second order, per-pass dropout masks)"}


def describes(name, same=None):
    """Decorator: ``fn(config, recipe) -> list of deviation strings`` for policy ``name``;
    ``same``: what the line says when the list is empty (default "as the paper's code")."""
    def add(fn):
        _RULES[name] = fn
        if same is not None:
            _SAME[name] = same
        return fn
    return add


def describe_config(policy, config, preset=None, recipe=None):
    """One line: the policy, its preset and its deviations from the paper's behaviour, from
    its validated ``config`` (``recipe``: the study's search recipe, for the policies whose
    budget it sets). ``nas_eval.policies.describe(policy, options, recipe)`` validates first."""
    if policy == "random":
        return "random: the paper's baseline (one uniform draw per seed)"
    if policy == "ws-random":
        return (f"ws-random (this project's addition, not a policy of the paper): WS top-1 of "
                f"{config.candidates} candidates, {config.sharing} sharing")
    head = f"{policy}, preset {preset or 'default'}"
    rule = _RULES.get(policy)
    if rule is None:
        return f"{head}: see docs/fidelity.md"
    deviations = rule(config, recipe)
    return f"{head}: " + ("; ".join(deviations) if deviations else _SAME.get(policy, "as the paper's code"))


def _fmt(v):
    return f"{v:g}" if isinstance(v, float) else str(v)


def off_budget(config, budget, papers):
    """True when ``config``'s ``budget`` fields match none of the paper's settings ``papers``
    (configs of the same class): a scaled run, whose line names its budget."""
    return tuple(getattr(config, f) for f in budget) not in {tuple(getattr(p, f) for f in budget) for p in papers}


def budget_epochs(config, recipe):
    """A config's epochs as the line says them: its own, else the study's search recipe's."""
    return config.epochs if config.epochs is not None else recipe.epochs if recipe is not None else "the recipe's"


def field_deviations(config, ref, skip):
    """'name value (reference value)' for every field of ``config`` not in ``skip`` that differs
    from ``ref`` (the reference config)."""
    return [f"{f.name} {_fmt(getattr(config, f.name))} (reference {_fmt(getattr(ref, f.name))})"
            for f in fields(config) if f.name not in skip and getattr(config, f.name) != getattr(ref, f.name)]


@describes("darts")
def _darts(c, recipe):
    """Deviations of a DARTSConfig from the paper's DARTS (docs/fidelity.md "DARTS")."""
    ref, out = type(c)(), []  # DARTSConfig's defaults are the reference values
    if c.order != 2:
        out.append("first order (the paper: second order)")
    if c.masks != "per-pass":
        out.append("the alpha step's training-batch passes reuse the weight step's dropout masks "
                   "(the reference draws fresh masks in every pass)")
    if c.architect != "reference":
        out.append(f"architect {c.architect}: the paper code's cached unrolled model (its bug)")
    if c.bn_stats != "own-weights":
        out.append("batch-norm running statistics also updated by the Hessian-vector passes (the paper code's)")
    for field, label in (("arch_lr", "alpha lr"), ("arch_weight_decay", "alpha weight decay"),
                         ("alpha_init", "alpha init"), ("hvp_radius", "HVP radius")):
        if getattr(c, field) != getattr(ref, field):
            out.append(f"{label} {getattr(c, field):g} (reference {getattr(ref, field):g})")
    if not c.batch_norm:
        out.append("no batch norm in the mixed cell")
    if recipe is not None:
        r = c.recipe(recipe)
        if (r.hidden_size, r.batch_size, r.epochs) != (300, 256, 50) or r.max_steps_per_epoch or r.train_tokens:
            steps = f", <= {r.max_steps_per_epoch} steps/epoch" if r.max_steps_per_epoch else ""
            data = f", {r.train_tokens} training tokens" if r.train_tokens else ""
            out.append(f"scaled: d={r.hidden_size}, batch {r.batch_size}, {r.epochs} epochs{steps}{data} "
                       f"(reference d=300, batch 256, 50 epochs)")
    return out
