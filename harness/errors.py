"""The errors the CLI turns into one clear line on stderr."""


class FacebenchError(Exception):
    """A problem with the user's input or files, explained in one line."""
