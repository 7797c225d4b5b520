"""Search speed: gym_planning's Numba search beside mctx (JAX, CPU) on the same machine, same run.

    python -m benchmarks.search [--quick] [--pin CORE] [--json PATH] [--policies ...] [--batches ...]

Grid: batch 1 / 16 / 256 x actions 4 / 18 x 50 simulations, MuZero and Gumbel MuZero policies, a trivial
model (reward 0, discount 0.99, uniform prior, value 0). Ours runs twice: with the model as a Python
callback building numpy arrays (how a torch network plugs in) and with the model compiled by Numba
(``JitRecurrentFn``, how mctx runs: model and search in one compiled loop). mctx is jitted on the JAX
CPU backend. Figures are simulations per second (batch x simulations / wall time of one search call),
the median of several timed repeats after a warm-up. Also measured: the start-up of a fresh process
that imports the search and runs one search with the Numba cache warm.

``--pin CORE`` binds the whole process (ours and mctx, JAX's threads included) to one CPU core before
anything is imported, as ``taskset -c CORE`` would, so that both implementations get the same single
core and the figures do not depend on how many other cores are free. The CPU model (from
``/proc/cpuinfo``), the core count, the pinning and the library versions go into the JSON (written to
``runs/search-<UTC time>.json`` unless ``--json`` names another path), so each machine keeps its own table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Callable

import numpy as np

BATCHES = (1, 16, 256)
ACTIONS = (4, 18)
SIMULATIONS = 50
EMBEDDING_SIZE = 4


def _sims_per_second(search: Callable[[], object], batch: int, repeats: int, min_time: float,
                     clock: Callable[[], float] = time.perf_counter) -> float:  # fmt: skip
    search()  # warm-up: compilation and caches
    rates = []
    for _ in range(repeats):
        calls, start = 0, clock()
        while True:
            search()
            calls += 1
            elapsed = clock() - start
            if elapsed >= min_time:
                break
        rates.append(calls * batch * SIMULATIONS / elapsed)
    return statistics.median(rates)


def _ours(policy: str, model: str, batch: int, actions: int, threads: int = 1) -> Callable[[], object]:
    from benchmarks._search_models import jit_recurrent_fn, numpy_recurrent_fn
    from gym_planning.search import RootOutput, SearchConfig, run_policy

    root = RootOutput(np.zeros((batch, actions)), np.zeros(batch), np.zeros((batch, EMBEDDING_SIZE)))
    recurrent_fn = numpy_recurrent_fn(actions) if model == "numpy" else jit_recurrent_fn()
    config = SearchConfig(policy=policy, num_simulations=SIMULATIONS, num_threads=threads)
    rng = np.random.default_rng(0)
    return lambda: run_policy(config, root, recurrent_fn, rng=rng)


def _mctx(policy: str, batch: int, actions: int) -> Callable[[], object] | None:
    try:
        import jax
        import jax.numpy as jnp
        import mctx
    except ImportError:
        return None
    from benchmarks._search_models import DISCOUNT

    def recurrent_fn(params, rng_key, action, embedding):
        del params, rng_key, action
        output = mctx.RecurrentFnOutput(
            reward=jnp.zeros(batch),
            discount=jnp.full(batch, DISCOUNT),
            prior_logits=jnp.zeros((batch, actions)),
            value=jnp.zeros(batch),
        )
        return output, embedding + 1.0

    root = mctx.RootFnOutput(
        prior_logits=jnp.zeros((batch, actions)), value=jnp.zeros(batch), embedding=jnp.zeros((batch, EMBEDDING_SIZE))
    )
    policy_fn = mctx.muzero_policy if policy == "muzero" else mctx.gumbel_muzero_policy
    search = jax.jit(
        lambda key: policy_fn(params=(), rng_key=key, root=root, recurrent_fn=recurrent_fn, num_simulations=SIMULATIONS)
    )
    key = jax.random.PRNGKey(0)
    return lambda: jax.block_until_ready(search(key))


_STARTUP_SCRIPT = """
import time
start = time.perf_counter()
import numpy as np
from gym_planning.search import RootOutput, muzero_policy, gumbel_muzero_policy
from benchmarks._search_models import numpy_recurrent_fn
root = RootOutput(np.zeros((1, 4)), np.zeros(1), np.zeros((1, 4)))
muzero_policy(root, numpy_recurrent_fn(4), 8)
gumbel_muzero_policy(root, numpy_recurrent_fn(4), 8)
print(time.perf_counter() - start)
"""


def startup_seconds() -> float:
    """Wall time of a fresh process from import to the end of its first two searches (cache warm)."""
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    command = [sys.executable, "-c", _STARTUP_SCRIPT]
    subprocess.run(command, check=True, capture_output=True, env=env)  # fills the cache if empty
    return min(float(subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout) for _ in range(3))


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_record(pin: int | None) -> dict:
    """What the figures depend on: CPU, cores, pinning, load and library versions."""
    import numba

    record = dict(cpu=cpu_model(), cores=os.cpu_count(), pinned_core=pin, python=platform.python_version(),
                  numpy=np.__version__, numba=numba.__version__, load_average=os.getloadavg()[0],
                  utc=time.strftime("%Y-%m-%d %H:%M", time.gmtime()))  # fmt: skip
    try:
        import jax
        import mctx

        record.update(jax=jax.__version__, mctx=mctx.__version__)
    except ImportError:
        pass
    return record


def _pin(core: int) -> None:
    """Bind this process (and the threads it starts later) to ``core``."""
    if not hasattr(os, "sched_setaffinity"):
        raise SystemExit("--pin needs os.sched_setaffinity (Linux)")
    if core not in os.sched_getaffinity(0):
        raise SystemExit(f"--pin {core}: core not available; this process may use {sorted(os.sched_getaffinity(0))}")
    os.sched_setaffinity(0, {core})


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter repeats (under a minute)")
    parser.add_argument("--pin", metavar="CORE", type=int, help="run everything on this one CPU core (as taskset -c)")
    parser.add_argument("--json", metavar="PATH", help="where to write the records (default: runs/search-<time>.json)")
    parser.add_argument("--policies", nargs="+", choices=("muzero", "gumbel"), default=["muzero", "gumbel"])
    parser.add_argument("--batches", nargs="+", type=int, default=list(BATCHES))
    parser.add_argument("--actions", nargs="+", type=int, default=list(ACTIONS))
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: time.perf_counter; cpu: time.process_time (all threads' CPU time), "
                        "robust to other processes sharing a pinned core")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1,
                        help="SearchConfig.num_threads of our Numba-model search (measure with --clock wall and no --pin, "
                        "so that its threads have cores)")  # fmt: skip
    parser.add_argument("--no-mctx", action="store_true", help="measure gym_planning alone")
    parser.add_argument("--no-startup", action="store_true", help="skip the start-up measurement")
    args = parser.parse_args(argv)
    if args.pin is not None:
        _pin(args.pin)  # before jax is imported, so that its thread pool sees one core
    repeats, min_time = (2, 0.05) if args.quick else (7, 0.3)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter

    have_mctx = not args.no_mctx and _mctx("muzero", 1, 2) is not None
    if not have_mctx and not args.no_mctx:
        print("jax/mctx not installed (pip install 'gym-planning[bench]'): measuring gym_planning alone.\n")
    machine = machine_record(args.pin)
    machine["clock"] = args.clock
    machine["threads"] = args.threads
    pinned = f"pinned to core {args.pin}" if args.pin is not None else "not pinned"
    print(f"machine: {machine['cpu']}, {machine['cores']} cores, {pinned}, Python {machine['python']}, "
          f"load average {machine['load_average']:.2f}, {args.clock} clock")  # fmt: skip
    records: list[dict] = []
    header = f"{'policy':7} {'batch':>5} {'actions':>7} | {'ours: numpy model':>17} {'ours: numba model':>17} | {'mctx (jax cpu)':>14} | {'numpy/mctx':>10} {'numba/mctx':>10}"
    print(header)
    print("-" * len(header))
    for policy in args.policies:
        for batch in args.batches:
            for actions in args.actions:
                row = {}
                for model in ("numpy", "numba"):
                    threads = args.threads if model == "numba" else 1  # a Python model is searched in one thread
                    search = _ours(policy, model, batch, actions, threads)
                    row[model] = _sims_per_second(search, batch, repeats, min_time, clock)
                    records.append(dict(impl="gym_planning", model=model, policy=policy, batch=batch, actions=actions,
                                        simulations=SIMULATIONS, threads=threads, sims_per_s=row[model]))  # fmt: skip
                mctx_search = _mctx(policy, batch, actions) if have_mctx else None
                if mctx_search is not None:
                    row["mctx"] = _sims_per_second(mctx_search, batch, repeats, min_time, clock)
                    records.append(dict(impl="mctx", model="jax", policy=policy, batch=batch, actions=actions,
                                        simulations=SIMULATIONS, sims_per_s=row["mctx"]))  # fmt: skip
                mctx_rate = row.get("mctx")
                cells = [f"{row['numpy']:17,.0f}", f"{row['numba']:17,.0f}"]
                if mctx_rate:
                    cells += [f"{mctx_rate:14,.0f}", f"{row['numpy'] / mctx_rate:9.1f}x", f"{row['numba'] / mctx_rate:9.1f}x"]
                else:
                    cells += [f"{'-':>14}", f"{'-':>10}", f"{'-':>10}"]
                print(f"{policy:7} {batch:5d} {actions:7d} | {cells[0]} {cells[1]} | {cells[2]} | {cells[3]} {cells[4]}")
    if not args.no_startup:
        machine["startup_s"] = startup_seconds()
        print(f"\nstart-up of a fresh process to its first searches (Numba cache warm): {machine['startup_s']:.2f} s")
    path = args.json or os.path.join("runs", time.strftime("search-%Y%m%dT%H%M%SZ.json", time.gmtime()))
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(dict(machine=machine, records=records), f, indent=1)
    print(f"wrote {len(records)} records to {path}")
    return records


if __name__ == "__main__":
    main()
