"""Gumbel MuZero against mctx itself on identical table models (needs the `bench` extra)."""

import numpy as np
import pytest

from gym_planning.search import RecurrentOutput, RootOutput, gumbel_muzero_policy

NUM_STATES = 97


def _tables(num_actions: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return dict(
        reward=rng.normal(size=(NUM_STATES, num_actions)).astype(np.float32),
        value=rng.normal(size=NUM_STATES).astype(np.float32),
        logits=rng.normal(size=(NUM_STATES, num_actions)).astype(np.float32),
    )


def _next_state(state, action, num_actions):
    """A deterministic model whose states are integers: every (state, action) has its own successor."""
    return (state * num_actions + action + 1) % NUM_STATES


@pytest.mark.parametrize("use_mixed_value", [False, True])
@pytest.mark.parametrize("num_actions, num_simulations, seed", [(2, 8, 0), (3, 16, 1), (5, 20, 2), (6, 32, 3), (4, 7, 4)])
def test_gumbel_root_visits_and_weights_match_mctx(use_mixed_value, num_actions, num_simulations, seed):
    mctx = pytest.importorskip("mctx", reason="mctx (the `bench` extra) is the reference")
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    tables = _tables(num_actions, seed)
    roots = np.array([3, 17, 42], np.int32)
    discount = 0.9

    def recurrent_np(embedding, action):
        nxt = _next_state(np.asarray(embedding), np.asarray(action), num_actions)
        output = RecurrentOutput(
            reward=tables["reward"][embedding, action], discount=np.full(len(nxt), discount),
            prior_logits=tables["logits"][nxt], value=tables["value"][nxt],
        )  # fmt: skip
        return output, nxt

    ours = gumbel_muzero_policy(
        RootOutput(prior_logits=tables["logits"][roots], value=tables["value"][roots], embedding=roots),
        recurrent_np, num_simulations, gumbel_scale=0.0, use_mixed_value=use_mixed_value,
    )  # fmt: skip

    def recurrent_jax(params, rng_key, action, embedding):
        nxt = _next_state(embedding, action, num_actions)
        output = mctx.RecurrentFnOutput(
            reward=jnp.asarray(tables["reward"])[embedding, action], discount=jnp.full(nxt.shape, discount),
            prior_logits=jnp.asarray(tables["logits"])[nxt], value=jnp.asarray(tables["value"])[nxt],
        )  # fmt: skip
        return output, nxt

    root = mctx.RootFnOutput(
        prior_logits=jnp.asarray(tables["logits"][roots]), value=jnp.asarray(tables["value"][roots]),
        embedding=jnp.asarray(roots),
    )  # fmt: skip
    theirs = mctx.gumbel_muzero_policy(
        params=(), rng_key=jax.random.PRNGKey(0), root=root, recurrent_fn=recurrent_jax,
        num_simulations=num_simulations, gumbel_scale=0.0,
        qtransform=lambda tree, node: mctx.qtransform_completed_by_mix_value(tree, node, use_mixed_value=use_mixed_value),
    )  # fmt: skip
    their_visits = np.asarray(theirs.search_tree.summary().visit_counts)
    np.testing.assert_array_equal(ours.tree.children_visits[:, 0], their_visits)
    np.testing.assert_allclose(ours.action_weights, np.asarray(theirs.action_weights), atol=1e-5)
    np.testing.assert_array_equal(ours.action, np.asarray(theirs.action))
