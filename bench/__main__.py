"""``python -m bench [--quick] [--only ingest,delivery] [--profile] [--out DIR]``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import datetime
from pathlib import Path

import structlog

from bench.config import FULL, QUICK
from bench.run import DEFAULT_SUITES, SUITES, Options, publish, run

RESULTS = Path(__file__).with_name("results")


def parse(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run of about two minutes")
    parser.add_argument("--only", help=f"comma-separated, of: {', '.join(SUITES)}")
    parser.add_argument("--profile", action="store_true", help="also py-spy the hot paths")
    parser.add_argument("--rounds", type=int, help="runs per figure (default: 5 full, 2 quick)")
    parser.add_argument(
        "--no-wrk", action="store_true", help="use the aiohttp generator even if wrk is there"
    )
    parser.add_argument(
        "--baseline", default="main", help="tracing: the git revision to compare with (default main)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"where results go (default {RESULTS})")
    args = parser.parse_args(argv)
    suites = tuple(s.strip() for s in args.only.split(",")) if args.only else DEFAULT_SUITES
    if args.profile and "profile" not in suites:
        suites += ("profile",)
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    cfg = (QUICK if args.quick else FULL).with_rounds(args.rounds)
    return Options(
        cfg=cfg, suites=suites, out_dir=args.out, prefer_wrk=not args.no_wrk, baseline=args.baseline
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse(sys.argv[1:] if argv is None else argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    report = asyncio.run(run(opts, datetime.now()))
    publish(report, opts.out_dir)
    return 1 if report.skipped and any(v.startswith("failed") for v in report.skipped.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
