"""`performer`: serve | token | verify | compact | export | import | migrate | chat | bench."""

from __future__ import annotations

import logging
import os
import sys

from engine.errors import EngineError
from server.cli.parser import build_parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("PERFORMER_LOG", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
