"""The long fuzz run: every target of ``tests/reliability`` with many inputs, one worker process each.

    python -m benchmarks.fuzz [--quick] [--examples N] [--seed S] [--targets sokoban go ...] [--json PATH]

Targets: Sokoban and Minipacman ``set_state`` with edited states then ``step`` with odd actions; Go ``step``
and ``set_state``; the search's model outputs (dtypes, shapes, extreme and non-finite values, masks,
embeddings) and settings. Prints, per target, the inputs tried, how many were accepted and how many refused
with a clear error, and the crashes: a dead worker (segfault, abort, hang), an unexpected exception, an
error that names no field, or a broken invariant. Writes the table and every crash's input as JSON under
``runs/`` (or ``--json PATH``). Workers run at ``nice 10``; the default sizes take about 5 minutes on a loaded
2-core machine, ``--quick`` a twentieth of them.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from tests.reliability.harness import TARGETS, run_target

# Inputs per target by default: about a minute of worker time each on a 2-core machine (search outputs are
# ~90 inputs/s: each runs a whole search with a Python model).
DEFAULT_EXAMPLES = {"sokoban": 25_000, "minipacman": 25_000, "go": 25_000, "search_outputs": 8_000,
                    "search_settings": 15_000}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=None, help="inputs per target (default: per-target sizes)")
    parser.add_argument("--quick", action="store_true", help="a twentieth of the default sizes")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: from the clock)")
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    parser.add_argument("--json", type=Path, default=None, help="where to write the results (default runs/fuzz-*.json)")
    args = parser.parse_args()
    seed = int(time.time()) if args.seed is None else args.seed
    print(f"fuzz seed {seed}\n")
    print(f"{'target':<16} {'inputs tried':>12} {'accepted':>9} {'clear errors':>12} {'crashes':>8} {'seconds':>8}")
    records = []
    for name in args.targets:
        examples = args.examples or DEFAULT_EXAMPLES[name] // (20 if args.quick else 1)
        record = run_target(name, examples, seed=seed, timeout=max(600.0, examples / 5))
        record["crashes"] += record["failures"]
        records.append(record)
        tried = "died" if record["examples"] is None else record["examples"]
        print(f"{name:<16} {tried:>12} {record['accepted'] or 0:>9} {record['clear_errors'] or 0:>12} "
              f"{record['crashes']:>8} {record['seconds']:>8}", flush=True)  # fmt: skip
    total = sum(r["examples"] or 0 for r in records)
    crashes = sum(r["crashes"] for r in records)
    print(f"{'total':<16} {total:>12} {'':>9} {'':>12} {crashes:>8}")
    for record in records:
        for example in record["failure_examples"]:
            print(f"\n{record['target']}: {example['why']}\n  input: {example['input'][:500]}")
    path = args.json or Path("runs") / f"fuzz-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    machine = dict(python=platform.python_version(), machine=platform.machine(), processor=platform.processor())
    path.write_text(json.dumps(dict(seed=seed, inputs=total, crashes=crashes, machine=machine, targets=records), indent=1))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
