"""Sequential Halving schedule of Gumbel MuZero's root (Danihelka et al. 2022, Karnin et al. 2013)."""

from __future__ import annotations

import functools
import math

import numpy as np


def considered_visits_sequence(max_num_considered_actions: int, num_simulations: int) -> list[int]:
    """For each simulation, the visit count an action must have to be chosen at the root.

    Each phase gives every remaining action ``max(1, floor(n / (ceil(log2 m) * m_phase)))`` extra
    visits, then halves the remaining actions (never below 2).
    """
    if max_num_considered_actions <= 1:
        return list(range(num_simulations))
    log2max = int(math.ceil(math.log2(max_num_considered_actions)))
    sequence: list[int] = []
    visits = [0] * max_num_considered_actions
    num_considered = max_num_considered_actions
    while len(sequence) < num_simulations:
        num_extra_visits = max(1, int(num_simulations / (log2max * num_considered)))
        for _ in range(num_extra_visits):
            sequence.extend(visits[:num_considered])
            for i in range(num_considered):
                visits[i] += 1
        num_considered = max(2, num_considered // 2)
    return sequence[:num_simulations]


@functools.lru_cache(maxsize=64)
def considered_visits_table(max_num_considered_actions: int, num_simulations: int) -> np.ndarray:
    """``[max_num_considered_actions + 1, num_simulations]`` int32: row ``m`` is the sequence for ``m`` actions."""
    table = np.zeros((max_num_considered_actions + 1, num_simulations), np.int32)
    for m in range(max_num_considered_actions + 1):
        table[m] = considered_visits_sequence(m, num_simulations)
    table.setflags(write=False)
    return table
