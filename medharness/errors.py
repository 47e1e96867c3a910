"""The one exception type that means "the user can fix this": the CLI prints it as one line."""


class UserError(Exception):
    """A mistake in input, configuration or environment that the user can act on.

    The message is one line that says what is wrong and what to do.
    """


class Interrupted(Exception):
    """Ctrl-C during a run; says how far it got (finished samples are kept for the resume)."""

    def __init__(self, done: int | None, total: int | None) -> None:
        where = f" after {done} of {total} samples" if total is not None else " before the first sample"
        super().__init__(f"interrupted{where}; run the same command again to resume")


class SkippedWarning(UserWarning):
    """Something unreadable was left out (lines of a samples file, a run folder); the CLI shows
    it as one `warning:` line with the count, and the work goes on without it."""
