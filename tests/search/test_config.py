"""SearchConfig and run_policy: one default per setting, the same search as the policy functions, one clear error."""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest

from gym_planning.search import RecurrentOutput, RootOutput, SearchConfig, gumbel_muzero_policy, muzero_policy, run_policy

NUM_ACTIONS = 3
BATCH = 2


def bandit_recurrent_fn(embedding: np.ndarray, action: np.ndarray) -> tuple[RecurrentOutput, np.ndarray]:
    """A one-step game: action ``a`` pays ``sign * a / 2``, then the episode ends (``sign`` is the embedding [B, 1])."""
    output = RecurrentOutput(
        reward=embedding[:, 0] * action / 2.0,
        discount=np.zeros(len(action)),
        prior_logits=np.zeros((len(action), NUM_ACTIONS)),
        value=np.zeros(len(action)),
    )
    return output, embedding


def bandit_root() -> RootOutput:
    """Row 0 gains by the largest action, row 1 by the smallest (signs +1 and -1 in the embedding)."""
    return RootOutput(np.array([[0.0, 0.5, -0.5], [0.2, 0.0, 0.1]]), np.zeros(BATCH), np.array([[1.0], [-1.0]]))


def keyword_defaults(function) -> dict:
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


def test_policy_functions_default_to_the_configs_settings():
    config = {field.name: field.default for field in dataclasses.fields(SearchConfig)}
    for function in (muzero_policy, gumbel_muzero_policy):
        shared = {name: value for name, value in keyword_defaults(function).items() if name in config}
        assert shared == {name: config[name] for name in shared}, function.__name__
    assert config["dirichlet_alpha"] == 0.25  # MuZero's pseudocode (Atari); documented in SearchConfig


def test_agents_default_to_the_configs_settings():
    pytest.importorskip("torch")
    from gym_planning.agents import GoSearchOpponent, MuZero, SearchAgent

    config = {field.name: field.default for field in dataclasses.fields(SearchConfig)}
    config["search"] = config.pop("policy")
    # MuZero's temperature is a schedule; its two_player is None = read from the env's num_players.
    for cls, own in ((MuZero, {"temperature", "two_player"}), (SearchAgent, set())):
        shared = {name: value for name, value in keyword_defaults(cls.__init__).items() if name in config.keys() - own}
        assert len(shared) >= 6 and shared == {name: config[name] for name in shared}, cls.__name__
    assert keyword_defaults(GoSearchOpponent.__init__)["max_depth"] == config["max_depth"]


@pytest.mark.parametrize("policy", ["muzero", "gumbel"])
def test_run_policy_runs_the_same_search_as_the_policy_function(policy):
    config = SearchConfig(policy=policy, num_simulations=12, max_depth=3, max_num_considered_actions=2, temperature=0.5)
    legal = np.array([[True, True, True], [True, False, True]])
    ours = run_policy(config, bandit_root(), bandit_recurrent_fn, legal_mask=legal, rng=7)
    if policy == "muzero":
        direct = muzero_policy(bandit_root(), bandit_recurrent_fn, 12, legal_mask=legal, max_depth=3, rng=7, temperature=0.5)
    else:
        direct = gumbel_muzero_policy(
            bandit_root(), bandit_recurrent_fn, 12, legal_mask=legal, max_depth=3, rng=7, max_num_considered_actions=2
        )
    np.testing.assert_array_equal(ours.action, direct.action)
    np.testing.assert_array_equal(ours.action_weights, direct.action_weights)
    np.testing.assert_array_equal(ours.tree.children_visits, direct.tree.children_visits)


@pytest.mark.parametrize("policy", ["muzero", "gumbel"])
def test_explore_false_removes_the_root_noise(policy):
    config = SearchConfig(policy=policy, num_simulations=64, dirichlet_fraction=1.0, gumbel_scale=5.0)
    quiet = [
        run_policy(config, bandit_root(), bandit_recurrent_fn, rng=seed, explore=False, temperature=0.0) for seed in range(4)
    ]
    # Without noise every seed searches the same tree; the best arm is 2 for row 0 and 0 for row 1.
    for output in quiet:
        np.testing.assert_array_equal(output.tree.children_visits, quiet[0].tree.children_visits)
        np.testing.assert_array_equal(output.action, [2, 0])
    noisy = [run_policy(config, bandit_root(), bandit_recurrent_fn, rng=seed).tree.children_visits for seed in range(4)]
    assert any(not np.array_equal(visits, noisy[0]) for visits in noisy)


def test_temperature_override_replaces_the_configs():
    config = SearchConfig(num_simulations=30, dirichlet_fraction=0.0, temperature=100.0)
    greedy = run_policy(config, bandit_root(), bandit_recurrent_fn, rng=0, temperature=0.0)
    visits = greedy.tree.children_visits[:, 0]
    np.testing.assert_array_equal(greedy.action, visits.argmax(axis=1))
    hot = [int(run_policy(config, bandit_root(), bandit_recurrent_fn, rng=seed).action[0]) for seed in range(20)]
    assert len(set(hot)) > 1  # temperature 100: nearly uniform over the visited actions


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(policy="alphazero"), "policy must be 'muzero' or 'gumbel'"),
        (dict(num_simulations=0), "num_simulations must be an integer >= 1"),
        (dict(num_simulations=2.5), "num_simulations must be an integer >= 1"),
        (dict(max_depth=0), r"max_depth \(None for unbounded\) must be an integer >= 1"),
        (dict(dirichlet_alpha=0.0), "dirichlet_alpha must be a finite number > 0"),
        (dict(dirichlet_fraction=1.5), r"dirichlet_fraction must be in \[0, 1\]"),
        (dict(pb_c_base=0.0), "pb_c_base must be a finite number > 0"),
        (dict(temperature=-1.0), "temperature must be a finite number >= 0"),
        (dict(max_num_considered_actions=0), "max_num_considered_actions must be an integer >= 1"),
        (dict(gumbel_scale=np.inf), "gumbel_scale must be a finite number >= 0"),
        (dict(value_bounds=(1.0, 0.0)), "value_bounds must be None or"),
    ],
)
def test_bad_settings_raise_one_clear_error_at_construction(settings, message):
    with pytest.raises(ValueError, match=message):
        SearchConfig(**settings)


def test_the_config_is_immutable_and_replace_validates():
    config = SearchConfig(value_bounds=[-1, 1])
    assert config.value_bounds == (-1.0, 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.num_simulations = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="num_simulations"):
        dataclasses.replace(config, num_simulations=-1)
    with pytest.raises(TypeError, match="two_player must be True or False"):
        SearchConfig(two_player="yes")  # type: ignore[arg-type]
