"""Learning benchmark: MuZero against rl-zoo3-tuned DQN and PPO at the same number of env steps.

    python -m benchmarks.learning                 # CartPole-v1 and Acrobot-v1, 1 seed, 20,000 env steps each
    python -m benchmarks.learning --quick         # CartPole-v1 only, 1 seed, 8,000 env steps
    python -m benchmarks.learning --json out.json --seeds 3 --plot docs/learning_curves.png

Every ``--eval-every`` env steps each agent is evaluated on 20 episodes (MuZero: deterministic search;
DQN/PPO: deterministic policy). Prints a table of mean evaluation return against env steps and wall
time, writes the learning curves to a PNG and, with ``--json``, a list of records
``{"algo", "env", "seed", "env_steps", "steps_to_threshold", "final_mean_return", "wall_s", "device"}``
(threshold: 475 on CartPole-v1, -100 on Acrobot-v1; ``steps_to_threshold`` is null if never reached).
Wall time includes the evaluations. Torch runs single-threaded (tiny networks: threads only contend).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch as th
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv, VecNormalize, sync_envs_normalization

from gym_planning.agents.muzero import MuZero

THRESHOLDS = {"CartPole-v1": 475.0, "Acrobot-v1": -100.0}
EVAL_EPISODES = 20


@dataclass
class Record:
    """One training run (the ``--json`` record), plus its learning curve."""

    algo: str
    env: str
    seed: int
    env_steps: int
    steps_to_threshold: int | None
    final_mean_return: float
    wall_s: float
    device: str
    curve: list[tuple[int, float, float]] = field(default_factory=list)  # (env steps, mean return, wall s)
    policy_head_return: float | None = None  # MuZero only: final return acting with the raw policy head


def _linear(initial: float):
    """rl-zoo's ``lin_<initial>``: decays linearly with the remaining progress (1 -> 0)."""
    return lambda progress_remaining: progress_remaining * initial


def make_muzero(env_id: str, seed: int, device: str) -> BaseAlgorithm:
    env = make_vec_env(env_id, n_envs=4, seed=seed)
    # MuZero's defaults are the recommended classic-control settings (docs/muzero.md).
    return MuZero("MlpPolicy", env, seed=seed, device=device)


def make_dqn(env_id: str, seed: int, device: str) -> BaseAlgorithm:
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
    return DQN("MlpPolicy", make_vec_env(env_id, n_envs=1, seed=seed), seed=seed, device=device, **settings)


def make_ppo(env_id: str, seed: int, device: str) -> BaseAlgorithm:
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
    return PPO("MlpPolicy", env, seed=seed, device=device, **settings)


FACTORIES = {"MuZero": make_muzero, "DQN": make_dqn, "PPO": make_ppo}


class EvalCurve(BaseCallback):
    """Evaluates the model every ``eval_every`` env steps (and at the end) and records the curve."""

    def __init__(self, eval_env: VecEnv, eval_every: int, start_time: float):
        super().__init__()
        self.eval_env = eval_env
        self.eval_every = eval_every
        self.next_eval = eval_every
        self.start_time = start_time
        self.curve: list[tuple[int, float, float]] = []

    def evaluate(self) -> None:
        if isinstance(self.eval_env, VecNormalize):
            sync_envs_normalization(self.training_env, self.eval_env)
        mean, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=EVAL_EPISODES, warn=False)
        self.curve.append((self.num_timesteps, float(mean), time.perf_counter() - self.start_time))

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_eval:
            self.next_eval += self.eval_every
            self.evaluate()
        return True


def run(algo: str, env_id: str, seed: int, env_steps: int, eval_every: int, device: str) -> Record:
    """Train one agent and return its record."""
    start = time.perf_counter()
    model = FACTORIES[algo](env_id, seed, device)
    eval_env = make_vec_env(env_id, n_envs=10, seed=seed + 1000)
    if isinstance(model.get_env(), VecNormalize):
        eval_env = VecNormalize(eval_env, training=False, norm_reward=False)
    callback = EvalCurve(eval_env, eval_every, start)
    model.learn(env_steps, callback=callback)
    if not callback.curve or callback.curve[-1][0] < model.num_timesteps:
        callback.evaluate()
    reached = [steps for steps, mean, _ in callback.curve if mean >= THRESHOLDS[env_id]]
    wall_s = round(time.perf_counter() - start, 1)
    head = None
    if isinstance(model, MuZero):
        head = float(evaluate_policy(model.policy, eval_env, n_eval_episodes=EVAL_EPISODES, warn=False)[0])
    return Record(
        algo=algo,
        env=env_id,
        seed=seed,
        env_steps=model.num_timesteps,
        steps_to_threshold=reached[0] if reached else None,
        final_mean_return=callback.curve[-1][1],
        wall_s=wall_s,
        device=str(model.device),
        curve=callback.curve,
        policy_head_return=head,
    )


def print_table(records: list[Record]) -> None:
    header = f"{'algo':<7} {'env':<12} {'seed':>4} {'env steps':>9} {'steps to thr.':>13} {'final return':>12} {'wall s':>7}"
    print(f"\n{header}  device")
    for r in records:
        reached = "-" if r.steps_to_threshold is None else str(r.steps_to_threshold)
        print(
            f"{r.algo:<7} {r.env:<12} {r.seed:>4} {r.env_steps:>9} {reached:>13} {r.final_mean_return:>12.1f}"
            f" {r.wall_s:>7.0f}  {r.device}"
        )
    for r in records:
        if r.policy_head_return is not None:
            print(f"{r.algo} {r.env} seed {r.seed}: final return with search {r.final_mean_return:.1f}, "
                  f"raw policy head {r.policy_head_return:.1f}")  # fmt: skip
    print("\nmean evaluation return (20 episodes) vs env steps:")
    for r in records:
        points = "  ".join(f"{steps}:{mean:.0f}" for steps, mean, _ in r.curve)
        print(f"  {r.algo:<7} {r.env:<12} seed {r.seed}: {points}")


def plot(records: list[Record], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = sorted({r.env for r in records})
    fig, axes = plt.subplots(1, len(envs), figsize=(6 * len(envs), 4), squeeze=False)
    for ax, env_id in zip(axes[0], envs):
        colors = {algo: f"C{i}" for i, algo in enumerate(FACTORIES)}
        for r in (r for r in records if r.env == env_id):
            steps, means = zip(*[(s, m) for s, m, _ in r.curve])
            label = r.algo if r.seed == min(x.seed for x in records if x.algo == r.algo and x.env == env_id) else None
            ax.plot(steps, means, marker="o", markersize=3, color=colors.get(r.algo), alpha=0.8, label=label)
        ax.axhline(THRESHOLDS[env_id], color="grey", linestyle="--", linewidth=1)
        seeds = len({r.seed for r in records if r.env == env_id})
        ax.set(title=f"{env_id} ({seeds} seed{'s' * (seeds > 1)}, one line each)", xlabel="env steps")
        ax.set(ylabel=f"mean return ({EVAL_EPISODES} episodes)")
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    print(f"learning curves written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CartPole-v1 only, one seed, 8,000 env steps")
    parser.add_argument("--json", type=Path, help="write the records to this JSON file")
    parser.add_argument("--plot", type=Path, default=Path("docs/muzero_learning_curves.png"), help="learning-curve PNG")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per (algo, env)")
    parser.add_argument("--first-seed", type=int, default=0, help="first seed (runs seeds first .. first + seeds - 1)")
    parser.add_argument("--steps", type=int, default=None, help="env steps per run (default 20,000; quick 8,000)")
    parser.add_argument("--eval-every", type=int, default=2000, help="env steps between evaluations")
    parser.add_argument("--algos", nargs="+", default=list(FACTORIES), choices=list(FACTORIES))
    parser.add_argument("--envs", nargs="+", default=list(THRESHOLDS), choices=list(THRESHOLDS))
    parser.add_argument("--device", default="auto", help="torch device for all agents")
    args = parser.parse_args()
    th.set_num_threads(1)
    envs = ["CartPole-v1"] if args.quick else args.envs
    seeds = 1 if args.quick else args.seeds
    env_steps = args.steps or (8_000 if args.quick else 20_000)

    records = []
    for env_id in envs:
        for seed in range(args.first_seed, args.first_seed + seeds):
            for algo in args.algos:
                record = run(algo, env_id, seed, env_steps, args.eval_every, args.device)
                print(f"{algo} {env_id} seed {seed}: final {record.final_mean_return:.1f}, "
                      f"threshold at {record.steps_to_threshold}, {record.wall_s:.0f} s", flush=True)  # fmt: skip
                records.append(record)
    print_table(records)
    if args.plot:
        plot(records, args.plot)
    if args.json:
        fields = ("algo", "env", "seed", "env_steps", "steps_to_threshold", "final_mean_return", "wall_s", "device")
        args.json.write_text(json.dumps([{k: asdict(r)[k] for k in fields} for r in records], indent=2))
        print(f"records written to {args.json}")


if __name__ == "__main__":
    main()
