"""The one exception type users see.

Every failure caused by the user's input (a missing folder, a bad file name, a corrupt model) is
raised as :class:`EdgekitError` with a message that says what was wrong, where, and what to do.
The CLI prints it as one line and exits non-zero, without a traceback; anything else escaping is a
bug in edgekit and keeps its traceback.
"""


class EdgekitError(Exception):
    """A user-facing error; ``str(err)`` is the whole message."""
