"""Error types for bad input: configs, scenarios and traces.

Each error carries one clear line naming the key, or the row and column, that is wrong; the CLIs
print that line and exit with code 2. :func:`file_errors` turns a file that cannot be read as
text (missing, a folder, binary, unreadable) into such a line too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class InputError(ValueError):
    """Base class of every bad-input error the project raises on purpose."""


class ConfigError(InputError):
    """A config or scenario key is missing, unknown, of the wrong type or out of range."""


class TraceError(InputError):
    """A trace file or trace row is malformed."""


@contextmanager
def file_errors(path: str | Path, error: type[InputError], what: str) -> Iterator[None]:
    """Read an input file inside this block: failures to read it become one ``error`` line.

    Decoding happens while the file is read, not when it is opened, so the whole reading code
    belongs inside the block; errors it raises on purpose (``InputError``) pass unchanged.

    Args:
        path: The file, as named in the messages.
        error: The error type raised (``ConfigError``, ``TraceError``).
        what: What the file is, for the not-found message (``"trace file"``).

    Raises:
        InputError: Of type ``error``, naming ``path``: not found, a folder, not UTF-8 text, or
            unreadable.
    """
    try:
        yield
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder, not a {what}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a text file (not UTF-8; a binary file?)") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from None
