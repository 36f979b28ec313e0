"""User-facing errors: one line that names the problem and the fix."""


class AbcError(Exception):
    """A problem the user can fix (bad input, config, cache or remote state).

    Rule scripts print its message as a single line instead of a traceback.
    """
