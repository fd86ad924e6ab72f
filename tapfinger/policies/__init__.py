"""Policies: the rule-based baselines and the learned TapFinger policy, behind one registry."""

from tapfinger.policies import random_policy  # noqa: F401  (registers "random")
from tapfinger.policies.base import Policy, make_policy, policy_names, register

__all__ = ["Policy", "make_policy", "policy_names", "register"]
