"""Every policy's option validation: a bad option value (or an unknown option or preset)
raises a ValueError that names the field, through the one entry point the study uses
(nas_eval.policies.check_options)."""
import pytest

from nas_eval.policies import check_options

DARTS = [
    ({"order": 3}, "order"), ({"order": True}, "order"), ({"arch_lr": 0.0}, "arch_lr"),
    ({"arch_beta1": 1.0}, "arch_beta1"), ({"arch_beta2": -0.1}, "arch_beta2"),
    ({"arch_eps": float("nan")}, "arch_eps"), ({"arch_weight_decay": -1e-3}, "arch_weight_decay"),
    ({"alpha_init": "big"}, "alpha_init"), ({"hvp_radius": 0}, "hvp_radius"), ({"batch_norm": 1}, "batch_norm"),
    ({"hidden_size": 0}, "hidden_size"), ({"batch_size": 1}, "batch_size"), ({"epochs": 2.5}, "epochs"),
    ({"max_steps_per_epoch": 0}, "max_steps_per_epoch"), ({"preset": "cpu", "epoch": 3}, "epoch"),
    ({"preset": "gpu"}, "gpu"),
]
ENAS = [
    ({"controller_steps": -1}, "controller_steps"), ({"temperature": 0}, "temperature"),
    ({"baseline_decay": 1.0}, "baseline_decay"), ({"sharing": "none"}, "sharing"),
    ({"entropy_mode": "bonus"}, "entropy_mode"), ({"restrict_s0": 1}, "restrict_s0"),
    ({"output": "sum"}, "output"), ({"reward_mode": "test"}, "reward_mode"),
    ({"final_scoring": "all"}, "final_scoring"), ({"shared_archs": 0}, "shared_archs"),
    ({"lr_decay": 0}, "lr_decay"), ({"epochs": 0}, "epochs"), ({"controler_steps": 5}, "controler_steps"),
    ({"controller_layers": 0}, "controller_layers"), ({"controller_layers": 5}, "controller_layers"),
    ({"derive_every": 0}, "derive_every"), ({"derive_every": 2.5}, "derive_every"),
    ({"preset": "huge"}, "huge"),
]
NAO = [
    ({"pool_size": 0}, "pool_size"), ({"pool_fraction": 0.0}, "pool_fraction"),
    ({"pool_fraction": 1.5}, "pool_fraction"), ({"eval_every": 0}, "eval_every"),
    ({"epochs": 0}, "epochs"), ({"controller_epochs": -1}, "controller_epochs"), ({"top_k": 0}, "top_k"),
    ({"max_new": -1}, "max_new"), ({"random_new": 1.5}, "random_new"), ({"max_step": 0}, "max_step"),
    ({"sharing": "cell"}, "sharing"), ({"hidden_size": 0}, "hidden_size"), ({"mlp_layers": 9}, "mlp_layers"),
    ({"dropout": 1.0}, "dropout"), ({"lr": float("nan")}, "lr"), ({"trade_off": 1.2}, "trade_off"),
    ({"batch_size": True}, "batch_size"), ({"shuffle": "yes"}, "shuffle"), ({"weight_decay": -1}, "weight_decay"),
    ({"max_grad_norm": float("inf")}, "max_grad_norm"), ({"emb_size": "48"}, "emb_size"),
    ({"mlp_hidden_size": 0}, "mlp_hidden_size"), ({"pool": 3}, "pool"), ({"preset": "gpu"}, "gpu"),
]
CASES = [("darts", *c) for c in DARTS] + [("enas", *c) for c in ENAS] + [("nao", *c) for c in NAO]


@pytest.mark.parametrize("policy, options, field", CASES)
def test_bad_options_raise_value_errors_naming_the_field(policy, options, field):
    with pytest.raises(ValueError, match=field):
        check_options(policy, options)
