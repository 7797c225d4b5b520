"""Two-player self-play: MuZero trains by playing both sides, then plays a ladder of fixed opponents.

    python -m benchmarks.selfplay --game tictactoe [--steps N] [--seeds K] [--first-seed S] [--set KEY=VALUE] [--quick]
    python -m benchmarks.selfplay --game tictactoe --set num_sampling_moves=3 --set dirichlet_alpha=1.0  # a variant
    python -m benchmarks.selfplay --game go [--steps N] [--minutes M] [--save PATH] [--load PATH] [--games G]

Training: ``MuZero("MlpPolicy", <the env without an opponent>)`` (``two_player`` resolves to True from the
env's ``num_players == 2``) with the settings in ``SETTINGS[game]`` (``--set KEY=VALUE``: a MuZero keyword
argument on top, repeatable; tic-tac-toe's are checked against its row of ``hyperparams/muzero.yml``); learning-curve points (env steps, wall
seconds, process CPU seconds, score against the random player) every ``--curve-every`` steps.

Evaluation (deterministic actions, no root noise; the agent searches its learned model with
``--agent-sims`` simulations): the agent plays each rung of the ladder with both colours,
``--games`` games per colour, in a VecEnv of the game's env with the opponent built in (one batched search
per move for all games).

- tic-tac-toe: the random player and the perfect player (random among minimax-optimal moves), then the
  exhaustive check (:func:`never_loses`): the agent's move against every possible reply, so 0 lost boards means
  no opponent can beat it with that colour (also at each learning-curve point). The target is never to lose,
  with both colours. Its training settings are the ``gym_planning/TicTacToe-v0`` row of ``hyperparams/muzero.yml``.
- 9x9 Go (``komi`` 7.5, OpenSpiel rules): the random player and ``GoSearchOpponent`` (Gumbel MuZero with
  the true rules, uniform prior, one random rollout per leaf) at 16 / 128 / 1,024 simulations
  (``--ladder``). Targets (issue 11): >= 99 % against random and >= 50 % against MCTS-128, both colours.

Elo: a Bradley-Terry fit (minorise-maximise, Hunter 2004) over every game played (a draw counts half a
win to each), with one virtual draw between each pair that met (so 100 % scores give finite ratings), and
the random player anchored at Elo 0. It is only as good as the number of games behind it (printed).

Results go to ``runs/selfplay-<game>-<time>.json`` (or ``--json PATH``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.env_util import make_vec_env

from benchmarks.learning import parse_override
from gym_planning.agents.muzero import MuZero
from gym_planning.hyperparams import load_hyperparams

# Settings per game (passed to MuZero); discount 1 and Monte-Carlo-length n-step returns as in the paper's
# board games (Schrittwieser et al. 2020 pseudocode: discount 1, td_steps = max_moves). Visit temperature 1
# throughout (learning curves call learn() in chunks, and a schedule would restart with each chunk).
# Tic-tac-toe's settings are its row of gym_planning/hyperparams/muzero.yml (tuned on training seeds only).
_TICTACTOE = load_hyperparams("muzero", "gym_planning/TicTacToe-v0")
SETTINGS: dict[str, dict[str, Any]] = {
    "tictactoe": _TICTACTOE.kwargs,
    "go": dict(
        search="gumbel",
        num_simulations=16,
        max_num_considered_actions=8,
        discount=1.0,
        td_steps=200,
        num_unroll_steps=3,
        batch_size=128,
        learning_starts=2_000,
        replay_ratio=0.05,
        reanalyse_fraction=0.0,
        buffer_size=200_000,
        value_support_size=5,
        learning_rate=1e-3,
        policy_kwargs=dict(network_kwargs=dict(latent_dim=128, hidden_sizes=(256, 256))),
    ),
}
DEFAULT_STEPS = {"tictactoe": _TICTACTOE.n_timesteps, "go": 200_000}
N_ENVS = {"tictactoe": _TICTACTOE.n_envs, "go": 16}


def _env_class(game: str) -> Callable[..., Any]:
    if game == "tictactoe":
        from gym_planning.envs.tictactoe import TicTacToeEnv

        return TicTacToeEnv
    from gym_planning.envs.go import GoEnv

    return GoEnv


def ladder(game: str, go_sims: list[int]) -> dict[str, Any]:
    """Opponent name -> the env's ``opponent`` argument."""
    if game == "tictactoe":
        return {"random": "random", "perfect": "perfect"}
    from gym_planning.agents import GoSearchOpponent

    return {"random": "random", **{f"mcts-{n}": GoSearchOpponent(num_simulations=n) for n in go_sims}}


def _colours(game: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """(keyword of the agent's side, value) for the first and the second player."""
    key = "agent_player" if game == "tictactoe" else "agent_colour"
    return ((key, "x"), (key, "o")) if game == "tictactoe" else ((key, "black"), (key, "white"))


def play_games(model: MuZero, game: str, opponent: Any, side: tuple[str, str], num_games: int, seed: int) -> list[float]:
    """Outcomes for the agent (+1 win, 0 draw, -1 loss) of ``num_games`` games played side by side: one batched
    search per move for the games still running (the opponent replies inside each env's ``step``)."""
    envs = [_env_class(game)(opponent=opponent, **{side[0]: side[1]}) for _ in range(num_games)]
    observations = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
    outcome: list[float | None] = [None] * num_games
    while running := [i for i, o in enumerate(outcome) if o is None]:
        masks = np.stack([envs[i].action_masks() for i in running])
        actions, _ = model.predict(np.stack([observations[i] for i in running]), action_masks=masks, deterministic=True)
        for i, action in zip(running, actions):
            observations[i], reward, terminated, truncated, _ = envs[i].step(int(action))
            if terminated or truncated:
                outcome[i] = float(reward)
    return [float(o) for o in outcome]  # type: ignore[arg-type]


def never_loses(model: MuZero, agent: int) -> dict[str, int]:
    """Tic-tac-toe, exhaustively: the agent (0 = X, 1 = O) plays its deterministic move against *every* reply of
    the other player, so its games against any opponent (random and perfect included) are among those walked.

    :return: ``lost`` distinct final boards the agent loses (0: it never loses), ``positions`` the agent met,
        ``value_lost`` of those where its move lowered the game value (:func:`~gym_planning.envs.tictactoe.solve`).
    """
    from gym_planning.envs.tictactoe import EMPTY, observation, optimal_moves, winner

    def after(board: tuple[int, ...], cell: int, player: int) -> tuple[int, ...]:
        return board[:cell] + (player,) + board[cell + 1 :]

    empty = (EMPTY,) * 9
    frontier = {empty} if agent == 0 else {after(empty, c, 0) for c in range(9)}
    lost: set[tuple[int, ...]] = set()
    positions = value_lost = 0
    while frontier:
        boards = sorted(frontier)
        frontier = set()
        masks = np.array([[cell == EMPTY for cell in board] for board in boards])
        actions, _ = model.predict(np.stack([observation(b) for b in boards]), action_masks=masks, deterministic=True)
        positions += len(boards)
        for board, action in zip(boards, actions):
            value_lost += int(action) not in optimal_moves(board)
            mine = after(board, int(action), agent)
            if winner(mine) != EMPTY or EMPTY not in mine:
                continue
            for reply in (after(mine, c, 1 - agent) for c in range(9) if mine[c] == EMPTY):
                if winner(reply) != EMPTY:
                    lost.add(reply)
                elif EMPTY in reply:
                    frontier.add(reply)
    return dict(lost=len(lost), positions=positions, value_lost=value_lost)


def elo_ratings(
    results: dict[tuple[str, str], list[float]], anchor: str = "random", iterations: int = 2000
) -> dict[str, float]:
    """Bradley-Terry Elo from ``{(player, opponent): outcomes for player}``, one virtual draw per pair.

    Minorise-maximise updates ``gamma_i = W_i / sum_j n_ij / (gamma_i + gamma_j)`` (Hunter 2004); ratings
    ``400 log10 gamma``, shifted so that ``anchor`` is 0.
    """
    players = sorted({p for pair in results for p in pair})
    index = {p: i for i, p in enumerate(players)}
    games = np.zeros((len(players), len(players)))
    wins = np.zeros(len(players))
    for (a, b), outcomes in results.items():
        i, j = index[a], index[b]
        n = len(outcomes) + 1  # + one virtual draw
        score = sum((o + 1) / 2 for o in outcomes) + 0.5
        games[i, j] += n
        games[j, i] += n
        wins[i] += score
        wins[j] += n - score
    gamma = np.ones(len(players))
    for _ in range(iterations):
        denominator = (games / (gamma[:, None] + gamma[None, :])).sum(axis=1)
        gamma = wins / np.maximum(denominator, 1e-12)
        gamma /= np.exp(np.log(gamma).mean())
    elo = 400 * np.log10(gamma)
    return {p: float(elo[index[p]] - elo[index[anchor]]) for p in players}


def evaluate(model: MuZero, game: str, opponents: dict[str, Any], num_games: dict[str, int], seed: int) -> list[dict]:
    """One row per (opponent, agent colour): wins / draws / losses and the score."""
    rows = []
    for name, opponent in opponents.items():
        for colour_index, side in enumerate(_colours(game)):
            start = time.perf_counter()
            outcomes = play_games(model, game, opponent, side, num_games[name], seed + 1000 * colour_index)
            rows.append(
                dict(
                    opponent=name,
                    agent=side[1],
                    games=len(outcomes),
                    wins=outcomes.count(1.0),
                    draws=outcomes.count(0.0),
                    losses=outcomes.count(-1.0),
                    outcomes=outcomes,
                    seconds=round(time.perf_counter() - start, 1),
                )  # fmt: skip
            )
            print(f"  {name:>10} agent={side[1]:<5} W/D/L {rows[-1]['wins']}/{rows[-1]['draws']}/{rows[-1]['losses']}"
                  f"  ({rows[-1]['seconds']} s)", flush=True)  # fmt: skip
    return rows


def settings(game: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """MuZero's keyword arguments for ``game`` with ``overrides`` on top (tic-tac-toe's checked by the YAML loader)."""
    if game == "tictactoe":
        return load_hyperparams("muzero", "gym_planning/TicTacToe-v0", overrides).kwargs
    return {**SETTINGS[game], **overrides}


def train(
    game: str,
    steps: int,
    seed: int,
    minutes: float | None,
    curve_every: int,
    curve_games: int,
    overrides: dict[str, Any] | None = None,
) -> tuple[MuZero, list[dict]]:
    """Self-play for ``steps`` env steps (or until ``minutes`` of wall time), with learning-curve points.

    Each point records wall and process CPU seconds of training (evaluations excluded), the score against the
    random player and, for tic-tac-toe, the games the deterministic agent loses against every possible reply
    (:func:`never_loses`)."""
    venv = make_vec_env(_env_class(game), n_envs=N_ENVS[game], seed=seed)
    model = MuZero("MlpPolicy", venv, seed=seed, **settings(game, overrides or {}))
    assert model.two_player, "the env without an opponent must train by self-play"
    curve, wall, cpu = [], 0.0, 0.0
    random_opponent = ladder(game, [])["random"]
    while model.num_timesteps < steps:
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        model.learn(min(curve_every, steps - model.num_timesteps), reset_num_timesteps=model.num_timesteps == 0)
        wall += time.perf_counter() - start_wall
        cpu += time.process_time() - start_cpu
        score = []
        for side in _colours(game):
            score += play_games(model, game, random_opponent, side, curve_games, seed=10_000 + model.num_timesteps)
        point = dict(env_steps=model.num_timesteps, wall_s=round(wall, 1), cpu_s=round(cpu, 1), gradient_steps=model._n_updates,
                     vs_random_score=float(np.mean([(o + 1) / 2 for o in score])),
                     vs_random_losses=score.count(-1.0), phases={k: round(v, 1) for k, v in model.phase_seconds.items()})  # fmt: skip
        line = ""
        if game == "tictactoe":
            point["lost_vs_any"] = [never_loses(model, agent)["lost"] for agent in (0, 1)]
            line = f"  lost vs any reply as X / O {point['lost_vs_any'][0]} / {point['lost_vs_any'][1]}"
        curve.append(point)
        print(f"steps {point['env_steps']:>7}  wall {point['wall_s']:>7.0f} s  cpu {point['cpu_s']:>6.0f} s  score vs random "
              f"{point['vs_random_score']:.3f}  losses {point['vs_random_losses']}/{len(score)}{line}", flush=True)  # fmt: skip
        if minutes is not None and wall > 60 * minutes:
            break
    return model, curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--game", choices=sorted(SETTINGS), default="tictactoe")
    parser.add_argument("--steps", type=int, help="env steps of self-play per seed (default per game)")
    parser.add_argument("--minutes", type=float, help="stop training after this much wall time (checked per curve point)")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--first-seed", type=int, default=0, help="training seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--set", dest="overrides", action="append", type=parse_override, default=[],
                        help="MuZero keyword argument KEY=VALUE on top of the game's settings (repeatable)")  # fmt: skip
    parser.add_argument("--games", type=int, default=50, help="games per colour against each rung (MCTS-1024: a tenth)")
    parser.add_argument(
        "--agent-sims", type=int, default=None, help="agent's simulations at evaluation (default: tictactoe 64, go 100)"
    )
    parser.add_argument("--ladder", type=int, nargs="*", default=[16, 128, 1024], help="Go: MCTS opponents' simulations")
    parser.add_argument("--curve-every", type=int, default=None, help="env steps between learning-curve points")
    parser.add_argument("--curve-games", type=int, default=10, help="games per colour against random at each curve point")
    parser.add_argument("--save", help="save the trained model here (seed appended)")
    parser.add_argument("--load", help="evaluate a saved model instead of training")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--json", help="where to write results (default runs/selfplay-<game>-<time>.json)")
    args = parser.parse_args()
    th.set_num_threads(1)  # tiny networks: a second thread only adds contention on a small CPU

    steps = args.steps or (2_000 if args.quick else DEFAULT_STEPS[args.game])
    curve_every = args.curve_every or max(steps // 4, 1)
    agent_sims = args.agent_sims or (64 if args.game == "tictactoe" else 100)
    games = 4 if args.quick else args.games
    ladder_sims = [16] if args.quick and args.game == "go" else args.ladder
    opponents = ladder(args.game, ladder_sims)
    overrides = dict(args.overrides)
    num_games = {name: max(2, games // 10) if name == "mcts-1024" else games for name in opponents}
    report: dict[str, Any] = dict(
        game=args.game, steps=steps, settings={k: str(v) for k, v in settings(args.game, overrides).items()}, agent_sims=agent_sims,
        machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores", date=time.strftime("%Y-%m-%d"),
        seeds=[],
    )  # fmt: skip
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        print(f"== {args.game}, seed {seed}", flush=True)
        if args.load:
            model, curve = MuZero.load(args.load, device="cpu"), []
        else:
            model, curve = train(args.game, steps, seed, args.minutes, curve_every, args.curve_games, overrides)
            if args.save:
                model.save(f"{args.save}-seed{seed}")
        model.num_simulations = agent_sims  # the next searches use it (MuZero.search_config follows it)
        rows = evaluate(model, args.game, opponents, num_games, seed=100 + seed)
        results = {("agent", r["opponent"]): [] for r in rows}
        for r in rows:
            results[("agent", r["opponent"])] += r["outcomes"]
        elo = elo_ratings(results)
        exhaustive = {}
        if args.game == "tictactoe":
            exhaustive = {side: never_loses(model, agent) for agent, side in enumerate("xo")}
            for side, found in exhaustive.items():
                print(f"  agent={side} against every reply: {found['lost']} lost games, {found['value_lost']} of "
                      f"{found['positions']} moves lowered the game value")  # fmt: skip
        report["seeds"].append(dict(seed=seed, curve=curve, evaluation=rows, elo=elo, against_every_reply=exhaustive))
        print(f"{'opponent':>10} {'agent':>6} {'games':>6} {'win %':>6} {'draw %':>7} {'loss %':>7}")
        for r in rows:
            n = r["games"]
            print(f"{r['opponent']:>10} {r['agent']:>6} {n:>6} {100 * r['wins'] / n:>6.1f} {100 * r['draws'] / n:>7.1f} "
                  f"{100 * r['losses'] / n:>7.1f}")  # fmt: skip
        print("Elo (random = 0): " + ", ".join(f"{p} {e:+.0f}" for p, e in sorted(elo.items(), key=lambda x: x[1])))
    path = args.json or f"runs/selfplay-{args.game}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as file:
        json.dump(report, file, indent=1)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
