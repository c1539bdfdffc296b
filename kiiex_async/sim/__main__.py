"""``python -m kiiex_async.sim [--host H] [--port P] [--state FILE] [--dialect D] ...``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ._config import DIALECTS, SimConfig
from ._faults import parse_fault_spec
from ._server import serve


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and serve until Ctrl-C / SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m kiiex_async.sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--state", default=None, help="JSON file that keeps the exchange state")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dialect", choices=DIALECTS, default="apex")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        type=parse_fault_spec,
        help="METHOD:KIND[:TIMES][:key=value] (repeatable), e.g. SendOrder:drop_after:1",
    )
    args = parser.parse_args(argv)
    serve(
        args.host,
        args.port,
        config=SimConfig(seed=args.seed, dialect=args.dialect),
        state_file=args.state,
        faults=args.fault,
    )


if __name__ == "__main__":
    main()
