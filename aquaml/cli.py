"""The ``aquaml`` command: ``train``, ``eval``, ``collect`` and ``export`` (:mod:`aquaml.apps.commands`), ``tune``
(:mod:`aquaml.tune.cli`) and ``plot`` (:mod:`aquaml.plot.cli`), each with its own parser.

Each command's module is imported only when it runs, so ``aquaml plot`` never loads JAX and
``aquaml train`` never loads Optuna or matplotlib.
"""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
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
