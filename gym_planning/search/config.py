"""One search configuration: :class:`SearchConfig` names every setting of a search, and :func:`run_policy` runs it.

``MuZero``, ``SearchAgent``, ``GoSearchOpponent`` and the benchmarks build a :class:`SearchConfig` from their
typed keyword arguments and search through :func:`run_policy`, so each setting has one default, defined here.
The policy functions (:func:`gym_planning.search.muzero_policy`, :func:`gym_planning.search.gumbel_muzero_policy`)
keep mctx's keyword interface for direct use; their defaults for the settings below are the same values
(``tests/search/test_config.py`` checks that they agree).

Shapes: ``B`` roots, ``A`` actions.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np

from gym_planning.search.base import RecurrentFn, RootOutput, SearchOutput
from gym_planning.search.checks import integer_setting, setting, value_bounds_setting
from gym_planning.search.compiled_model import JitRecurrentFn
from gym_planning.search.policies import GUMBEL_DEFAULT_PARAMS, muzero_params, run_gumbel, run_muzero

__all__ = ["POLICIES", "SearchConfig", "run_policy"]

POLICIES = ("muzero", "gumbel")


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """Settings of one batched search (validated at construction; immutable: ``dataclasses.replace`` makes a variant).

    :param policy: ``"muzero"`` (pUCT with root Dirichlet noise, acts by visit counts; Schrittwieser et al. 2020)
        or ``"gumbel"`` (Gumbel MuZero: Gumbel-top-k and Sequential Halving at the root; Danihelka et al. 2022).
    :param num_simulations: simulations per tree (>= 1).
    :param max_depth: maximum tree depth in edges from the root (Hamrick et al.'s ``D_tree``); None: unbounded.
    :param dirichlet_alpha: concentration of the root Dirichlet noise (``"muzero"``). 0.25 as in the MuZero
        pseudocode for Atari and muzero-general (mctx and LightZero use 0.3; board games use less, 0.03 for Go).
    :param dirichlet_fraction: weight of that noise in the root prior (``"muzero"``); MuZero's 0.25.
    :param pb_c_init: pUCT ``c1`` (``"muzero"``); MuZero's 1.25.
    :param pb_c_base: pUCT ``c2`` (``"muzero"``); MuZero's 19652.
    :param temperature: visit-count temperature of the acted action (``"muzero"``); 0 = most visited.
    :param max_num_considered_actions: root actions sampled without replacement, Gumbel MuZero's ``m`` (mctx's 16).
    :param gumbel_scale: scale of the root Gumbel noise (``"gumbel"``); 0 for deterministic play.
    :param two_player: zero-sum alternating play: values and rewards are for the player to move / who moved.
    :param value_bounds: known ``(min, max)`` of Q (``"muzero"``, e.g. ``(-1, 1)`` in board games); None: tracked
        over each tree.
    :param num_threads: threads for a search with a compiled model (``JitRecurrentFn``): the batch's trees are
        split into parts searched in parallel, with results identical to one thread's. Batches under
        ``search.PARALLEL_MIN_BATCH`` trees and Python models use one thread. 1 (the default): off.
    """

    policy: Literal["muzero", "gumbel"] = "muzero"
    num_simulations: int = 16
    max_depth: int | None = None
    dirichlet_alpha: float = 0.25
    dirichlet_fraction: float = 0.25
    pb_c_init: float = 1.25
    pb_c_base: float = 19652.0
    temperature: float = 1.0
    max_num_considered_actions: int = 16
    gumbel_scale: float = 1.0
    two_player: bool = False
    value_bounds: tuple[float, float] | None = None
    num_threads: int = 1

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be 'muzero' or 'gumbel'; got {self.policy!r}")
        integer_setting("num_simulations", self.num_simulations, 1)
        if self.max_depth is not None:
            integer_setting("max_depth (None for unbounded)", self.max_depth, 1)
        setting("dirichlet_alpha", self.dirichlet_alpha, minimum=0.0, strict=True)
        if not 0.0 <= setting("dirichlet_fraction", self.dirichlet_fraction) <= 1.0:
            raise ValueError(f"dirichlet_fraction must be in [0, 1]; got {self.dirichlet_fraction!r}")
        setting("pb_c_init", self.pb_c_init, minimum=0.0)
        setting("pb_c_base", self.pb_c_base, minimum=0.0, strict=True)
        setting("temperature", self.temperature, minimum=0.0)
        integer_setting("max_num_considered_actions", self.max_num_considered_actions, 1)
        setting("gumbel_scale", self.gumbel_scale, minimum=0.0)
        if not isinstance(self.two_player, (bool, np.bool_)):
            raise TypeError(f"two_player must be True or False; got {self.two_player!r}")
        object.__setattr__(self, "value_bounds", value_bounds_setting(self.value_bounds))
        integer_setting("num_threads", self.num_threads, 1)

    @property
    def muzero_params(self) -> np.ndarray:
        """pUCT's constants in the layout the kernels read (``simulation.P_*``)."""
        return muzero_params(float(self.pb_c_init), float(self.pb_c_base))


def run_policy(
    config: SearchConfig,
    root: RootOutput,
    recurrent_fn: RecurrentFn | JitRecurrentFn,
    *,
    legal_mask: Any = None,
    rng: np.random.Generator | int | None = None,
    explore: bool = True,
    temperature: float | None = None,
) -> SearchOutput:
    """Run the search ``config`` describes from B roots.

    :param config: the settings.
    :param root: the model's output at the B roots (``prior_logits [B, A]``, ``value [B]``, embedding).
    :param recurrent_fn: ``(embedding, action [B]) -> (RecurrentOutput, new_embedding)``, or a compiled
        :class:`JitRecurrentFn`.
    :param legal_mask: ``[B, A]`` bool, True = legal, at the roots (None: all legal).
    :param rng: numpy Generator or seed for the noise and sampled actions.
    :param explore: add the root noise (Dirichlet or Gumbel, as configured); False searches without it
        (evaluation, policy targets). Per call rather than a second config: acting switches every step.
    :param temperature: visit-count temperature for this call (a schedule's current value; 0 = most visited);
        None: ``config.temperature``.
    :return: the policy's :class:`SearchOutput`.
    """
    # The settings were validated when the config was made: search without checking them again (a few µs
    # per call, a tenth of a search at batch 1); the per-call temperature is checked here.
    if config.policy == "gumbel":
        return run_gumbel(
            root,
            recurrent_fn,
            config.num_simulations,
            legal_mask=legal_mask,
            max_depth=config.max_depth,
            rng=rng,
            max_num_considered_actions=config.max_num_considered_actions,
            gumbel_scale=config.gumbel_scale if explore else 0.0,
            params=GUMBEL_DEFAULT_PARAMS,
            two_player=config.two_player,
            num_threads=config.num_threads,
        )
    return run_muzero(
        root,
        recurrent_fn,
        config.num_simulations,
        legal_mask=legal_mask,
        max_depth=config.max_depth,
        rng=rng,
        dirichlet_alpha=config.dirichlet_alpha,
        dirichlet_fraction=config.dirichlet_fraction if explore else 0.0,
        params=config.muzero_params,
        temperature=config.temperature if temperature is None else setting("temperature", temperature, minimum=0.0),
        two_player=config.two_player,
        value_bounds=config.value_bounds,
        num_threads=config.num_threads,
    )
