"""Search speed of this checkout beside earlier git revisions of the search, in one process.

    python -m benchmarks.search_versions --rev 589f167 --rev main [--pin CORE] [--rounds 7] [--min-time 0.2]
        [--policies muzero gumbel] [--models numpy numba] [--cases 1x4 1x18 256x4 256x18]

Each revision's ``gym_planning/search`` is extracted with ``git archive`` into a temporary folder under a
package name of its own (``gp_<rev>.search``, its imports rewritten) and imported by a worker process of
its own (the working tree's search by one more); the workers, pinned like the parent, are timed alternately,
round after round, so the machine's load falls on all of them alike and the ratios hold even on a shared
machine where absolute figures do not. (One process per revision, not one for all: Numba's dispatchers
cache a tuple argument's type by the tuple's contents, so two revisions' ``TreeArrays`` records with the
same fields would share one cache entry, and the second would be retyped in Python at every call.) Time is CPU time (``time.process_time``); each cell is the median over ``--rounds`` rounds of the
simulations per CPU second of at least ``--min-time`` seconds of searches. The model is the trivial one
of :mod:`benchmarks.search` (numpy callback and Numba ``JitRecurrentFn``). Prints one table of ratios to
the first revision and writes JSON under ``runs/`` (``--json`` names another path).
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from multiprocessing.connection import Connection
from typing import Callable

import numpy as np

from benchmarks.search import EMBEDDING_SIZE, SIMULATIONS, _pin, machine_record

WORKTREE = "work"


def extract_revision(rev: str, root: str) -> str:
    """Extract ``gym_planning/search`` at ``rev`` into ``root/gp_<rev>/search``; returns the package name."""
    sha = subprocess.run(["git", "rev-parse", "--short", rev], check=True, capture_output=True, text=True).stdout.strip()
    package = f"gp_{sha}"
    archive = subprocess.run(["git", "archive", sha, "gym_planning/search"], check=True, capture_output=True).stdout
    target = os.path.join(root, package)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            source = tar.extractfile(member).read().decode()  # type: ignore[union-attr]
            path = os.path.join(target, os.path.relpath(member.name, "gym_planning"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(re.sub(r"\bgym_planning\.search\b", f"{package}.search", source))
    with open(os.path.join(target, "__init__.py"), "w") as f:
        f.write("")
    return package


def _search_fn(package: str, policy: str, model: str, batch: int, actions: int) -> Callable[[], object]:
    """One search call of ``package``'s search (``gym_planning`` for this checkout) on the trivial model."""
    search = importlib.import_module(f"{package}.search")
    if model == "numpy":

        def recurrent_fn(embedding: np.ndarray, action: np.ndarray):
            size = action.shape[0]
            output = search.RecurrentOutput(np.zeros(size), np.full(size, 0.99), np.zeros((size, actions)), np.zeros(size))
            return output, embedding + 1.0

        fn: object = recurrent_fn
    else:
        from benchmarks._search_models import _trivial_step

        fn = search.JitRecurrentFn(_trivial_step, np.array([0.99]))
    root = search.RootOutput(np.zeros((batch, actions)), np.zeros(batch), np.zeros((batch, EMBEDDING_SIZE)))
    policy_fn = search.muzero_policy if policy == "muzero" else search.gumbel_muzero_policy
    rng = np.random.default_rng(0)
    return lambda: policy_fn(root, fn, SIMULATIONS, rng=rng)


def _rate(search: Callable[[], object], batch: int, min_time: float) -> float:
    calls, start = 0, time.process_time()
    while True:
        search()
        calls += 1
        elapsed = time.process_time() - start
        if elapsed >= min_time:
            return calls * batch * SIMULATIONS / elapsed


def _worker(root: str, package: str, connection: Connection) -> None:
    """Serve timing requests ``(policy, model, batch, actions, min_time)`` for one revision's search;
    ``None`` ends it. Each new case is warmed up (compiled) before its first timing."""
    sys.path.insert(0, root)
    cases: dict[tuple, Callable[[], object]] = {}
    while (request := connection.recv()) is not None:
        policy, model, batch, actions, min_time = request
        key = (policy, model, batch, actions)
        if key not in cases:
            cases[key] = _search_fn(package, policy, model, batch, actions)
            cases[key]()
        connection.send(_rate(cases[key], batch, min_time))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", action="append", default=[], help="git revision to compare (repeatable); first = baseline")
    parser.add_argument("--pin", metavar="CORE", type=int, help="run on this one CPU core (as taskset -c)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.2)
    parser.add_argument("--policies", nargs="+", choices=("muzero", "gumbel"), default=["muzero", "gumbel"])
    parser.add_argument("--models", nargs="+", choices=("numpy", "numba"), default=["numpy", "numba"])
    parser.add_argument("--cases", nargs="+", default=["1x4", "1x18", "256x4", "256x18"], help="BATCHxACTIONS")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    if args.pin is not None:
        _pin(args.pin)  # the workers inherit the affinity
    root = tempfile.mkdtemp(prefix="search-versions-")
    packages = {rev: extract_revision(rev, root) for rev in args.rev}
    packages[WORKTREE] = "gym_planning"
    names = list(packages)
    context = multiprocessing.get_context("spawn")
    workers = {}
    for name in names:
        parent_end, child_end = context.Pipe()
        process = context.Process(target=_worker, args=(root, packages[name], child_end), daemon=True)
        process.start()
        workers[name] = (process, parent_end)
    machine = machine_record(args.pin)
    print(f"machine: {machine['cpu']}, load average {machine['load_average']:.2f}, pinned {args.pin}, CPU clock, "
          f"{args.rounds} rounds x {args.min_time} s; sims per CPU second, median")  # fmt: skip
    header = f"{'policy':7} {'model':6} {'case':>6} | " + " ".join(f"{n:>12}" for n in names) + " | ratio to " + names[0]
    print(header)
    print("-" * len(header))
    records = []
    try:
        for policy in args.policies:
            for model in args.models:
                for case in args.cases:
                    batch, actions = (int(x) for x in case.split("x"))
                    request = (policy, model, batch, actions, args.min_time)
                    rates: dict[str, list[float]] = {n: [] for n in names}
                    for _ in range(args.rounds):
                        for n in names:
                            workers[n][1].send(request)
                            rates[n].append(workers[n][1].recv())
                    median = {n: statistics.median(r) for n, r in rates.items()}
                    ratios = " ".join(f"{median[n] / median[names[0]]:5.2f}x" for n in names[1:])
                    cells = " ".join(f"{median[n]:12,.0f}" for n in names)
                    print(f"{policy:7} {model:6} {case:>6} | {cells} | {ratios}", flush=True)
                    records.append(dict(policy=policy, model=model, batch=batch, actions=actions, sims_per_cpu_s=median,
                                        rounds=rates))  # fmt: skip
    finally:
        for process, connection in workers.values():
            connection.send(None)
            process.join(timeout=10)
    machine["load_average_end"] = os.getloadavg()[0]
    path = args.json or os.path.join("runs", time.strftime("search-versions-%Y%m%dT%H%M%SZ.json", time.gmtime()))
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    result = dict(machine=machine, revisions={n: packages[n] for n in names}, records=records)
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
