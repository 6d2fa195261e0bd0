"""Helpers every command line of the package shares: one-line errors, "did you mean", ``--set`` pairs,
``-q``/``-v``."""
from __future__ import annotations

import argparse
import difflib
import sys
from typing import Callable, Iterable
from pathlib import Path


def fail(message: str, prog: str = "aquaml") -> int:
    """Print a one-line error the way argparse does; the exit status 2."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 2


def first_line(error: BaseException) -> str:
    """An exception as one line (its type when it says nothing)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def did_you_mean(word: str, choices: Iterable[str], n: int = 3, show: Callable[[str], str] = str) -> str:
    """`` (did you mean X?)`` naming the choices closest to a mistyped ``word`` (each as ``show``
    writes it), or ``''``."""
    close = difflib.get_close_matches(word, list(choices), n=n)
    return f" (did you mean {' or '.join(map(show, close))}?)" if close else ""


def assignments(pairs: list[str]) -> dict[str, str]:
    """``--set key=value`` pairs as a dict of strings."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def check_output(path: str | Path, formats: tuple[str, ...], what: str) -> Path:
    """An output file's path, refused before any work if its suffix is not one of ``formats``."""
    path = Path(path)
    if path.suffix.lower() not in formats:
        raise ValueError(f"{path}: {what} are written as {', '.join(formats)}; choose one of those suffixes")
    return path


#: what a command prints: the result only, a line per evaluation (default), everything
QUIET, NORMAL, VERBOSE = 0, 1, 2


def add_verbosity(parser: argparse.ArgumentParser) -> None:
    """``-q/--quiet`` and ``-v/--verbose``; :func:`verbosity` reads them."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", help="print the result only")
    group.add_argument("-v", "--verbose", action="store_true", help="print more: each log row as a table, "
                       "each episode")


def verbosity(args: argparse.Namespace) -> int:
    """:data:`QUIET`, :data:`NORMAL` or :data:`VERBOSE` from the flags :func:`add_verbosity` adds."""
    return QUIET if args.quiet else VERBOSE if args.verbose else NORMAL


def interactive() -> bool:
    """Whether a person watches the output: a terminal or a notebook (where a progress bar
    redraws in place; in a file or a pipe each redraw would be another line)."""
    return sys.stderr.isatty() or "ipykernel" in sys.modules
