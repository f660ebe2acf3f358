"""``python -m tests.fuzz [--target NAME] [--seconds N]``: fuzz for a bounded time.

Without ``--target`` every target runs in its own process (atheris exits the process when it
is done), the seconds shared between them; the exit status is non-zero if any found a crash.
Crash inputs are written under ``--artifacts`` (a temporary directory by default) and can be
replayed with ``python -m tests.fuzz --target NAME --replay FILE``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

NAMES = ("callback", "selector", "filter")
"""The targets in tests/fuzz/targets.py, named here so the parser module is imported only once
atheris instruments it."""


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--target", choices=NAMES, help="one target (default: all)")
    parser.add_argument("--seconds", type=int, default=60, help="total fuzzing time (default 60)")
    parser.add_argument("--artifacts", type=Path, help="where crash inputs go (default: a temp dir)")
    parser.add_argument("--replay", type=Path, help="run the target once on this input and exit")
    return parser.parse_args(argv)


def _fuzz_one(name: str, seconds: int, artifacts: Path) -> None:
    """Run atheris on one target in this process; atheris exits the process when done."""
    try:
        import atheris
    except ImportError:
        sys.exit("atheris is not installed: pip install -e '.[fuzz]'")
    with atheris.instrument_imports(include=["relay", "tests.fuzz"]):
        from tests.fuzz.targets import SEEDS, TARGETS
    corpus = Path(tempfile.mkdtemp(prefix=f"relay-fuzz-{name}-"))
    for n, seed in enumerate(SEEDS[name]):
        (corpus / f"seed{n}").write_bytes(seed)
    artifacts.mkdir(parents=True, exist_ok=True)
    args = [
        sys.argv[0],
        str(corpus),
        f"-max_total_time={max(1, seconds)}",
        f"-artifact_prefix={artifacts}/{name}-",
        "-max_len=4096",
        "-timeout=10",
        "-rss_limit_mb=1024",
        "-print_final_stats=1",
    ]
    atheris.Setup(args, TARGETS[name])
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    artifacts = args.artifacts or Path(tempfile.gettempdir()) / "relay-fuzz-artifacts"
    if args.replay is not None:
        from tests.fuzz.targets import TARGETS

        TARGETS[args.target or "callback"](args.replay.read_bytes())
        return 0
    if args.target is not None:
        _fuzz_one(args.target, args.seconds, artifacts)
        return 0
    share = max(1, args.seconds // len(NAMES))
    failed = []
    for name in NAMES:
        command = [sys.executable, "-m", "tests.fuzz", "--target", name, "--seconds", str(share)]
        command += ["--artifacts", str(artifacts)]
        print(f"fuzzing {name} for {share}s", flush=True)
        if subprocess.run(command, check=False).returncode != 0:
            failed.append(name)
    print(f"crashes found in: {', '.join(failed)} (inputs under {artifacts})" if failed else "no crash found")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
