"""The one exception type that means "the user can fix this": the CLI prints it as one line."""


class UserError(Exception):
    """A mistake in input, configuration or environment that the user can act on.

    The message is one line that says what is wrong and what to do.
    """
