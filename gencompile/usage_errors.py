"""Click's usage errors (a bad option value, a missing argument, an unknown option) as
every other refusal of gencompile: one line `error: ...` on stderr and exit code 2.

Typer draws them as the usage, a hint and a boxed paragraph; the root command group
turns them into a `UsageRefusal` (gencompile.errors), which the command line prints as
it prints any error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from typer.core import TyperGroup

from gencompile.errors import UsageRefusal

# Click's UsageError as this typer raises it: typer >= 0.20 vendors its own click, older
# ones use the installed one; `typer.BadParameter` is its subclass in both.
ClickUsageError: type[Exception] = next(
    kind for kind in typer.BadParameter.__mro__ if kind.__name__ == "UsageError"
)


class OneLineUsageGroup(TyperGroup):
    """The root group: its own and its subcommands' usage errors become `UsageRefusal`s
    (a subcommand's arguments are parsed inside the root's `invoke`)."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with one_line_usage():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with one_line_usage():
            return super().invoke(ctx)


@contextmanager
def one_line_usage() -> Iterator[None]:
    try:
        yield
    except ClickUsageError as error:
        if type(error).__name__ == "NoArgsIsHelpError":  # click shows the help itself
            raise
        raise UsageRefusal(usage_line(error)) from None


def usage_line(error: Any) -> str:
    """`invalid value for '--seed': Input should be ... (see gencompile sample --help)`."""
    message = " ".join(error.format_message().split()).rstrip(".")
    message = message[:1].lower() + message[1:]
    if error.ctx is None:
        return message
    # `latent {run} traverse`: the group's argument as typer shows it; RUN reads as a blank.
    command = re.sub(r"\{(\w+)\}", lambda name: name[1].upper(), error.ctx.command_path)
    return f"{message} (see `{command} --help`)"
