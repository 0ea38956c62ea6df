"""The command line shared by workers and the long-running processes.

Every nowcast command takes the configuration file as its first argument.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

# Set by the ``nowcast`` command to the name it was called by ("nowcast manager"),
# so help texts show the command the user typed.
command_name: str | None = None

_USAGE_LINE = re.compile(r"^\s*Usage:")
_LITERAL = re.compile(r"``(.+?)``")


def plain_text(doc: str | None) -> str | None:
    """A docstring made into help text for the terminal: no reST markup, and no
    "Usage:" paragraph (argparse prints its own usage line)."""
    if not doc:
        return doc
    paragraphs, kept = doc.strip().split("\n\n"), []
    for paragraph in paragraphs:
        if _USAGE_LINE.match(paragraph):
            continue
        paragraph = _LITERAL.sub(r"\1", paragraph)
        paragraph = re.sub(r"(?<=\S)::$", ":", paragraph, flags=re.M)
        paragraph = re.sub(r"^\s*::$", "", paragraph, flags=re.M)
        kept.append(paragraph.rstrip())
    return "\n\n".join(p for p in kept if p.strip())


def command_parser(name: str, doc: str | None, **kwargs: Any) -> argparse.ArgumentParser:
    """A parser for the nowcast command ``name`` (``python -m nowcast.<module>`` or
    ``nowcast <name>``), its description the plain text of ``doc``."""
    prog = command_name or f"python -m nowcast.{name.replace('-', '_')}"
    return argparse.ArgumentParser(
        prog=prog, description=plain_text(doc), formatter_class=_help_formatter, **kwargs
    )


def print_out(text: str) -> None:
    """Print ``text``; when the reader has gone (``| head``), exit quietly."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)


def _help_formatter(prog: str) -> argparse.HelpFormatter:
    """argparse's formatter, told the terminal width here: left to itself it
    imports shutil (and with it bz2 and lzma) at every add_argument, about 3 ms of
    each worker's start-up."""
    try:
        width = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        try:
            width = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            width = 80
    return argparse.RawDescriptionHelpFormatter(prog, width=max(width - 2, 40))


class CommandLineInterface:
    """Build an ``argparse`` parser for the module ``package.module_name``."""

    def __init__(
        self, module_name: str, package: str = "nowcast", description: str | None = None
    ) -> None:
        self.module_name = module_name
        self.package = package
        self.description = description
        self.parser: argparse.ArgumentParser | None = None

    def build_parser(self, add_help: bool = True) -> None:
        """Create ``self.parser`` with its usage line and the ``config_file`` argument."""
        self.parser = argparse.ArgumentParser(
            description=plain_text(self.description),
            add_help=add_help,
            formatter_class=_help_formatter,
        )
        prefix = f"{self.package}." if self.package else ""
        self.parser.prog = command_name or f"python -m {prefix}{self.module_name}"
        self.parser.add_argument(
            "config_file", help="Path of the nowcast system's YAML configuration file."
        )

    def add_argument(self, *args: Any, **kwargs: Any) -> None:
        """Add an argument or option: ``argparse.ArgumentParser.add_argument``."""
        self.parser.add_argument(*args, **kwargs)

    def add_date_option(self, name: str, default: Any, help: str) -> None:
        """Add a ``YYYY-MM-DD`` date option whose value is an ``arrow.Arrow``.

        "Use YYYY-MM-DD format. Defaults to <default>." is appended to ``help``.
        """
        self.parser.add_argument(
            name,
            type=self.arrow_date,
            default=default,
            help=f"{help} Use YYYY-MM-DD format. Defaults to {default.format('YYYY-MM-DD')}.",
        )

    @staticmethod
    def arrow_date(string: str) -> Any:
        """Turn ``YYYY-MM-DD`` into an ``arrow.Arrow`` at 00:00 UTC.

        :raises argparse.ArgumentTypeError: for any other text.
        """
        import arrow

        try:
            return arrow.get(string, "YYYY-MM-DD")
        except (arrow.parser.ParserError, ValueError):
            raise argparse.ArgumentTypeError(
                f"unrecognized date: {string!r}; use YYYY-MM-DD"
            ) from None

    # NEMO_Nowcast's name for it
    _arrow_date = arrow_date
