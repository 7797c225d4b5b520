"""A small grid sweep of one algorithm's settings on one env, away from the evaluation seeds and levels.

    python -m benchmarks.tune --env gym_planning/Minipacman-v0 --algo PPO --grid learning_rate=0.00025,0.001
    python -m benchmarks.tune --env Sokoban7x7-v0 --algo DQN --grid learning_rate=0.0001,0.0005 --seed 100

Each setting trains one run (``benchmarks.learning.run``: the entry in ``gym_planning/hyperparams`` with the
setting on top) on seed ``--seed`` (default 100; the learning benchmark's evaluation seeds are 0.. plus 1000)
and is evaluated on the *training* split (``eval_env_kwargs`` dropped), so held-out mazes and levels never
choose a setting. The score of a setting is the mean return of its last two evaluations (DQN/PPO: with
deterministic or sampled actions, whichever is higher, as the learning benchmark reports them). Prints the
scores and writes the records as JSON under ``--out`` (default ``runs/tune/``).
"""

from __future__ import annotations

import argparse
import ast
import itertools
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.learning import ALGOS, Record, _run_in_subprocess, check_envs


def _parse_grid(text: str) -> tuple[str, list[Any]]:
    key, sep, values = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"--grid takes KEY=V1,V2,...; got {text!r}")
    return key, [ast.literal_eval(value) for value in values.split(",")]


def _score(record: Record) -> float:
    """Mean return of the last two evaluations, deterministic or sampled actions, whichever is higher."""
    curves = [[mean for _, mean, _ in record.curve], [mean for _, mean in record.stochastic]]
    return max(float(np.mean(curve[-2:])) for curve in curves if curve)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True, help="an env id with settings for --algo")
    parser.add_argument("--algo", required=True, choices=list(ALGOS))
    parser.add_argument("--grid", action="append", type=_parse_grid, required=True, help="KEY=V1,V2 (repeatable)")
    parser.add_argument("--seed", type=int, default=100, help="training seed (not an evaluation seed)")
    parser.add_argument("--steps", type=int, default=15_000)
    parser.add_argument("--eval-every", type=int, default=3750)
    parser.add_argument("--out", type=Path, default=Path("runs/tune"))
    args = parser.parse_args()
    check_envs([args.env], [args.algo])
    keys = [key for key, _ in args.grid]
    rows = []
    for values in itertools.product(*(values for _, values in args.grid)):
        overrides = {**dict(zip(keys, values)), "eval_env_kwargs": {}}  # evaluate on the training split
        record = _run_in_subprocess(args.algo, args.env, args.seed, args.steps, args.eval_every, "cpu", overrides)
        score = _score(record)
        print(f"{args.algo} {args.env} {dict(zip(keys, values))}: last two evaluations {score:.2f} "
              f"(curve {[round(mean, 1) for _, mean, _ in record.curve]}, sampled "
              f"{[round(mean, 1) for _, mean in record.stochastic]})", flush=True)  # fmt: skip
        rows.append({"setting": dict(zip(keys, values)), "score": score, "record": asdict(record)})
    best = max(rows, key=lambda row: row["score"])
    print(f"best: {best['setting']} ({best['score']:.2f})")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.algo}_{args.env.replace('/', '_')}.json"
    path.write_text(json.dumps(rows, indent=2))
    print(f"records written to {path}")


if __name__ == "__main__":
    main()
