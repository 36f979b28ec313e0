"""User-facing errors: one line that names the problem and the fix."""

import contextlib
from collections.abc import Iterable, Iterator

SHOWN = 5  # values an error message lists before "and N more"


class AbcError(Exception):
    """A problem the user can fix (bad input, config, cache or remote state).

    Rule scripts print its message as a single line instead of a traceback.
    """


class TransientError(AbcError):
    """A read that still failed after all retries on 5xx answers, timeouts or cut connections."""


def few(values: Iterable, shown: int = SHOWN) -> str:
    """The first values of a list for an error message: "'a', 'b' and 3 more"."""
    values = [v.item() if hasattr(v, "item") else v for v in values]
    listed = ", ".join(repr(v) for v in values[:shown])
    return listed + (f" and {len(values) - shown:,} more" if len(values) > shown else "")


@contextlib.contextmanager
def unreadable(what: str, fix: str = "delete it and rerun") -> Iterator[None]:
    """Turn low-level read errors (h5py's OSError/KeyError) into one-line `AbcError`s."""
    try:
        yield
    except (OSError, KeyError) as err:
        raise AbcError(f"could not read {what} ({err}): {fix}") from None
