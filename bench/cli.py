"""The dry-run CLI at scale: ``python -m shared.cli convert`` as a whole process (interpreter,
imports, reading, converting, writing the indented bundle to a pipe) on a 100,000-reading file
per source, against the in-process conversion of the same file measured in the same run (these
machines are noisy: read the ratio).

    python bench/cli.py [--readings 100000]

Target (the house issue): whole process at most 1.5x the in-process conversion.
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from convert import healthkit_payloads, withings_payloads  # noqa: E402 - bench/convert.py

from shared import conversion  # noqa: E402


def in_process_s(source: str, text: str) -> float:
    """The conversion alone, as a library caller gets it (freeing its result is not counted)."""
    started = time.perf_counter()
    converted = conversion.convert(source, conversion.DEFAULT_FORMATS[source], text, lambda _: "bench-patient")
    elapsed = time.perf_counter() - started
    del converted
    gc.collect()
    return elapsed


def whole_process_s(source: str, path: Path) -> float:
    command = [sys.executable, "-m", "shared.cli", "convert", "--source", source, "--patient", "bench-patient"]
    started = time.perf_counter()
    # stdout is a pipe that is read to the end, as a script reading the bundle would.
    result = subprocess.run([*command, str(path)], cwd=REPO, capture_output=True, check=False)  # noqa: S603
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"convert failed: {result.stderr.decode()[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per side; the best of each is kept")
    args = parser.parse_args()
    files = {
        "withings": withings_payloads(args.readings, per_answer=args.readings)[0],
        "healthkit": healthkit_payloads(args.readings, per_upload=args.readings)[0],
    }
    print(f"{'source':<10} {'readings':>9} {'MiB in':>7} {'in-process s':>13} {'process s':>10} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as folder:
        for source, text in files.items():
            path = Path(folder) / f"{source}.json"
            path.write_text(text)
            inside = outside = float("inf")
            for _ in range(args.repeat):  # interleaved, best of each: noise only ever adds time
                inside = min(inside, in_process_s(source, text))
                outside = min(outside, whole_process_s(source, path))
            print(
                f"{source:<10} {args.readings:>9} {len(text) / 2**20:>7.1f} {inside:>13.2f} {outside:>10.2f} "
                f"{outside / inside:>6.2f}"
            )


if __name__ == "__main__":
    main()
