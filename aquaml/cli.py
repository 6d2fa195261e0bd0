"""The ``aquaml`` command: ``train``, ``eval``, ``collect``, ``export`` and ``params``
(:mod:`aquaml.apps.commands`), ``tune`` (:mod:`aquaml.tune.cli`) and ``plot`` (:mod:`aquaml.plot.cli`),
each with its own parser.

Each command's module is imported only when it runs, so ``aquaml plot`` never loads JAX and
``aquaml train`` never loads Optuna or matplotlib. A missing optional package, wherever it is
found missing, is one line naming the extra that installs it, not a traceback.
"""
from __future__ import annotations

import sys

from aquaml.tools.console import fail
from aquaml.tools.imports import missing_extra


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return _dispatch(argv)
    except Exception as e:
        missing = missing_extra(e)
        if missing is None:
            raise
        return fail(str(missing))


def _dispatch(argv: list[str]) -> int:
    if argv[:1] == ["tune"]:  # aquaml tune ALGO ENV ... | aquaml tune best DIR | ...
        from aquaml.tune.cli import main as tune_main

        return tune_main(argv[1:])
    if argv[:1] == ["plot"]:  # aquaml plot curves|aggregate|table|tune|rosbag ...
        from aquaml.plot.cli import main as plot_main
        from aquaml.tune.cli import PLOT_STUDY

        return plot_main(argv[1:], extra={"tune": PLOT_STUDY})
    from aquaml.apps.commands import main as command_main

    return command_main(argv)


if __name__ == "__main__":
    sys.exit(main())
