"""The arguments the sweeps share, checked in the parent process before any work starts.

A misspelt loss model or a loss rate given in percent would otherwise fail inside a worker
process, as a traceback, after the pool started; here each fails with one line and exit
status 2 (``hfstream.apps.args.OneLineParser``), and ``--help`` shows every default.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import hfstream.arguments as a

LOSS_MODELS = ("bernoulli", "gilbert")  # ``sim.sweep.make_loss`` builds each


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """``--help`` keeps the module docstring's layout and shows each option's default."""


def parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    return a.OneLineParser(prog=prog, description=description, formatter_class=HelpFormatter)


def add_case_arguments(
    p: argparse.ArgumentParser,
    methods: tuple[str, ...],
    *,
    default_methods: tuple[str, ...] | None = None,
) -> None:
    """``--methods`` (of ``methods``; by default ``default_methods``, else all),
    ``--loss-models``, ``--rates``, ``--seeds``, ``--first-seed`` and ``--burst``: what a
    sweep's cases are made of."""
    for flag, names, default, what in (
        ("--methods", methods, default_methods or methods, "METHOD"),
        ("--loss-models", LOSS_MODELS, LOSS_MODELS, "MODEL"),
    ):
        p.add_argument(
            flag, nargs="+", default=list(default), choices=names, metavar=what,
            help=f"any of {', '.join(names)} (default: {' '.join(default)})",
        )  # fmt: skip
    p.add_argument(
        "--rates",
        nargs="+",
        type=a.share,
        default=[0.0, 0.1, 0.2, 0.3, 0.4],
        metavar="RATE",
        help="loss rates, shares of packets from 0 to below 1 (0.2, not 20)",
    )
    p.add_argument("--seeds", type=a.positive_int, default=2, help="loss realizations per case")
    p.add_argument(
        "--first-seed",
        type=a.non_negative_int,
        default=0,
        help="the first realization's seed (--seeds 2 --first-seed 2: seeds 2 and 3)",
    )
    p.add_argument(
        "--burst", type=a.positive_float, default=3.0, help="mean loss burst (gilbert), packets"
    )


def image_files(p: argparse.ArgumentParser, folder: str, limit: int | None) -> list[Path]:
    """The images in ``folder`` (the first ``limit``), or one line and exit 2 through
    ``p.error`` when it is missing or holds none."""
    from hfstream.media.images import list_images

    try:
        return list_images(folder)[:limit]
    except FileNotFoundError as e:
        p.error(str(e))
