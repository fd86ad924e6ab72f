"""Error types for bad input: configs, scenarios and traces.

Each error carries one clear line naming the key, or the row and column, that is wrong; the CLIs
print that line and exit with code 2.
"""

from __future__ import annotations


class InputError(ValueError):
    """Base class of every bad-input error the project raises on purpose."""


class ConfigError(InputError):
    """A config or scenario key is missing, unknown, of the wrong type or out of range."""


class TraceError(InputError):
    """A trace file or trace row is malformed."""
