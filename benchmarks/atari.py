"""Atari benchmark: MuZero's whole pipeline on an ALE game on the CPU: throughput, memory, return beside random.

    python -m benchmarks.atari                                # MsPacman, CPU-sized settings, 2,000 env steps
    python -m benchmarks.atari --quick                        # 600 env steps, 1 evaluation episode
    python -m benchmarks.atari --game Hero --steps 20000 --eval-episodes 5
    python -m benchmarks.atari --set num_simulations=16 --atari frame_stack=8

Trains ``MuZero("CnnPolicy", make_atari(game, **ATARI_CPU))`` with ``MUZERO_CPU`` settings for ``--steps`` env
steps (one env), then plays ``--eval-episodes`` episodes with deterministic search and as many with uniformly
random actions (same seeds). Prints a table and writes a JSON record under ``runs/atari/`` (``--json PATH``):
``{"game", "steps", "settings", "atari", "env_steps_per_s", "phase_seconds", "gradient_steps",
"gradient_step_cpu_s", "replay_gib", "peak_rss_gib", "muzero_returns", "random_returns"}``. ``env_steps_per_s``
counts training wall time (acting search, env, targets and gradient steps); ``gradient_step_cpu_s`` is the
process CPU time of one more gradient step at the end; ``replay_gib`` the replay's arrays and keyframes.
"""

from __future__ import annotations

import argparse
import ast
import json
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from gym_planning.agents.muzero import MuZero
from gym_planning.wrappers.suites import make_atari

# Frames a 2-core CPU can push through the conv network (docs/planning.md, "Atari on a CPU").
ATARI_CPU: dict[str, Any] = dict(grayscale=True, frame_stack=4, screen_size=64)
MUZERO_CPU: dict[str, Any] = dict(
    num_simulations=8,
    batch_size=32,
    num_unroll_steps=3,
    reanalyse_fraction=0.0,
    replay_ratio=0.1,
    learning_starts=500,
    buffer_size=50_000,
    policy_kwargs=dict(network_kwargs=dict(channels=16, head_hidden_sizes=(32,))),
)


def _play(model: MuZero | None, env: Any, episodes: int, seed: int) -> list[float]:
    """Returns of ``episodes`` episodes, by deterministic search (``model``) or uniformly random actions (None)."""
    rng = np.random.default_rng(seed)
    returns = []
    for episode in range(episodes):
        observation, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            if model is None:
                action = int(rng.integers(env.action_space.n))
            else:
                action = int(model.predict(observation, deterministic=True)[0])
            observation, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return returns


def _replay_bytes(model: MuZero) -> int:
    buffer = model.replay_buffer
    arrays = [value for value in vars(buffer).values() if isinstance(value, np.ndarray)]
    frames = buffer.frames.nbytes if buffer.frame_stack is not None else 0
    return sum(array.nbytes for array in arrays) + frames


def run(game: str, steps: int, eval_episodes: int, settings: dict[str, Any], atari: dict[str, Any], seed: int) -> dict:
    env = make_atari(game, n_envs=1, seed=seed, **atari)
    model = MuZero("CnnPolicy", env, seed=seed, **settings)
    start = time.perf_counter()
    model.learn(steps)
    train_wall = time.perf_counter() - start
    cpu = time.process_time()
    model.train(1)
    gradient_step_cpu = time.process_time() - cpu
    eval_env = make_atari(game, **atari)
    return dict(
        game=game,
        steps=steps,
        settings={key: repr(value) for key, value in settings.items()},
        atari=atari,
        env_steps_per_s=steps / train_wall,
        phase_seconds=dict(model.phase_seconds),
        gradient_steps=model._n_updates,
        gradient_step_cpu_s=gradient_step_cpu,
        replay_gib=_replay_bytes(model) / 2**30,
        peak_rss_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        muzero_returns=_play(model, eval_env, eval_episodes, seed=10_000 + seed),
        random_returns=_play(None, eval_env, eval_episodes, seed=10_000 + seed),
    )


def _parse_sets(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--game", default="MsPacman")
    parser.add_argument("--steps", type=int, default=2000, help="training env steps")
    parser.add_argument("--eval-episodes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="600 env steps, 1 evaluation episode")
    parser.add_argument("--set", action="append", default=[], help="a MuZero setting k=v over MUZERO_CPU")
    parser.add_argument("--atari", action="append", default=[], help="a make_atari setting k=v over ATARI_CPU")
    parser.add_argument("--json", type=Path, default=None, help="where to write the record (default runs/atari/)")
    args = parser.parse_args()
    steps, episodes = (600, 1) if args.quick else (args.steps, args.eval_episodes)
    settings = dict(MUZERO_CPU, **_parse_sets(args.set))
    atari = dict(ATARI_CPU, **_parse_sets(args.atari))
    record = run(args.game, steps, episodes, settings, atari, args.seed)
    rows = [
        ("env steps/s (training)", f"{record['env_steps_per_s']:.1f}"),
        ("gradient steps", record["gradient_steps"]),
        ("one gradient step, CPU s", f"{record['gradient_step_cpu_s']:.2f}"),
        ("wall s per phase", ", ".join(f"{k} {v:.0f}" for k, v in record["phase_seconds"].items())),
        ("replay GiB", f"{record['replay_gib']:.3f}"),
        ("peak RSS GiB", f"{record['peak_rss_gib']:.2f}"),
        ("MuZero mean return", f"{np.mean(record['muzero_returns']):.1f} {record['muzero_returns']}"),
        ("random mean return", f"{np.mean(record['random_returns']):.1f} {record['random_returns']}"),
    ]
    print(f"{args.game}, {steps} env steps, settings {settings}, make_atari {atari}")
    for name, value in rows:
        print(f"| {name:<26} | {value} |")
    path = args.json or Path("runs/atari") / f"{args.game}-{steps}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
