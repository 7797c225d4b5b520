"""Learning benchmark: MuZero against DQN and PPO, each built from its tuned settings in ``gym_planning/hyperparams``.

    python -m benchmarks.learning                 # CartPole-v1 and Acrobot-v1, 1 seed, 20,000 env steps each
    python -m benchmarks.learning --quick         # CartPole-v1 only, 1 seed, 8,000 env steps for every agent
    python -m benchmarks.learning --envs CartPole-v1 --seeds 3 --eval-every 1000 --stop-at-threshold --fast-cpu
                                                  # the speed comparison (issue 10): PPO/DQN with rl-zoo budgets
    python -m benchmarks.learning --algos MuZero --set num_simulations=8 --set batch_size=64  # a MuZero variant
    python -m benchmarks.learning --env gym_planning/Minipacman-v0 --steps 15000 --seeds 3 --eval-every 3750
    python -m benchmarks.learning --env Sokoban7x7-v0 --steps 15000 --seeds 3 --eval-every 3750  # docs/muzero.md, "Seed environments"
    python -m benchmarks.learning --env dm_control/cheetah-run-v0 --algos SAC MuZero --steps 5000 --eval-every 2500
    python -m benchmarks.learning --env CheetahRunBox-v0 --algos MuZero --steps 5000 --eval-every 2500
                                                  # Box actions (issue 16): SAC and the factorised MuZero on the
                                                  # dm_control id, Sampled MuZero on its Box variant (same env)

``--env ID`` takes any env id with an entry in ``gym_planning/hyperparams/<algo>.yml`` for every algorithm run
(``--envs`` is the same option). Without ``--steps`` each run takes its entry's ``n_timesteps``. Evaluation uses
the entry's evaluation env (``make_eval_env``: held-out mazes and levels where ``eval_env_kwargs`` says so),
reseeded before every evaluation so that each evaluation point, and every algorithm, plays the same episodes.
Thresholds (the "to threshold" columns) come from the table ``THRESHOLDS`` below; an env missing there has none.
Where an env terminates only on success (Sokoban) the records also hold the fraction of evaluation episodes
that ended ``terminated`` (``solved``).

Each agent trains for its entry's ``n_timesteps`` unless ``--steps`` says otherwise: MuZero 20,000 on
CartPole-v1; DQN and PPO rl-baselines3-zoo's budgets (CartPole-v1 PPO 1e5 and DQN 5e4, Acrobot-v1 PPO 1e6 and DQN
1e5; their learning-rate and clip schedules depend on it), so that the baselines' time to the threshold exists
on every seed when run with ``--stop-at-threshold``; ``--baseline-steps`` sets DQN's and PPO's alone. Every ``--eval-every`` env steps each agent is evaluated on 20 episodes (MuZero: deterministic search;
DQN/PPO: deterministic policy). Prints a table of time and env steps to the threshold, throughput and
(MuZero) where the wall time went, the learning curves, and writes under ``--out`` (default
``runs/learning/``) the records as ``records.json`` and the curves as ``learning_curves.png``.
A record: ``{"algo", "env", "seed", "env_steps", "steps_to_threshold", "wall_s_to_threshold",
"final_mean_return", "wall_s", "train_wall_s", "eval_wall_s", "cpu_s_to_threshold", "train_cpu_s", "env_steps_per_s", "gradient_steps_per_s",
"phase_share", "device", "settings", "curve", "cpu_curve", "solved", "stochastic"}`` (the "to threshold" fields
are null if never reached). ``wall_s_to_threshold`` and the throughputs exclude
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
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv, VecNormalize, sync_envs_normalization

from gym_planning.agents.muzero import FAST_CPU_SETTINGS, MuZero
from gym_planning.hyperparams import env_ids, load_hyperparams, make_agent, make_eval_env

ALGOS = {"MuZero": "muzero", "DQN": "dqn", "PPO": "ppo", "SAC": "sac"}
"""Names in the tables and on the command line, and the ``gym_planning/hyperparams`` file of each."""
THRESHOLDS = {
    "CartPole-v1": 475.0,
    "Acrobot-v1": -100.0,
    "Pendulum-v1": -200.0,  # issue 16's threshold for Box actions (Sampled MuZero beside SAC)
    # Reference levels, not published thresholds: a third of the food of a 15x19 maze (about 140 cells) on
    # Minipacman (random play: 10); Sokoban 7x7 x 2: the return of solving within ~60 steps (random: -10).
    "gym_planning/Minipacman-v0": 50.0,
    "Sokoban7x7-v0": 6.0,
}
EVAL_EPISODES = 20
EVAL_ENVS = 10


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
    solved: list[tuple[int, float]] = field(default_factory=list)  # (env steps, share of episodes terminated)
    stochastic: list[tuple[int, float]] = field(default_factory=list)  # (env steps, mean return, sampled actions)


def make_model(algo: str, env_id: str, seed: int, device: str, overrides: dict[str, Any]) -> BaseAlgorithm:
    """``algo`` (a key of :data:`ALGOS`) with its tuned settings for ``env_id`` and ``overrides`` on top."""
    return make_agent(ALGOS[algo], env_id, seed=seed, device=device, overrides=overrides)


def check_envs(env_list: list[str], algos: list[str]) -> None:
    """One clear error if an env has no entry for one of ``algos``, naming the envs that have them all."""
    with_all = sorted(set.intersection(*(set(env_ids(ALGOS[algo])) for algo in algos)))
    missing = [(env_id, algo) for env_id in env_list for algo in algos if env_id not in env_ids(ALGOS[algo])]
    if missing:
        env_id, algo = missing[0]
        raise SystemExit(
            f"no {algo} settings for env {env_id!r} in gym_planning/hyperparams/{ALGOS[algo]}.yml; "
            f"envs with settings for {', '.join(algos)}: {with_all}"
        )


def algos_with_settings(env_id: str) -> list[str]:
    """The keys of :data:`ALGOS` with an entry for ``env_id`` (the default agents of a run); one clear error if none."""
    algos = [algo for algo in ALGOS if env_id in env_ids(ALGOS[algo])]
    if not algos:
        raise SystemExit(f"no settings for env {env_id!r} in gym_planning/hyperparams/*.yml; add an entry or pick another env")
    return algos


class EvalCurve(BaseCallback):
    """Evaluates the model every ``eval_every`` env steps (and at the end); records the curve against
    training wall time (evaluation time is counted apart, in ``eval_seconds``)."""

    def __init__(
        self, eval_env: VecEnv, eval_every: int, threshold: float, stop_at_threshold: bool, eval_seed: int = 0,
        sampled_actions: bool = False,
    ):  # fmt: skip
        super().__init__()
        self.eval_env = eval_env
        self.eval_seed = eval_seed
        self.sampled_actions = sampled_actions
        self.solved: list[tuple[int, float]] = []
        self.stochastic: list[tuple[int, float]] = []
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
        self.eval_env.seed(self.eval_seed)  # every evaluation plays the same episodes (levels, mazes)
        ends: list[bool] = []  # per episode: terminated (True) or truncated

        def record_end(local: dict[str, Any], _: Any) -> None:
            if local["done"]:
                ends.append(not local["info"].get("TimeLimit.truncated", False))

        mean, _ = evaluate_policy(
            self.model, self.eval_env, n_eval_episodes=EVAL_EPISODES, warn=False, callback=record_end
        )  # fmt: skip
        self.curve.append((self.num_timesteps, float(mean), round(self.train_seconds() - (time.perf_counter() - start), 2)))
        self.solved.append((self.num_timesteps, round(float(np.mean(ends)), 3)))
        if self.sampled_actions:
            # Deterministic policies loop or stand still in grid games (rl-zoo evaluates Atari and MiniGrid
            # stochastically for this reason): record sampled actions too, on the same episodes.
            self.eval_env.seed(self.eval_seed)
            sampled, _ = evaluate_policy(
                self.model, self.eval_env, n_eval_episodes=EVAL_EPISODES, warn=False, deterministic=False
            )  # fmt: skip
            self.stochastic.append((self.num_timesteps, round(float(sampled), 3)))
        self.eval_seconds += time.perf_counter() - start
        self.eval_cpu_seconds += time.process_time() - start_cpu
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
    model = make_model(algo, env_id, seed, device, overrides)
    settings = load_hyperparams(ALGOS[algo], env_id, overrides)
    eval_env = make_eval_env(settings, n_envs=EVAL_ENVS)
    threshold = THRESHOLDS.get(env_id, np.inf)
    # Grid games (ours) are also evaluated with sampled actions (MuZero: from the root visit counts).
    sampled = not isinstance(model, MuZero) or settings.make_id.startswith("gym_planning/")
    callback = EvalCurve(eval_env, eval_every, threshold, stop_at_threshold, eval_seed=seed + 1000, sampled_actions=sampled)
    model.learn(env_steps, callback=callback)
    train_wall_s, train_cpu_s = callback.train_seconds(), callback.train_cpu_seconds()
    if not callback.curve or callback.curve[-1][0] < model.num_timesteps:
        callback.evaluate()
    reached = [(steps, wall, cpu) for (steps, mean, wall), cpu in zip(callback.curve, callback.cpu_curve) if mean >= threshold]
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
        solved=callback.solved,
        stochastic=callback.stochastic,
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
    print_points(records)
    for r in records:
        if r.phase_share:
            shares = ", ".join(f"{phase} {share:.0%}" for phase, share in r.phase_share.items())
            print(f"{r.algo} {r.env} seed {r.seed}: training wall time: {shares}; final return with search "
                  f"{r.final_mean_return:.1f}, raw policy head {r.policy_head_return:.1f}")  # fmt: skip
    print("\nmean evaluation return (20 episodes) vs env steps (train wall s):")
    for r in records:
        points = "  ".join(f"{steps}:{mean:.0f}({wall:.0f}s)" for steps, mean, wall in r.curve)
        print(f"  {r.algo:<7} {r.env:<12} seed {r.seed}: {points}")
        if r.stochastic:
            print(f"  {'':<7} {'':<12} sampled actions: " + "  ".join(f"{steps}:{mean:.0f}" for steps, mean in r.stochastic))
        if any(share for _, share in r.solved):
            print(f"  {'':<7} {'':<12} share terminated: " + "  ".join(f"{steps}:{share:.2f}" for steps, share in r.solved))


def _best_of(r: Record) -> list[float]:
    """Per evaluation point: the mean return with deterministic or sampled actions, whichever is higher."""
    sampled = [mean for _, mean in r.stochastic] or [-np.inf] * len(r.curve)
    return [max(mean, other) for (_, mean, _), other in zip(r.curve, sampled)]


def print_points(records: list[Record]) -> None:
    """Mean over seeds at each evaluation point (the k-th of every run), per env and algorithm: the return with
    deterministic actions, the better of deterministic and sampled, and the share of episodes terminated."""
    print("\nmean over seeds per evaluation point: deterministic / best of deterministic and sampled / share terminated")
    for env_id in sorted({r.env for r in records}):
        for algo in ALGOS:
            runs = [r for r in records if r.env == env_id and r.algo == algo]
            if not runs:
                continue
            points = min(len(r.curve) for r in runs)
            cells = []
            for k in range(points):
                steps = int(np.mean([r.curve[k][0] for r in runs]))
                deterministic = np.mean([r.curve[k][1] for r in runs])
                best = np.mean([_best_of(r)[k] for r in runs])
                solved = np.mean([r.solved[k][1] for r in runs]) if all(len(r.solved) > k for r in runs) else np.nan
                cells.append(f"{steps}: {deterministic:.1f} / {best:.1f} / {solved:.2f}")
            print(f"  {env_id} {algo:<7} ({len(runs)} seeds): " + "  ".join(cells))


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
        for algo in ALGOS:
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
    colors = {algo: f"C{i}" for i, algo in enumerate(ALGOS)}
    for column, env_id in enumerate(envs):
        for row, (x_index, x_label) in enumerate(((0, "env steps"), (2, "training wall time (s, evaluation excluded)"))):
            ax = axes[row][column]
            for r in (r for r in records if r.env == env_id):
                xs, means = zip(*[(point[x_index], point[1]) for point in r.curve])
                first = r.seed == min(x.seed for x in records if x.algo == r.algo and x.env == env_id)
                ax.plot(xs, means, marker="o", markersize=3, color=colors.get(r.algo), alpha=0.8,
                        label=r.algo if first else None)  # fmt: skip
                if r.stochastic:  # the same points with sampled actions, dashed
                    sampled = [mean for _, mean in r.stochastic]
                    ax.plot(xs[: len(sampled)], sampled, linestyle="--", color=colors.get(r.algo), alpha=0.6,
                            label=f"{r.algo} (sampled actions)" if first else None)  # fmt: skip
            if env_id in THRESHOLDS:
                ax.axhline(THRESHOLDS[env_id], color="grey", linestyle="--", linewidth=1)
            seeds = len({r.seed for r in records if r.env == env_id})
            ax.set(title=f"{env_id} ({seeds} seed{'s' * (seeds > 1)}, one line each)", xlabel=x_label)
            ax.set(ylabel=f"mean return ({EVAL_EPISODES} episodes)")
            ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    print(f"learning curves written to {path}")


def parse_override(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` (an argparse type for ``--set``) -> (key, the value as a Python literal, or the bare string)."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"--set takes KEY=VALUE (a MuZero keyword argument); got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value  # a bare string such as search=gumbel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CartPole-v1 only, one seed, 8,000 env steps")
    parser.add_argument("--out", type=Path, default=Path("runs/learning"), help="folder for records.json and the plot")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per (algo, env)")
    parser.add_argument("--first-seed", type=int, default=0, help="first seed (runs seeds first .. first + seeds - 1)")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="env steps per run for every agent (default: each entry's n_timesteps; quick 8,000)",
    )
    parser.add_argument("--baseline-steps", type=int, default=None,
                        help="DQN/PPO env steps per run, overriding --steps for them (default: their entries' "
                             "n_timesteps, rl-zoo's budgets where rl-zoo has the env)")  # fmt: skip
    parser.add_argument("--eval-every", type=int, default=2000, help="env steps between evaluations")
    parser.add_argument("--algos", nargs="+", default=None, choices=list(ALGOS),
                        help="agents to run (default: every agent with settings for the env, e.g. SAC only for Box actions)")  # fmt: skip
    parser.add_argument("--env", "--envs", dest="envs", nargs="+", default=["CartPole-v1", "Acrobot-v1"],
                        help="env ids with settings in gym_planning/hyperparams/<algo>.yml")  # fmt: skip
    parser.add_argument("--device", default="auto", help="torch device for all agents")
    parser.add_argument("--fast-cpu", action="store_true", help="MuZero with FAST_CPU_SETTINGS (before any --set)")
    parser.add_argument("--set", dest="overrides", action="append", type=parse_override, default=[],
                        help="MuZero keyword argument KEY=VALUE (repeatable; n_envs=N sets its env count)")  # fmt: skip
    parser.add_argument("--stop-at-threshold", action="store_true", help="end each run at its first evaluation >= threshold")
    parser.add_argument("--in-process", action="store_true", help="train every run in this process")
    parser.add_argument("--from-records", nargs="+", type=Path, default=None,
                        help="train nothing: merge these records.json files, print the tables, plot into --out")  # fmt: skip
    args = parser.parse_args()
    th.set_num_threads(1)
    if args.from_records:
        records = [Record(**entry) for path in args.from_records for entry in json.loads(path.read_text())]
        print_table(records)
        plot(records, args.out / "learning_curves.png")
        return
    envs = ["CartPole-v1"] if args.quick else args.envs
    if args.algos:
        check_envs(envs, args.algos)
    seeds = 1 if args.quick else args.seeds
    runner = run if args.in_process else _run_in_subprocess

    records = []
    for env_id in envs:
        for seed in range(args.first_seed, args.first_seed + seeds):
            for algo in args.algos or algos_with_settings(env_id):
                base = FAST_CPU_SETTINGS if args.fast_cpu else {}
                overrides = {**base, **dict(args.overrides)} if algo == "MuZero" else {}
                steps = args.steps or (8_000 if args.quick else load_hyperparams(ALGOS[algo], env_id).n_timesteps)
                if algo != "MuZero" and args.baseline_steps:
                    steps = args.baseline_steps
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
