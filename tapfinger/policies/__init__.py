"""Policies: the rule-based baselines and the learned TapFinger policy, behind one registry."""

from tapfinger.policies import (  # noqa: F401  (importing a module registers its policies)
    drf,
    fifo,
    learned,
    min_policy,
    optimus,
    random_policy,
    sjf,
    srpt,
    tetris,
    tiresias,
)
from tapfinger.policies.registry import (
    Policy,
    PolicyEntry,
    make_policy,
    policy_entry,
    policy_names,
    register,
)

__all__ = ["Policy", "PolicyEntry", "make_policy", "policy_entry", "policy_names", "register"]
