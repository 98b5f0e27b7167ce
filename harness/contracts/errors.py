"""The errors the CLI turns into one clear line on stderr, and the exit codes it uses.

Exit codes, one rule for every command:

- 0: the work ran and passed.
- 1 (:data:`EXIT_FAILED`): the work ran and failed, or a comparison found a regression.
- 2 (:data:`EXIT_USAGE`): the command or its inputs are wrong (an unknown plug-in or run,
  a bad parameter, a missing corpus, more seeds than a folder holds); nothing ran.
- 130 (:data:`EXIT_INTERRUPTED`): interrupted (Ctrl-C); what was finished is kept.
"""

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class FacebenchError(Exception):
    """A problem with the user's input or files, explained in one line.

    ``exit_code`` is the code the CLI exits with; subclasses for wrong input use :data:`EXIT_USAGE`.
    """

    exit_code: int = EXIT_FAILED


class UsageError(FacebenchError):
    """The command or its inputs are wrong, found before any work: exit code 2."""

    exit_code = EXIT_USAGE


def one_line(exc: BaseException) -> str:
    """``exc`` as one line for a task's error: a FacebenchError's own text, else the type and the first line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, FacebenchError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
