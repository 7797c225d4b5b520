"""Guides: what a search's leaves are worth and which actions look good, from a trained agent or a function.

For a Discrete action space a guide is ``guide(observation [B, ...]) -> (prior_logits [B, A], value [B])``.
For a Box action space (Sampled MuZero, :func:`gym_planning.search.sampled_search`) it is a
:data:`BoxGuide`, ``guide(observation [B, ...], num_samples, rng) -> BoxGuideOutput``: K candidate actions per
state drawn from the agent's policy (a share from a widened Gaussian), their log-densities under the policy and
under the sampling distribution, and the state's value. Numpy in and out.
:func:`as_guide` turns a trained SB3 PPO/A2C, DQN, sb3-contrib QR-DQN, SAC, TD3, a MuZero agent or any
:class:`gym_planning.models.SearchModel` into one; :func:`search_model_of` finds the model an object carries.
:class:`gym_planning.models.SimulatorModel` and :class:`gym_planning.agents.SearchAgent` both use them, so this
module sits below both (models never import agents).

Shapes: ``B`` batch, ``A`` actions, ``K`` candidate actions per state, ``D`` action dimensions.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm

from gym_planning.models.base import SearchModel
from gym_planning.search.checks import to_numpy
from gym_planning.search.sampled import gaussian_candidates

__all__ = [
    "NUM_SAMPLES",
    "TD3_NOISE_STD",
    "BoxGuide",
    "BoxGuideOutput",
    "Guide",
    "as_guide",
    "check_bounded_box",
    "sample_count",
    "search_model_of",
]

Guide = Callable[[np.ndarray], "tuple[np.ndarray, np.ndarray]"]
"""``guide(observation [B, ...]) -> (prior_logits [B, A], value [B])``, numpy in and out."""

# K, the actions sampled at each search node for a Box action space. Our choice, not a paper's: on the true
# simulator a candidate costs no env step (only the children the search expands do), and 8 samples let Gumbel's
# Sequential Halving run three rounds.
NUM_SAMPLES = 8

# The standard deviation, in the actor's [-1, 1] units, of the Gaussian around a deterministic actor's action
# (TD3, DDPG) from which candidates are drawn: rl-zoo's Pendulum-v1 exploration noise for TD3 (noise_std 0.1).
TD3_NOISE_STD = 0.1


class BoxGuideOutput(NamedTuple):
    """What a Box-action guide says about B states.

    :param candidates: ``[B, K, D]`` float64 candidate actions in env units, inside the action space's Box.
    :param log_pi: ``[B, K]`` log-density of each candidate under the agent's policy.
    :param log_beta: ``[B, K]`` log-density under the distribution it was drawn from (densities may be taken
        before a squashing or clipping map shared by both: only ``log_pi - log_beta`` is used).
    :param value: ``[B]`` the agent's value of each state.
    """

    candidates: np.ndarray
    log_pi: np.ndarray
    log_beta: np.ndarray
    value: np.ndarray


BoxGuide = Callable[[np.ndarray, int, np.random.Generator], BoxGuideOutput]
"""``guide(observation [B, ...], num_samples K, rng) -> BoxGuideOutput``, numpy in and out."""


def check_bounded_box(space: spaces.Box, owner: str) -> None:
    """Refuse a Box with an infinite bound: candidates are mapped into the Box, so it must be bounded."""
    if not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
        raise ValueError(
            f"{owner} has an unbounded Box action space {space} (infinite low/high): planning over sampled actions "
            "needs finite bounds to map candidates into; wrap the env in a gymnasium.ActionWrapper whose action_space "
            "is the bounded Box of sensible actions (e.g. Box(-1, 1, shape)) and whose action() maps them to the env's"
        )


def search_model_of(obj: Any) -> SearchModel | None:
    """The :class:`SearchModel` an object carries: itself, or a MuZero agent's ``policy.network``; else None."""
    for candidate in (obj, getattr(getattr(obj, "policy", None), "network", None)):
        if (
            candidate is not None
            and callable(getattr(candidate, "root", None))
            and callable(getattr(candidate, "recurrent", None))
        ):
            return candidate
    return None


def _sb3_guide(algorithm: BaseAlgorithm, q_temperature: float) -> Guide | None:
    """The guide of an SB3 actor-critic (logits, value head) or Q-learner (``Q / T``, max Q); None for others."""
    policy: Any = algorithm.policy  # duck-typed below: actor-critic, DQN or QR-DQN policies
    if not isinstance(algorithm.action_space, spaces.Discrete):
        raise TypeError(
            f"a search guide needs a Discrete or Box action space; {type(algorithm).__name__} has {algorithm.action_space}"
        )

    def q_values(obs: th.Tensor) -> th.Tensor:
        if hasattr(policy, "quantile_net"):  # sb3-contrib QR-DQN: [B, n_quantiles, A] -> mean over quantiles
            return policy.quantile_net(obs).mean(1)
        return policy.q_net(obs)  # DQN

    evaluate: Callable[[th.Tensor], tuple[th.Tensor, th.Tensor]]
    if hasattr(policy, "get_distribution") and hasattr(policy, "predict_values"):  # PPO, A2C

        def evaluate(obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
            return policy.get_distribution(obs).distribution.logits, policy.predict_values(obs).reshape(-1)

    elif hasattr(policy, "quantile_net") or hasattr(policy, "q_net"):

        def evaluate(obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
            q = q_values(obs)
            return q / q_temperature, q.amax(1)

    else:
        return None

    def guide(observation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        policy.set_training_mode(False)
        obs, _ = policy.obs_to_tensor(observation)
        with th.no_grad():
            logits, value = evaluate(obs)
        return logits.cpu().numpy().astype(np.float64), value.cpu().numpy().astype(np.float64)

    return guide


def sample_count(action_space: spaces.Space, num_samples: int | None) -> int | None:
    """K for a search over ``action_space``: ``num_samples`` (default :data:`NUM_SAMPLES`) for a Box, None for a
    Discrete space (searched over all its actions), where asking for samples is an error."""
    if isinstance(action_space, spaces.Discrete):
        if num_samples is None:
            return None
        if num_samples > action_space.n:
            raise ValueError(
                f"num_samples={num_samples} is larger than the {action_space.n} actions of {action_space}: sampling "
                "more candidates than there are actions only repeats them; a Discrete space is searched over all its "
                "actions, so leave num_samples unset (search='gumbel' with max_num_considered_actions samples a subset)"
            )
        raise ValueError(
            f"num_samples={num_samples} applies to Box action spaces; {action_space} is searched over all its "
            "actions: leave num_samples unset (search='gumbel' with max_num_considered_actions samples a subset)"
        )
    k = NUM_SAMPLES if num_samples is None else num_samples
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"num_samples must be an integer >= 1; got {num_samples!r}")
    return int(k)


class _ActionMap(NamedTuple):
    """How an SB3 policy turns a Gaussian sample ``x`` into an env action.

    ``squash``: ``tanh(x)`` first (SAC, gSDE with ``squash_output``); ``scaled``: the result is in ``[-1, 1]`` and
    is clipped there and rescaled to the Box (``policy.unscale_action``); otherwise it is clipped to the Box, as
    SB3's ``predict`` does for PPO/A2C.
    """

    squash: bool
    scaled: bool


def _to_env_actions(samples: np.ndarray, action_map: _ActionMap, space: spaces.Box) -> np.ndarray:
    """``[B, K, D]`` Gaussian samples -> env actions inside ``space``."""
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    actions = np.tanh(samples) if action_map.squash else samples
    if action_map.scaled:
        return low + 0.5 * (np.clip(actions, -1.0, 1.0) + 1.0) * (high - low)
    return np.clip(actions, low, high)


def _sb3_box_parts(algorithm: BaseAlgorithm, action_noise_std: float) -> tuple[Callable, _ActionMap]:
    """``evaluate(obs) -> (mean [B, D], log_std [B, D], value [B])`` of an SB3 agent with Box actions, and its map."""
    policy: Any = algorithm.policy
    actor = getattr(policy, "actor", None)

    def critic_value(obs: th.Tensor, action: th.Tensor) -> th.Tensor:  # SB3's targets take the min over critics
        return th.cat(policy.critic(obs, action), dim=1).amin(dim=1)

    if actor is not None and hasattr(actor, "get_action_dist_params"):  # SAC: squashed Gaussian, twin critics

        def sac(obs: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
            mean, log_std, kwargs = actor.get_action_dist_params(obs)
            normal = actor.action_dist.proba_distribution(mean, log_std, **kwargs).distribution
            return normal.mean, normal.stddev.log(), critic_value(obs, th.tanh(normal.mean))  # the greedy action

        return sac, _ActionMap(squash=True, scaled=True)
    if actor is not None and hasattr(policy, "critic"):  # TD3, DDPG: deterministic actor plus exploration noise

        def td3(obs: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
            action = actor(obs)
            return action, th.full_like(action, float(np.log(action_noise_std))), critic_value(obs, action)

        return td3, _ActionMap(squash=False, scaled=True)
    if hasattr(policy, "get_distribution") and hasattr(policy, "predict_values"):  # PPO, A2C: (gSDE) diag Gaussian

        def ppo(obs: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
            normal = policy.get_distribution(obs).distribution
            return normal.mean, normal.stddev.log(), policy.predict_values(obs).reshape(-1)

        squash = bool(policy.squash_output)
        return ppo, _ActionMap(squash=squash, scaled=squash)
    raise TypeError(
        f"cannot use {type(algorithm).__name__} as a search guide for Box actions: expected SAC, TD3, DDPG, PPO or A2C"
    )


@contextlib.contextmanager
def _no_distribution_checks() -> Iterator[None]:
    """Let torch build a Normal with NaN parameters, so that our check (which names the agent) sees them first."""
    default = th.distributions.Distribution._validate_args
    th.distributions.Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        th.distributions.Distribution.set_default_validate_args(default)


def _sb3_box_guide(algorithm: BaseAlgorithm, action_noise_std: float) -> BoxGuide:
    """The Box guide of an SB3 SAC / TD3 / DDPG / PPO / A2C: Gaussian candidates and the critic's or value head's value.

    Candidates are sampled (:func:`gaussian_candidates`, with EfficientZero V2's widened share) in the space of
    the policy's Gaussian, which is pre-``tanh`` for SAC: the densities are taken there, the ``tanh`` Jacobian
    being common to ``pi`` and ``beta``, and only then mapped to env actions (:class:`_ActionMap`).
    """
    space: Any = algorithm.action_space  # a Box (as_guide dispatches on it)
    name = type(algorithm).__name__
    check_bounded_box(space, name)
    evaluate, action_map = _sb3_box_parts(algorithm, action_noise_std)
    policy: Any = algorithm.policy

    def guide(observation: np.ndarray, num_samples: int, rng: np.random.Generator) -> BoxGuideOutput:
        policy.set_training_mode(False)
        obs, _ = policy.obs_to_tensor(observation)
        with th.no_grad(), _no_distribution_checks():
            mean, log_std, value = (tensor.cpu().numpy().astype(np.float64) for tensor in evaluate(obs))
        bad = ~(np.isfinite(mean).all(axis=1) & np.isfinite(log_std).all(axis=1))
        if bad.any():
            raise ValueError(
                f"{name}'s policy gave NaN or infinite actions (Gaussian mean/log_std) for {int(bad.sum())} of "
                f"{len(bad)} observations, e.g. row {int(np.flatnonzero(bad)[0])}: the agent has diverged or the "
                "observations are not what it was trained on; search cannot sample candidates from it"
            )
        samples, log_pi, log_beta = gaussian_candidates(mean, log_std, num_samples, rng=rng)
        return BoxGuideOutput(_to_env_actions(samples, action_map, space), log_pi, log_beta, value)

    return guide


def as_guide(obj: Any, *, q_temperature: float = 1.0, action_noise_std: float = TD3_NOISE_STD) -> Guide | BoxGuide:
    """Turn a trained agent into a :data:`Guide` (Discrete actions) or a :data:`BoxGuide` (Box actions).

    :param obj: an SB3 PPO/A2C (policy logits, value head), DQN or QR-DQN (``Q / q_temperature`` as logits, max Q
        as value), a MuZero agent or any object with a SearchModel-like ``root(observation) -> RootOutput``, or a
        function that already has the guide's signature. With a Box action space: SAC (squashed Gaussian; value
        ``min_i Q_i(s, tanh(mean))``), TD3/DDPG (the actor's action plus Gaussian noise of ``action_noise_std``, which
        is both ``pi`` and the sampling distribution; value ``min_i Q_i(s, actor(s))``), PPO/A2C (diagonal Gaussian,
        clipped to the Box as SB3 does when acting; value head).
    :param q_temperature: temperature of the softmax over Q values (DQN, QR-DQN); in the units of Q.
    :param action_noise_std: standard deviation of the candidates around a deterministic actor's action (TD3,
        DDPG), in the actor's ``[-1, 1]`` units.
    """
    if q_temperature <= 0:
        raise ValueError(f"q_temperature must be > 0; got {q_temperature}")
    if not action_noise_std > 0:
        raise ValueError(f"action_noise_std must be > 0; got {action_noise_std}")
    if isinstance(obj, BaseAlgorithm) and isinstance(obj.action_space, spaces.Box):
        return _sb3_box_guide(obj, action_noise_std)
    if isinstance(obj, BaseAlgorithm):
        guide = _sb3_guide(obj, q_temperature)
        if guide is not None:
            return guide
    model = search_model_of(obj)
    if model is not None:

        def root_guide(observation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            with th.no_grad():
                root = model.root(observation)
            return to_numpy(root.prior_logits).astype(np.float64), to_numpy(root.value).astype(np.float64)

        return root_guide
    if callable(obj) and not isinstance(obj, BaseAlgorithm):
        return obj
    raise TypeError(
        f"cannot use {type(obj).__name__} as a search guide: expected an SB3 PPO/A2C/DQN/QR-DQN, a MuZero agent, an "
        "object with root(observation) -> RootOutput, or a function observation -> (prior_logits [B, A], value [B])"
    )
