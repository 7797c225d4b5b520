"""`make demo`: the project's main job on an embedded default.

Plans in a small deterministic corridor with the batched search and prints how the choice and the
root value improve with the search budget, for MuZero and Gumbel MuZero, all rows searched at once.
"""

from __future__ import annotations

import time

import numpy as np

from gym_planning.search import RecurrentOutput, RootOutput, gumbel_muzero_policy, muzero_policy

LENGTH = 5  # corridor cells; the far right end pays 1, stepping left from cell 0 ends the episode with nothing
DISCOUNT = 0.95


def corridor_step(position: np.ndarray, action: np.ndarray) -> tuple[RecurrentOutput, np.ndarray]:
    """Exact model: action 0 = left, 1 = right; both ends are terminal (discount 0 after them)."""
    done = (position < 0) | (position >= LENGTH)
    new_position = np.where(done, position, position + np.where(action == 1, 1, -1))
    reward = np.where(done, 0.0, np.where(new_position >= LENGTH, 1.0, np.where(new_position < 0, 0.0, 0.0)))
    discount = np.where(done | (new_position < 0) | (new_position >= LENGTH), 0.0, DISCOUNT)
    batch = position.shape[0]
    return RecurrentOutput(reward, discount, np.zeros((batch, 2)), np.zeros(batch)), new_position


def main() -> None:
    budgets = np.array([1, 2, 4, 8, 16, 32, 64])
    start_position = np.zeros(len(budgets), dtype=np.int64)
    print(f"Corridor of {LENGTH} cells: left ends the episode with 0, right pays 1.0 after {LENGTH} steps (discount {DISCOUNT}).")
    print(f"Optimal first action: right (value {DISCOUNT ** (LENGTH - 1):.3f} > 0).\n")
    print(f"{'simulations':>11} | {'MuZero action':>13} {'root value':>10} | {'Gumbel action':>13} {'root value':>10}")
    rows = []
    for budget in budgets:
        root = RootOutput(np.zeros((1, 2)), np.zeros(1), start_position[:1])
        t0 = time.perf_counter()
        mz = muzero_policy(root, corridor_step, int(budget), rng=0, dirichlet_fraction=0.0, temperature=0.0)
        gm = gumbel_muzero_policy(root, corridor_step, int(budget), rng=0, gumbel_scale=0.0)
        rows.append(time.perf_counter() - t0)
        name = {0: "left", 1: "right"}
        print(
            f"{budget:11d} | {name[int(mz.action[0])]:>13} {mz.root_value[0]:10.3f} | "
            f"{name[int(gm.action[0])]:>13} {gm.root_value[0]:10.3f}"
        )
    print(f"\nTotal search time: {sum(rows) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
