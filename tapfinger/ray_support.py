"""Joining Ray (an optional extra: ``pip install -e ".[ray]"``): a local Ray by default, a
cluster when an address is given. Used by :mod:`tapfinger.ray_evaluation` (``evaluate.py
--ray``) and :mod:`tapfinger.ray_collector` (``train.ray_address``); nothing else imports Ray.
"""

from __future__ import annotations

from typing import Any

from envs.errors import ConfigError


def require_ray() -> Any:
    """The ``ray`` module, or one clear error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError('Ray is not installed: pip install -e ".[ray]"') from None
    return ray


def connect(address: str | None) -> tuple[Any, bool]:
    """Join the Ray at ``address`` (``None`` or ``"local"``: start a local one, unless this
    process already joined one). Returns the module and whether this call started it."""
    ray = require_ray()
    if ray.is_initialized():
        return ray, False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if address and address != "local":
        kwargs["address"] = address
    ray.init(**kwargs)
    return ray, True


__all__ = ["connect", "require_ray"]
