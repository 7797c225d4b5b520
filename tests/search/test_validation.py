"""Bad input to the search raises one clear ``ValueError``/``TypeError`` that names the problem."""

from __future__ import annotations

import numpy as np
import pytest

from gym_planning.search import JitRecurrentFn, RecurrentOutput, RootOutput, gumbel_muzero_policy, muzero_policy
from tests.search.reference import hash_model_step

B, A = 3, 4
POLICIES = pytest.mark.parametrize("policy", [muzero_policy, gumbel_muzero_policy], ids=["muzero", "gumbel"])


def good_root(**changes) -> RootOutput:
    return RootOutput(np.zeros((B, A)), np.zeros(B), np.zeros((B, 2)))._replace(**changes)


def model(**changes):
    """A well-formed recurrent_fn, except for the outputs named in ``changes`` (called with the batch size)."""

    def recurrent_fn(embedding, action):
        batch = len(action)
        fields = dict(
            reward=np.zeros(batch),
            discount=np.full(batch, 0.9),
            prior_logits=np.zeros((batch, A)),
            value=np.zeros(batch),
            legal_mask=None,
        )
        fields.update({name: make(batch) for name, make in changes.items()})
        return RecurrentOutput(**fields), embedding

    return recurrent_fn


def search(policy, root=None, recurrent_fn=None, num_simulations=4, **kwargs):
    return policy(root or good_root(), recurrent_fn or model(), num_simulations, **kwargs)


@POLICIES
def test_a_good_search_runs(policy) -> None:
    out = search(policy)
    assert out.action.shape == (B,) and out.action.dtype == np.int64
    assert out.action_weights.shape == (B, A) and out.action_weights.dtype == np.float32
    assert out.root_value.shape == (B,) and out.root_value.dtype == np.float32
    np.testing.assert_allclose(out.action_weights.sum(axis=1), 1.0, rtol=1e-6)


# ---------------------------------------------------------------- the root


@POLICIES
@pytest.mark.parametrize("logits", [np.zeros(A), np.zeros((B, A, 1)), np.zeros((B, 0))], ids=["1d", "3d", "no-actions"])
def test_root_logits_of_the_wrong_shape(policy, logits) -> None:
    with pytest.raises(ValueError, match=r"root prior_logits must have shape \[B, A\]"):
        search(policy, good_root(prior_logits=logits))


@POLICIES
@pytest.mark.parametrize("value", [np.zeros(B + 1), np.zeros((B, 1)), np.float64(0.0)], ids=["long", "2d", "scalar"])
def test_root_value_of_the_wrong_shape(policy, value) -> None:
    with pytest.raises(ValueError, match=r"root value must have shape \[B\]"):
        search(policy, good_root(value=value))


@POLICIES
@pytest.mark.parametrize("embedding", [np.zeros((B - 1, 2)), [object()] * (B + 1)], ids=["array", "list"])
def test_root_embedding_with_the_wrong_number_of_rows(policy, embedding) -> None:
    with pytest.raises(ValueError, match="root embedding must hold B = 3 rows"):
        search(policy, good_root(embedding=embedding))


@POLICIES
def test_root_embedding_of_an_unsupported_type(policy) -> None:
    with pytest.raises(TypeError, match="root embedding must be a numpy array, a torch tensor or a list"):
        search(policy, good_root(embedding={i: i for i in range(B)}))


@POLICIES
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_root_logits(policy, bad) -> None:
    logits = np.zeros((B, A))
    logits[1, 2] = bad
    with pytest.raises(ValueError, match=r"root prior_logits contain NaN or \+inf"):
        search(policy, good_root(prior_logits=logits))


@POLICIES
@pytest.mark.parametrize("bad", [np.nan, -np.inf])
def test_nan_or_inf_root_value(policy, bad) -> None:
    value = np.zeros(B)
    value[2] = bad
    with pytest.raises(ValueError, match="root value contains NaN or infinity"):
        search(policy, good_root(value=value))


@POLICIES
def test_mask_with_no_legal_action(policy) -> None:
    mask = np.ones((B, A), bool)
    mask[1] = False
    with pytest.raises(ValueError, match=r"legal_mask has no legal action for batch rows \[1\]"):
        search(policy, legal_mask=mask)


@POLICIES
def test_mask_of_the_wrong_shape(policy) -> None:
    with pytest.raises(ValueError, match=r"legal_mask must have shape \[B, A\]"):
        search(policy, legal_mask=np.ones((B, A + 1), bool))


@POLICIES
def test_mask_that_is_not_boolean(policy) -> None:
    with pytest.raises(ValueError, match=r"legal_mask must be boolean \(True = legal\) or 0/1"):
        search(policy, legal_mask=np.full((B, A), 2))


def test_integer_0_1_mask_is_accepted() -> None:
    mask = np.ones((B, A), np.int64)
    mask[:, 0] = 0
    out = search(muzero_policy, legal_mask=mask, dirichlet_fraction=0.0)
    assert (out.tree.summary().visit_counts[:, 0] == 0).all()


# ---------------------------------------------------------------- search settings


@POLICIES
@pytest.mark.parametrize("num_simulations", [0, -3, 2.5, None])
def test_num_simulations_below_one_or_not_an_integer(policy, num_simulations) -> None:
    with pytest.raises(ValueError, match=r"num_simulations must be an integer >= 1"):
        search(policy, num_simulations=num_simulations)


@POLICIES
@pytest.mark.parametrize("max_depth", [0, -1, 1.5])
def test_max_depth_below_one(policy, max_depth) -> None:
    with pytest.raises(ValueError, match=r"max_depth must be None or an integer >= 1"):
        search(policy, max_depth=max_depth)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(temperature=-1.0), "temperature must be a finite number >= 0"),
        (dict(dirichlet_fraction=1.5), r"dirichlet_fraction must be in \[0, 1\]"),
        (dict(dirichlet_alpha=0.0), "dirichlet_alpha must be a finite number > 0"),
        (dict(value_bounds=(1.0, 1.0)), "value_bounds must be"),
    ],
)
def test_bad_muzero_settings(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        search(muzero_policy, **kwargs)


def test_bad_gumbel_settings() -> None:
    with pytest.raises(ValueError, match="max_num_considered_actions must be an integer >= 1"):
        search(gumbel_muzero_policy, max_num_considered_actions=0)


# ---------------------------------------------------------------- what recurrent_fn returns


@POLICIES
@pytest.mark.parametrize(
    ("name", "make", "expected"),
    [
        ("reward", lambda b: np.zeros(b + 1), r"recurrent_fn returned reward of shape \(4,\); expected \(3,\)"),
        ("discount", lambda b: np.zeros((b, 1)), r"recurrent_fn returned discount of shape \(3, 1\); expected \(3,\)"),
        ("value", lambda b: np.float64(0.0), r"recurrent_fn returned value of shape \(\); expected \(3,\)"),
        ("prior_logits", lambda b: np.zeros((b, A + 1)), r"recurrent_fn returned prior_logits of shape \(3, 5\)"),
        ("prior_logits", lambda b: np.zeros(b), r"recurrent_fn returned prior_logits of shape \(3,\)"),
    ],
)
def test_recurrent_outputs_of_the_wrong_shape(policy, name, make, expected) -> None:
    with pytest.raises(ValueError, match=expected):
        search(policy, recurrent_fn=model(**{name: make}))


@POLICIES
@pytest.mark.parametrize(
    "mask",
    [
        lambda b: np.ones(b, bool),
        lambda b: np.ones((b, A - 1), bool),
    ],
    ids=["1d", "short"],
)
def test_recurrent_legal_mask_of_the_wrong_shape(policy, mask) -> None:
    with pytest.raises(ValueError, match="recurrent_fn returned legal_mask of shape"):
        search(policy, recurrent_fn=model(legal_mask=mask))


def nan_at_row(row: int, shape_tail: tuple[int, ...] = (), bad: float = np.nan):
    def make(batch):
        x = np.zeros((batch, *shape_tail))
        x[row] = bad
        return x

    return make


@POLICIES
@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("reward", nan_at_row(1)),
        ("discount", nan_at_row(2)),
        ("value", nan_at_row(0)),
        ("value", nan_at_row(0, bad=np.inf)),
        ("prior_logits", nan_at_row(1, (A,))),
    ],
)
def test_nan_returned_by_recurrent_fn(policy, name, make) -> None:
    with pytest.raises(ValueError, match=f"recurrent_fn returned a NaN or infinite {name} at simulation 0"):
        search(policy, recurrent_fn=model(**{name: make}))


@POLICIES
def test_recurrent_fn_returning_a_plain_tuple(policy) -> None:
    def recurrent_fn(embedding, action):
        batch = len(action)
        return (np.zeros(batch), np.ones(batch), np.zeros((batch, A)), np.zeros(batch), None), embedding

    with pytest.raises(TypeError, match=r"recurrent_fn must return \(RecurrentOutput, new_embedding\)"):
        search(policy, recurrent_fn=recurrent_fn)


@POLICIES
def test_recurrent_fn_forgetting_the_embedding(policy) -> None:
    def recurrent_fn(embedding, action):
        batch = len(action)
        return RecurrentOutput(np.zeros(batch), np.ones(batch), np.zeros((batch, A)), np.zeros(batch))

    with pytest.raises(TypeError, match=r"recurrent_fn must return \(RecurrentOutput, new_embedding\)"):
        search(policy, recurrent_fn=recurrent_fn)


@POLICIES
@pytest.mark.parametrize("embedding", ["array", "list"])
def test_recurrent_fn_returning_too_few_embeddings(policy, embedding) -> None:
    def recurrent_fn(states, action):
        batch = len(action)
        output = RecurrentOutput(np.zeros(batch), np.ones(batch), np.zeros((batch, A)), np.zeros(batch))
        return output, states[:-1]

    root = good_root(embedding=np.zeros((B, 2)) if embedding == "array" else [object() for _ in range(B)])
    with pytest.raises(ValueError, match="recurrent_fn returned .*embedding"):
        search(policy, root, recurrent_fn)


@POLICIES
def test_root_logits_minus_inf_on_every_legal_action(policy) -> None:
    # -inf is a fine way to rule out one action, but a row with no finite legal logit has no prior at all.
    logits = np.zeros((B, A))
    logits[1] = -np.inf
    with pytest.raises(ValueError, match="root prior_logits"):
        search(policy, good_root(prior_logits=logits))


@POLICIES
def test_recurrent_logits_minus_inf_on_every_action(policy) -> None:
    with pytest.raises(ValueError, match="recurrent_fn returned .*prior_logits"):
        search(policy, recurrent_fn=model(prior_logits=lambda b: np.full((b, A), -np.inf)))


@POLICIES
def test_recurrent_logits_minus_inf_on_some_actions_are_accepted(policy) -> None:
    def some_ruled_out(batch):
        logits = np.zeros((batch, A))
        logits[:, 1:3] = -np.inf
        return logits

    out = search(policy, recurrent_fn=model(prior_logits=some_ruled_out), num_simulations=20)
    tree = out.tree
    interior = np.arange(tree.node_visits.shape[1])[None, :] < tree.num_nodes[:, None]
    interior[:, 0] = False
    # A zero prior still lets MuZero explore an action, but the search stays finite everywhere.
    assert np.isfinite(tree.node_values).all() and np.isfinite(out.action_weights).all()
    assert interior.any()


# ---------------------------------------------------------------- compiled models


@POLICIES
def test_compiled_model_needs_a_2d_array_embedding(policy) -> None:
    jit_fn = JitRecurrentFn(hash_model_step, np.array([0.0, 1.0, -1.0]))
    with pytest.raises(TypeError, match=r"a JitRecurrentFn needs the root embedding as a 2-D numpy array \[B, E\]"):
        search(policy, good_root(embedding=[0] * B), jit_fn)


@POLICIES
def test_nan_returned_by_a_compiled_model(policy) -> None:
    jit_fn = JitRecurrentFn(hash_model_step, np.array([0.0, np.nan, -1.0]))  # NaN logit scale: NaN logits
    root = good_root(embedding=np.arange(B, dtype=np.int64)[:, None])
    with pytest.raises(ValueError, match="the jitted model returned a NaN or infinite prior_logits at simulation 0"):
        search(policy, root, jit_fn)
