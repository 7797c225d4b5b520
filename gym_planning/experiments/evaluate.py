"""``gym-planning eval``: a trained run at several test-time search budgets and depths.

    gym-planning eval RUN [--search-budget 1,4,16,64] [--depth 1,2,inf] [--model learned|simulator]
                          [--rollout-steps 0] [--episodes 8]

Every run is also evaluated alone (no search: a MuZero agent acts greedily with its prior policy, an SB3
agent with its own ``predict``). With search it is the guide of :class:`gym_planning.agents.SearchAgent`
(deterministic pUCT search): ``--model learned`` searches with a MuZero agent's own learned model;
``--model simulator`` with the true env (:class:`gym_planning.models.simulator.SimulatorModel`, discount = the
agent's), which any agent can guide. ``--rollout-steps R`` (simulator) estimates leaves by R steps of the prior
policy before the guide's value (the seed's ``D_UCT`` ablation: pUCT down to ``--depth``, rollouts below).

Results are appended to ``RUN/eval.csv`` (one row per setting; a setting already there is not redone).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.evaluation import evaluate_policy

from gym_planning.agents import SearchAgent, as_guide
from gym_planning.experiments.config import RunConfig, settings_of
from gym_planning.experiments.runs import load_agent, make_env, read_config, read_csv, write_csv
from gym_planning.models.rollout_policy import greedy_policy
from gym_planning.models.simulator import SimulatorModel

MODELS = ("learned", "simulator")
EVAL_COLUMNS = ("env_kwargs", "model", "simulations", "depth", "rollout_steps", "episodes", "env_steps",
                "mean_return", "std_return", "ms_per_decision")  # fmt: skip


class Setting(NamedTuple):
    """One test-time configuration.

    :param model: ``"none"`` (the agent alone), ``"learned"`` or ``"simulator"``.
    :param simulations: simulations per decision (0 with ``model="none"``).
    :param depth: maximum tree depth in edges (None: unbounded).
    :param rollout_steps: leaf rollouts of the prior policy (simulator only; 0: the guide's value alone).
    """

    model: str = "none"
    simulations: int = 0
    depth: int | None = None
    rollout_steps: int = 0


class PriorPolicy:
    """Acts greedily with a guide's prior: a MuZero agent without search (SB3 ``predict`` signature)."""

    def __init__(self, agent: Any):
        self.guide = as_guide(agent)
        self.observation_space = agent.observation_space

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:  # fmt: skip
        """``(argmax prior [B], state)``."""
        logits, _ = self.guide(np.asarray(observation))
        return np.asarray(logits).argmax(-1), state


class _Timed:
    """Forwards ``predict`` and counts its wall seconds and decisions."""

    def __init__(self, agent: Any):
        self.agent, self.seconds, self.decisions = agent, 0.0, 0

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """The agent's ``predict`` (SB3's ``PolicyPredictor`` signature), timed."""
        start = time.perf_counter()
        action, state = self.agent.predict(observation, state, episode_start, deterministic)
        self.seconds += time.perf_counter() - start
        self.decisions += len(observation)
        return action, state


def discount_of(agent: BaseAlgorithm) -> float:
    """The discount the agent's values were trained with (MuZero ``discount``, SB3 ``gamma``)."""
    discount = getattr(agent, "discount", None)
    return float(discount if discount else getattr(agent, "gamma", 0.99))


def test_agent(agent: BaseAlgorithm, setting: Setting, vec_env: Any, seed: int) -> Any:
    """The agent that plays ``setting`` on ``vec_env`` (the env a simulator model is bound to)."""
    is_muzero = hasattr(agent.policy, "network")
    if setting.model == "none":
        return PriorPolicy(agent) if is_muzero else agent
    if setting.model == "learned":
        if not is_muzero:
            raise ValueError(f"{type(agent).__name__} has no learned model to search with; use --model simulator")
        if setting.rollout_steps:
            raise ValueError("--rollout-steps needs --model simulator (rollouts step the true env)")
        model = None
    elif setting.model == "simulator":
        # SB3's deterministic predict is its prior's argmax; greedy_policy evaluates it from a NumPy copy of the net.
        rollout_policy = greedy_policy(PriorPolicy(agent) if is_muzero else agent) if setting.rollout_steps else None
        model = SimulatorModel(vec_env, discount=discount_of(agent), rollout_steps=setting.rollout_steps,
                               rollout_policy=rollout_policy, seed=seed)  # fmt: skip
    else:
        raise ValueError(f"unknown model {setting.model!r}; choose one of {MODELS}")
    return SearchAgent(agent, model, num_simulations=setting.simulations, max_depth=setting.depth, seed=seed)


def evaluate(agent: BaseAlgorithm, config: RunConfig, setting: Setting, *, episodes: int,
             env_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Play ``episodes`` deterministic episodes (in parallel envs) and return the row for ``eval.csv``."""
    vec_env = make_env(config, n_envs=min(episodes, 8), seed=config.seed + 20_000, env_kwargs=env_kwargs)
    timed = _Timed(test_agent(agent, setting, vec_env, config.seed))
    returns, _ = evaluate_policy(timed, vec_env, n_eval_episodes=episodes, deterministic=True, return_episode_rewards=True)
    vec_env.close()
    return dict(
        env_kwargs=json.dumps(env_kwargs or {}, sort_keys=True),
        model=setting.model,
        simulations=setting.simulations,
        depth="inf" if setting.depth is None else setting.depth,
        rollout_steps=setting.rollout_steps,
        episodes=episodes,
        env_steps=agent.num_timesteps,
        mean_return=float(np.mean(returns)),
        std_return=float(np.std(returns)),
        ms_per_decision=round(1000.0 * timed.seconds / max(timed.decisions, 1), 3),
    )


def _key(row: dict[str, Any]) -> tuple:
    return tuple(str(row[c]) for c in EVAL_COLUMNS[:7])


def evaluate_run(run_dir: str | Path, settings: list[Setting], *, episodes: int = 8,
                 env_kwargs: dict[str, Any] | None = None, device: str = "auto") -> list[dict[str, Any]]:  # fmt: skip
    """Evaluate the run's latest checkpoint at every setting (reusing rows already in ``eval.csv``).

    :return: one row per setting, in order.
    """
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    if settings_of(config).normalize:
        raise ValueError(
            f"{run_dir} trained on VecNormalize'd observations; eval and the studies support normalize: false only"
        )
    agent, _ = load_agent(run_dir, device=device)
    cached = {_key(row): row for row in read_csv(run_dir / "eval.csv")}
    rows = []
    for setting in settings:
        probe = dict(env_kwargs=json.dumps(env_kwargs or {}, sort_keys=True), model=setting.model,
                     simulations=setting.simulations, depth="inf" if setting.depth is None else setting.depth,
                     rollout_steps=setting.rollout_steps, episodes=episodes, env_steps=agent.num_timesteps)  # fmt: skip
        row = cached.get(_key(probe))
        if row is None:
            row = cached[_key(probe)] = evaluate(agent, config, setting, episodes=episodes, env_kwargs=env_kwargs)
            write_csv(run_dir / "eval.csv", list(cached.values()), EVAL_COLUMNS)
        rows.append(row)
    return rows


def parse_list(text: str, what: str) -> list[int | None]:
    """``"1,4,16"`` -> ``[1, 4, 16]``; ``inf`` -> None (unbounded depth)."""
    values: list[int | None] = []
    for item in text.split(","):
        item = item.strip()
        if item in ("inf", "none"):
            values.append(None)
        elif item.isdigit() and int(item) >= 1:
            values.append(int(item))
        else:
            raise ValueError(f"{what} must be a comma-separated list of integers >= 1 (or inf); got {item!r} in {text!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``eval`` command's arguments."""
    parser.add_argument("run", help="a run folder (from gym-planning train)")
    parser.add_argument("--search-budget", default="1,4,16,64", help="simulations per decision, comma-separated")
    parser.add_argument("--depth", default="inf", help="maximum tree depths, comma-separated (inf: unbounded)")
    parser.add_argument("--model", default=None, choices=MODELS, help="default: learned for MuZero, else simulator")
    parser.add_argument("--rollout-steps", type=int, default=0, help="prior-policy rollouts at the leaves (simulator)")
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Evaluate as ``args`` say; return the rows."""
    config = read_config(args.run)
    parsed = parse_list(args.search_budget, "--search-budget")
    budgets = [b for b in parsed if b is not None]
    if len(budgets) != len(parsed):
        raise ValueError("--search-budget must be finite integers >= 1")
    model = args.model or ("learned" if config.algo == "muzero" else "simulator")
    settings = [Setting()] + [
        Setting(model, int(b), d, args.rollout_steps) for d in parse_list(args.depth, "--depth") for b in budgets
    ]
    return evaluate_run(args.run, settings, episodes=args.episodes, device=args.device)
