"""Distributed MuZero benchmark: throughput against the number of Ray self-play actors, and CartPole's time
to 475 with Ray actors beside the single process.

    python -m benchmarks.distributed --quick       # 1 and 2 actors, 1,200 env steps each; no time to threshold
    python -m benchmarks.distributed               # 1 and 2 actors (2,400 steps), then time to 475: single vs 2 actors
    python -m benchmarks.distributed --quick --actors 0 1 2 --steps 4800            # beside the single process
    python -m benchmarks.distributed --actors 1 2 4 8 --num-cpus 16 --steps 20000   # a larger machine

Throughput runs train CartPole-v1 (``n_envs`` = 4 per actor, ``FAST_CPU_SETTINGS``) for ``--steps`` env
steps with ``async_actors=K, actor_backend="ray"`` on a local Ray (``--num-cpus`` logical CPUs; the setup of
Ray and of the actors is excluded: rates are counted from the first stored step, after the first round).
A record: ``{"kind", "actors", "env_steps", "wall_s", "env_steps_per_s", "gradient_steps_per_s",
"actor_wait_share", "learner_wait_share", "reanalyse_wait_s", "actor_cpu_s", "learner_cpu_s"}``, where
``actor_wait_share`` is the actors' idle time (waiting for the next request with its weights) over their wall
time, and ``learner_wait_share`` the learner's time waiting for chunks over its wall time. Time-to-threshold
runs (``kind="threshold"``, 4 envs in all: 2 per actor with 2 actors) evaluate every ``--eval-every`` env steps on 20 episodes (deterministic search)
and stop at a mean of 475: ``{"kind", "mode", "seed", "steps_to_threshold", "wall_s_to_threshold",
"cpu_s_to_threshold"}`` (null when not reached within ``--threshold-steps``; evaluation time excluded).
Prints a table and writes ``records.json`` under ``--out`` (default ``runs/distributed/``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from gym_planning.agents.muzero import FAST_CPU_SETTINGS, MuZero, distributed

ENVS_PER_ACTOR = 4
# Time to 475: the same 4 envs in all (2 per actor with 2 actors), so that only acting apart differs.
THRESHOLD_ENVS = 4
THRESHOLD = 475.0


def _model(actors: int, seed: int, n_envs: int, **kwargs: Any) -> MuZero:
    backend = dict(async_actors=actors, actor_backend="ray") if actors else {}
    return MuZero("MlpPolicy", make_vec_env("CartPole-v1", n_envs=n_envs, seed=seed), seed=seed,
                  **FAST_CPU_SETTINGS, **backend, **kwargs)  # fmt: skip


class _Meter(BaseCallback):
    """Snapshots counters and phase times at the first stored step (after the actors started and sent their
    first chunks) and at the end, so that the rates are those of the running fleet."""

    def _snapshot(self) -> dict[str, Any]:
        model = self.model
        return dict(time=time.perf_counter(), cpu=time.process_time(), steps=model.num_timesteps,
                    updates=model._n_updates, actor_cpu=model.actor_cpu_seconds, phases=dict(model.phase_seconds))  # fmt: skip

    def _on_training_start(self) -> None:
        self.first: dict[str, Any] | None = None

    def _on_step(self) -> bool:
        if self.first is None:
            self.first = self._snapshot()
        return True

    def _on_training_end(self) -> None:
        self.last = self._snapshot()


def throughput(actors: int, steps: int, seed: int) -> dict[str, Any]:
    """Env steps/s, gradient steps/s and wait shares of one run with ``actors`` Ray actors (0: single process)."""
    model = _model(actors, seed, ENVS_PER_ACTOR * max(actors, 1), learning_starts=256)
    meter = _Meter()
    model.learn(steps, callback=meter)
    first, last = meter.first, meter.last
    assert first is not None
    wall = last["time"] - first["time"]
    spent = {k: v - first["phases"].get(k, 0.0) for k, v in last["phases"].items()}
    acting, idle = spent["search"] + spent["env"], spent.get("actor_idle", 0.0)
    return dict(
        kind="throughput",
        actors=actors,
        env_steps=last["steps"] - first["steps"],
        wall_s=round(wall, 2),
        env_steps_per_s=round((last["steps"] - first["steps"]) / wall, 1),
        gradient_steps_per_s=round((last["updates"] - first["updates"]) / wall, 1),
        actor_wait_share=round(idle / max(idle + acting, 1e-9), 3),
        learner_wait_share=round(spent.get("wait", 0.0) / wall, 3),
        reanalyse_wait_s=round(spent.get("reanalyse_wait", 0.0), 2),
        actor_cpu_s=round(last["actor_cpu"] - first["actor_cpu"], 1),
        learner_cpu_s=round(last["cpu"] - first["cpu"], 1),
    )


class _StopAtThreshold(BaseCallback):
    """Evaluates every ``every`` env steps (time excluded) and stops at a mean return of 475."""

    def __init__(self, every: int):
        super().__init__()
        self.every, self.next_eval = every, every
        self.eval_wall = self.eval_cpu = 0.0
        self.reached: tuple[int, float, float] | None = None
        self.start_wall, self.start_cpu = time.perf_counter(), time.process_time()

    def _on_step(self) -> bool:
        if self.num_timesteps < self.next_eval:
            return True
        self.next_eval += self.every
        wall, cpu = time.perf_counter(), time.process_time()
        env = make_vec_env("CartPole-v1", n_envs=4, seed=10_000)
        mean, _ = evaluate_policy(self.model, env, n_eval_episodes=20, deterministic=True)
        self.eval_wall += time.perf_counter() - wall
        self.eval_cpu += time.process_time() - cpu
        if mean >= THRESHOLD:
            model = self.model
            actor_cpu = getattr(model, "actor_cpu_seconds", 0.0)
            self.reached = (
                self.num_timesteps,
                time.perf_counter() - self.start_wall - self.eval_wall,
                time.process_time() - self.start_cpu - self.eval_cpu + actor_cpu,
            )
            return False
        return True


def time_to_threshold(actors: int, seed: int, max_steps: int, every: int) -> dict[str, Any]:
    """Env steps, wall and CPU seconds to CartPole's 475 (single process when ``actors == 0``)."""
    model = _model(actors, seed, THRESHOLD_ENVS)
    callback = _StopAtThreshold(every)
    model.learn(max_steps, callback=callback)
    steps, wall, cpu = callback.reached or (None, None, None)
    mode = f"ray x{actors}" if actors else "single process"
    return dict(kind="threshold", mode=mode, seed=seed, steps_to_threshold=steps,
                wall_s_to_threshold=None if wall is None else round(wall, 1),
                cpu_s_to_threshold=None if cpu is None else round(cpu, 1))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="throughput only (1,200 env steps per run unless --steps)")
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2], help="actor counts to measure (0: single process)")
    parser.add_argument("--steps", type=int, default=None, help="env steps per throughput run (default 2,400)")
    parser.add_argument("--num-cpus", type=int, default=2, help="logical CPUs of the local Ray")
    parser.add_argument("--seeds", type=int, default=1, help="seeds of the time-to-threshold runs")
    parser.add_argument("--threshold-steps", type=int, default=30_000, help="env-step budget to reach 475")
    parser.add_argument("--eval-every", type=int, default=2_000, help="env steps between evaluations")
    parser.add_argument("--out", type=Path, default=Path("runs/distributed"), help="folder for records.json")
    args = parser.parse_args()
    th.set_num_threads(1)
    ray = distributed.connect(num_cpus=max(args.num_cpus, max(args.actors)))
    steps = args.steps or (1_200 if args.quick else 2_400)
    records = [throughput(k, steps, seed=0) for k in args.actors]
    print(f"{'actors':>6} {'env steps/s':>12} {'grad steps/s':>13} {'actors wait':>12} {'learner waits':>14}")
    for r in records:
        print(f"{r['actors']:>6} {r['env_steps_per_s']:>12} {r['gradient_steps_per_s']:>13} "
              f"{r['actor_wait_share']:>12.1%} {r['learner_wait_share']:>14.1%}")  # fmt: skip
    if not args.quick:
        runs = [time_to_threshold(k, s, args.threshold_steps, args.eval_every) for s in range(args.seeds) for k in (0, 2)]
        print(f"{'mode':>15} {'seed':>5} {'steps to 475':>13} {'wall s':>8} {'cpu s':>8}")
        for r in runs:
            print(f"{r['mode']:>15} {r['seed']:>5} {r['steps_to_threshold']!s:>13} {r['wall_s_to_threshold']!s:>8} "
                  f"{r['cpu_s_to_threshold']!s:>8}")  # fmt: skip
        records += runs
    ray.shutdown()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "records.json").write_text(json.dumps(records, indent=2))
    print(f"records written to {args.out / 'records.json'} ({time.strftime('%Y-%m-%d')})")


if __name__ == "__main__":
    main()
