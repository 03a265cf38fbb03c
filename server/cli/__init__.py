"""`performer`: serve | token | verify | compact | export | import | migrate | chat | bench."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from engine.errors import EngineError
from server.cli.parser import build_parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line. `bench` hands everything after it to the suite as it is:
    argparse's REMAINDER does not take options that come first (`bench --servers ...`)."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and getattr(args, "rest", None) is not None:
        args.rest = [*unknown, *args.rest]
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("PERFORMER_LOG", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
