"""Learning benchmark: MuZero against rl-zoo3-tuned DQN and PPO at the same number of env steps.

    python -m benchmarks.learning                 # CartPole-v1 and Acrobot-v1, 1 seed, 20,000 env steps each
    python -m benchmarks.learning --quick         # CartPole-v1 only, 1 seed, 8,000 env steps for every agent
    python -m benchmarks.learning --envs CartPole-v1 --seeds 3 --eval-every 1000 --stop-at-threshold --fast-cpu
                                                  # the speed comparison (issue 10): PPO/DQN with rl-zoo budgets
    python -m benchmarks.learning --algos MuZero --set num_simulations=8 --set batch_size=64  # a MuZero variant

MuZero trains for ``--steps`` env steps (default 20,000); DQN and PPO for ``--baseline-steps`` (default
``zoo``: rl-baselines3-zoo's ``n_timesteps``, CartPole-v1 PPO 1e5 and DQN 5e4, Acrobot-v1 PPO 1e6 and DQN
1e5; their learning-rate and clip schedules depend on it), so that the baselines' time to the threshold
exists on every seed when run with ``--stop-at-threshold``. Every ``--eval-every`` env steps each agent is evaluated on 20 episodes (MuZero: deterministic search;
DQN/PPO: deterministic policy). Prints a table of time and env steps to the threshold, throughput and
(MuZero) where the wall time went, the learning curves, and writes under ``--out`` (default
``runs/learning/``) the records as ``records.json`` and the curves as ``learning_curves.png``.
A record: ``{"algo", "env", "seed", "env_steps", "steps_to_threshold", "wall_s_to_threshold",
"final_mean_return", "wall_s", "train_wall_s", "eval_wall_s", "cpu_s_to_threshold", "train_cpu_s", "env_steps_per_s", "gradient_steps_per_s",
"phase_share", "device", "settings", "curve"}`` (threshold: 475 on CartPole-v1, -100 on Acrobot-v1; the
"to threshold" fields are null if never reached). ``wall_s_to_threshold`` and the throughputs exclude
evaluation time; ``cpu_s_to_threshold`` and ``train_cpu_s`` are the process CPU seconds over the same
spans (``time.process_time``, plus MuZero's actor process when ``async_actors`` > 0), a figure that
other jobs on a shared machine disturb less than wall time; ``phase_share`` splits MuZero's training wall time into acting search, env steps,
target building (sampling, value targets, reanalyse), gradient steps and the rest (logging, callbacks);
with ``async_actors=1`` search and env steps happen in the actor process beside the learner, whose
``wait`` share is the time it waited for the actor's chunks.
Each run trains in a fresh process of its own (``--in-process`` to share one), torch single-threaded.
"""

from __future__ import annotations

import argparse
import ast
import json
import multiprocessing
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv, VecNormalize, sync_envs_normalization

from gym_planning.agents.muzero import FAST_CPU_SETTINGS, MuZero

THRESHOLDS = {"CartPole-v1": 475.0, "Acrobot-v1": -100.0}
# rl-baselines3-zoo's n_timesteps (hyperparams/ppo.yml, dqn.yml): the budget the tuned settings were made for.
ZOO_STEPS = {"CartPole-v1": {"PPO": 100_000, "DQN": 50_000}, "Acrobot-v1": {"PPO": 1_000_000, "DQN": 100_000}}
EVAL_EPISODES = 20
MUZERO_N_ENVS = 4


@dataclass
class Record:
    """One training run (an entry of ``records.json``), with its learning curve."""

    algo: str
    env: str
    seed: int
    env_steps: int
    steps_to_threshold: int | None
    wall_s_to_threshold: float | None  # training wall time at the first evaluation >= threshold
    cpu_s_to_threshold: float | None  # training CPU time (all of the run's processes) at that evaluation
    final_mean_return: float
    wall_s: float  # whole run, evaluations included
    train_wall_s: float  # evaluations excluded
    eval_wall_s: float
    train_cpu_s: float  # CPU seconds of training (evaluations excluded), actor process included
    env_steps_per_s: float
    gradient_steps_per_s: float
    device: str
    settings: dict[str, Any] = field(default_factory=dict)
    phase_share: dict[str, float] = field(default_factory=dict)  # MuZero: share of train_wall_s per phase
    curve: list[tuple[int, float, float]] = field(default_factory=list)  # (env steps, mean return, train wall s)
    cpu_curve: list[float] = field(default_factory=list)  # train CPU s at each point of ``curve``
    policy_head_return: float | None = None  # MuZero only: final return acting with the raw policy head


def _linear(initial: float):
    """rl-zoo's ``lin_<initial>``: decays linearly with the remaining progress (1 -> 0)."""
    return lambda progress_remaining: progress_remaining * initial


def make_muzero(env_id: str, seed: int, device: str, overrides: dict[str, Any]) -> BaseAlgorithm:
    settings = dict(overrides)
    n_envs = settings.pop("n_envs", MUZERO_N_ENVS)
    # MuZero's defaults are the recommended classic-control settings (docs/muzero.md).
    return MuZero("MlpPolicy", make_vec_env(env_id, n_envs=n_envs, seed=seed), seed=seed, device=device, **settings)


def make_dqn(env_id: str, seed: int, device: str, overrides: dict[str, Any]) -> BaseAlgorithm:
    """rl-baselines3-zoo ``hyperparams/dqn.yml`` (tuned entries)."""
    if env_id == "CartPole-v1":
        settings = dict(
            learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000, gamma=0.99,
            target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
            exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[256, 256]),
        )  # fmt: skip
    else:
        settings = dict(
            learning_rate=6.3e-4, batch_size=128, buffer_size=50_000, learning_starts=0, gamma=0.99,
            target_update_interval=250, train_freq=4, gradient_steps=-1, exploration_fraction=0.12,
            exploration_final_eps=0.1, policy_kwargs=dict(net_arch=[256, 256]),
        )  # fmt: skip
    env = make_vec_env(env_id, n_envs=1, seed=seed)
    return DQN("MlpPolicy", env, seed=seed, device=device, **{**settings, **overrides})


def make_ppo(env_id: str, seed: int, device: str, overrides: dict[str, Any]) -> BaseAlgorithm:
    """rl-baselines3-zoo ``hyperparams/ppo.yml``."""
    if env_id == "CartPole-v1":
        env = make_vec_env(env_id, n_envs=8, seed=seed)
        settings = dict(
            n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
            learning_rate=_linear(1e-3), clip_range=_linear(0.2),
        )  # fmt: skip
    else:
        env = VecNormalize(make_vec_env(env_id, n_envs=16, seed=seed))
        settings = dict(n_steps=256, gae_lambda=0.94, gamma=0.99, n_epochs=4, ent_coef=0.0)
    return PPO("MlpPolicy", env, seed=seed, device=device, **{**settings, **overrides})


FACTORIES = {"MuZero": make_muzero, "DQN": make_dqn, "PPO": make_ppo}


class EvalCurve(BaseCallback):
    """Evaluates the model every ``eval_every`` env steps (and at the end); records the curve against
    training wall time (evaluation time is counted apart, in ``eval_seconds``)."""

    def __init__(self, eval_env: VecEnv, eval_every: int, threshold: float, stop_at_threshold: bool):
        super().__init__()
        self.eval_env = eval_env
        self.eval_every = eval_every
        self.next_eval = eval_every
        self.threshold = threshold
        self.stop_at_threshold = stop_at_threshold
        self.start_time = time.perf_counter()
        self.start_cpu = time.process_time()
        self.eval_seconds = 0.0
        self.eval_cpu_seconds = 0.0
        self.curve: list[tuple[int, float, float]] = []
        self.cpu_curve: list[float] = []

    def train_seconds(self) -> float:
        return time.perf_counter() - self.start_time - self.eval_seconds

    def train_cpu_seconds(self) -> float:
        """CPU seconds of training: this process's (evaluations excluded) plus MuZero's actor process."""
        actor = getattr(self.model, "actor_cpu_seconds", 0.0)
        return time.process_time() - self.start_cpu - self.eval_cpu_seconds + actor

    def evaluate(self) -> float:
        start, start_cpu = time.perf_counter(), time.process_time()
        if isinstance(self.eval_env, VecNormalize):
            sync_envs_normalization(self.training_env, self.eval_env)
        mean, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=EVAL_EPISODES, warn=False)
        self.eval_seconds += time.perf_counter() - start
        self.eval_cpu_seconds += time.process_time() - start_cpu
        self.curve.append((self.num_timesteps, float(mean), round(self.train_seconds(), 2)))
        self.cpu_curve.append(round(self.train_cpu_seconds(), 2))
        return float(mean)

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_eval:
            self.next_eval += self.eval_every
            if self.evaluate() >= self.threshold and self.stop_at_threshold:
                return False
        return True


def run(
    algo: str, env_id: str, seed: int, env_steps: int, eval_every: int, device: str,
    overrides: dict[str, Any] | None = None, stop_at_threshold: bool = False,
) -> Record:  # fmt: skip
    """Train one agent in this process and return its record."""
    th.set_num_threads(1)
    start = time.perf_counter()
    overrides = dict(overrides or {})
    model = FACTORIES[algo](env_id, seed, device, overrides)
    eval_env = make_vec_env(env_id, n_envs=10, seed=seed + 1000)
    if isinstance(model.get_env(), VecNormalize):
        eval_env = VecNormalize(eval_env, training=False, norm_reward=False)
    callback = EvalCurve(eval_env, eval_every, THRESHOLDS[env_id], stop_at_threshold)
    model.learn(env_steps, callback=callback)
    train_wall_s, train_cpu_s = callback.train_seconds(), callback.train_cpu_seconds()
    if not callback.curve or callback.curve[-1][0] < model.num_timesteps:
        callback.evaluate()
    reached = [
        (steps, wall, cpu)
        for (steps, mean, wall), cpu in zip(callback.curve, callback.cpu_curve)
        if mean >= THRESHOLDS[env_id]
    ]
    head, share = None, {}
    if isinstance(model, MuZero):
        head = float(evaluate_policy(model.policy, eval_env, n_eval_episodes=EVAL_EPISODES, warn=False)[0])
        share = {phase: seconds / train_wall_s for phase, seconds in model.phase_seconds.items()}
        # With an actor process, search and env steps run beside the learner: "other" is the learner's rest.
        beside = ("search", "env") if model.async_actors else ()
        share["other"] = 1.0 - sum(value for phase, value in share.items() if phase not in beside)
        share = {phase: round(value, 3) for phase, value in share.items()}
    return Record(
        algo=algo,
        env=env_id,
        seed=seed,
        env_steps=model.num_timesteps,
        steps_to_threshold=reached[0][0] if reached else None,
        wall_s_to_threshold=reached[0][1] if reached else None,
        cpu_s_to_threshold=reached[0][2] if reached else None,
        final_mean_return=callback.curve[-1][1],
        wall_s=round(time.perf_counter() - start, 1),
        train_wall_s=round(train_wall_s, 1),
        eval_wall_s=round(callback.eval_seconds, 1),
        train_cpu_s=round(train_cpu_s, 1),
        env_steps_per_s=round(model.num_timesteps / train_wall_s, 1),
        gradient_steps_per_s=round(model._n_updates / train_wall_s, 1),
        device=str(model.device),
        settings={key: repr(value) for key, value in overrides.items()},
        phase_share=share,
        curve=callback.curve,
        cpu_curve=callback.cpu_curve,
        policy_head_return=head,
    )


def _run_and_send(connection: Any, *args: Any) -> None:
    try:
        connection.send(run(*args))
    except BaseException as error:  # noqa: BLE001 -- re-raised in the parent
        connection.send(error)


def _run_in_subprocess(*args: Any) -> Record:
    # A fresh process per run: no run inherits another's threads, caches or allocator state. Not a Pool
    # worker: those are daemonic and cannot start MuZero's actor process (async_actors=1).
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_run_and_send, args=(sender, *args))
    process.start()
    sender.close()
    result = receiver.recv()
    process.join()
    if isinstance(result, BaseException):
        raise result
    return result


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(records: list[Record]) -> None:
    print(f"\n{'algo':<7} {'env':<12} {'seed':>4} {'env steps':>9} {'steps to thr.':>13} {'train s to thr.':>15} "
          f"{'CPU s to thr.':>13} {'final':>6} {'train s':>7} {'CPU s':>6} {'eval s':>6} {'env st/s':>8} "
          f"{'grad st/s':>9}  device")  # fmt: skip
    for r in records:
        print(
            f"{r.algo:<7} {r.env:<12} {r.seed:>4} {r.env_steps:>9} {_fmt(r.steps_to_threshold, 'd'):>13} "
            f"{_fmt(r.wall_s_to_threshold, '.1f'):>15} {_fmt(r.cpu_s_to_threshold, '.1f'):>13} "
            f"{r.final_mean_return:>6.1f} {r.train_wall_s:>7.1f} {r.train_cpu_s:>6.1f} {r.eval_wall_s:>6.1f} "
            f"{r.env_steps_per_s:>8.0f} {r.gradient_steps_per_s:>9.1f}  {r.device}"
        )
    print_summary(records)
    for r in records:
        if r.phase_share:
            shares = ", ".join(f"{phase} {share:.0%}" for phase, share in r.phase_share.items())
            print(f"{r.algo} {r.env} seed {r.seed}: training wall time: {shares}; final return with search "
                  f"{r.final_mean_return:.1f}, raw policy head {r.policy_head_return:.1f}")  # fmt: skip
    print("\nmean evaluation return (20 episodes) vs env steps (train wall s):")
    for r in records:
        points = "  ".join(f"{steps}:{mean:.0f}({wall:.0f}s)" for steps, mean, wall in r.curve)
        print(f"  {r.algo:<7} {r.env:<12} seed {r.seed}: {points}")


def _median_or_never(values: list[float | None]) -> float | None:
    """Median where a run that never reached the threshold counts as infinitely late (None if the median is)."""
    ordered = sorted(np.inf if v is None else v for v in values)
    median = float(np.median(ordered)) if ordered else np.inf
    return None if not np.isfinite(median) else median


def print_summary(records: list[Record]) -> None:
    """Median (over seeds) time and env steps to threshold per algorithm, and MuZero's ratio to each."""
    print("\nmedian over seeds (a run that never reached the threshold counts as never):")
    for env_id in sorted({r.env for r in records}):
        medians = {}
        for algo in FACTORIES:
            runs = [r for r in records if r.env == env_id and r.algo == algo]
            if runs:
                medians[algo] = (
                    _median_or_never([r.wall_s_to_threshold for r in runs]),
                    _median_or_never([r.cpu_s_to_threshold for r in runs]),
                    _median_or_never([r.steps_to_threshold for r in runs]),
                    len(runs),
                )
        for algo, (wall, cpu, steps, n) in medians.items():
            print(f"  {env_id} {algo:<7} ({n} seeds): train s to threshold {_fmt(wall, '.1f')} "
                  f"(CPU s {_fmt(cpu, '.1f')}), env steps {_fmt(steps, '.0f')}")  # fmt: skip
        muzero = medians.get("MuZero")
        for algo in ("PPO", "DQN"):
            base = medians.get(algo)
            if muzero is None or base is None:
                continue
            for label, index in (("train wall time", 0), ("CPU time", 1), ("env steps", 2)):
                if muzero[index] is not None and base[index] is not None:
                    print(f"  {env_id} MuZero / {algo} {label} to threshold: {muzero[index] / base[index]:.2f}")


def plot(records: list[Record], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = sorted({r.env for r in records})
    fig, axes = plt.subplots(2, len(envs), figsize=(6 * len(envs), 8), squeeze=False)
    colors = {algo: f"C{i}" for i, algo in enumerate(FACTORIES)}
    for column, env_id in enumerate(envs):
        for row, (x_index, x_label) in enumerate(((0, "env steps"), (2, "training wall time (s, evaluation excluded)"))):
            ax = axes[row][column]
            for r in (r for r in records if r.env == env_id):
                xs, means = zip(*[(point[x_index], point[1]) for point in r.curve])
                first = r.seed == min(x.seed for x in records if x.algo == r.algo and x.env == env_id)
                ax.plot(xs, means, marker="o", markersize=3, color=colors.get(r.algo), alpha=0.8,
                        label=r.algo if first else None)  # fmt: skip
            ax.axhline(THRESHOLDS[env_id], color="grey", linestyle="--", linewidth=1)
            seeds = len({r.seed for r in records if r.env == env_id})
            ax.set(title=f"{env_id} ({seeds} seed{'s' * (seeds > 1)}, one line each)", xlabel=x_label)
            ax.set(ylabel=f"mean return ({EVAL_EPISODES} episodes)")
            ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    print(f"learning curves written to {path}")


def _parse_override(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"--set takes KEY=VALUE (a MuZero keyword argument); got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value  # a bare string such as search=gumbel


def _baseline_steps(text: str, env_id: str, algo: str) -> int:
    """DQN/PPO's env steps: rl-zoo's budget for ``text == "zoo"``, else the number ``text``."""
    if text == "zoo":
        return ZOO_STEPS[env_id][algo]
    try:
        return int(float(text))
    except ValueError:
        raise SystemExit(f"--baseline-steps takes 'zoo' or a number of env steps; got {text!r}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CartPole-v1 only, one seed, 8,000 env steps")
    parser.add_argument("--out", type=Path, default=Path("runs/learning"), help="folder for records.json and the plot")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per (algo, env)")
    parser.add_argument("--first-seed", type=int, default=0, help="first seed (runs seeds first .. first + seeds - 1)")
    parser.add_argument("--steps", type=int, default=None, help="MuZero's env steps per run (default 20,000; quick 8,000)")
    parser.add_argument("--baseline-steps", default=None,
                        help="DQN/PPO env steps per run: 'zoo' (rl-zoo's n_timesteps, ZOO_STEPS; the default) "
                             "or a number (default with --quick: MuZero's steps)")  # fmt: skip
    parser.add_argument("--eval-every", type=int, default=2000, help="env steps between evaluations")
    parser.add_argument("--algos", nargs="+", default=list(FACTORIES), choices=list(FACTORIES))
    parser.add_argument("--envs", nargs="+", default=list(THRESHOLDS), choices=list(THRESHOLDS))
    parser.add_argument("--device", default="auto", help="torch device for all agents")
    parser.add_argument("--fast-cpu", action="store_true", help="MuZero with FAST_CPU_SETTINGS (before any --set)")
    parser.add_argument("--set", dest="overrides", action="append", type=_parse_override, default=[],
                        help="MuZero keyword argument KEY=VALUE (repeatable; n_envs=N sets its env count)")  # fmt: skip
    parser.add_argument("--stop-at-threshold", action="store_true", help="end each run at its first evaluation >= threshold")
    parser.add_argument("--in-process", action="store_true", help="train every run in this process")
    args = parser.parse_args()
    th.set_num_threads(1)
    envs = ["CartPole-v1"] if args.quick else args.envs
    seeds = 1 if args.quick else args.seeds
    env_steps = args.steps or (8_000 if args.quick else 20_000)
    baseline_steps = args.baseline_steps or (str(env_steps) if args.quick else "zoo")
    runner = run if args.in_process else _run_in_subprocess

    records = []
    for env_id in envs:
        for seed in range(args.first_seed, args.first_seed + seeds):
            for algo in args.algos:
                base = FAST_CPU_SETTINGS if args.fast_cpu else {}
                overrides = {**base, **dict(args.overrides)} if algo == "MuZero" else {}
                steps = env_steps if algo == "MuZero" else _baseline_steps(baseline_steps, env_id, algo)
                record = runner(algo, env_id, seed, steps, args.eval_every, args.device, overrides, args.stop_at_threshold)
                print(f"{algo} {env_id} seed {seed}: final {record.final_mean_return:.1f}, threshold at "
                      f"{record.steps_to_threshold} steps / {record.wall_s_to_threshold} train s, "
                      f"{record.train_wall_s:.0f} s training + {record.eval_wall_s:.0f} s evaluation", flush=True)  # fmt: skip
                records.append(record)
                # After every run, so that a benchmark cut short keeps the runs it finished.
                args.out.mkdir(parents=True, exist_ok=True)
                (args.out / "records.json").write_text(json.dumps([asdict(r) for r in records], indent=2))
    print_table(records)
    plot(records, args.out / "learning_curves.png")
    (args.out / "records.json").write_text(json.dumps([asdict(r) for r in records], indent=2))
    print(f"records written to {args.out / 'records.json'}")


if __name__ == "__main__":
    main()
