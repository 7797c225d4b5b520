"""The fast paths of issue 17 give the results of the plain ones: the parallel compiled search, the Dirichlet
noise drawn as Gamma variates, and the embedding store carved beside the trees."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gym_planning.search import JitRecurrentFn, RootOutput, SearchConfig, Tree, run_policy
from gym_planning.search.embeddings import EmbeddingStore
from gym_planning.search.policies import _noisy_root_logits
from gym_planning.search.search import PARALLEL_MIN_BATCH, parallel_parts
from tests.search.reference import HashModel, hash_model_step

NUM_ACTIONS = 5


def _hash_root(batch_size: int, seed: int = 0) -> RootOutput:
    """Roots of the hash model: random logits and values, states as a ``[B, 1]`` int64 embedding."""
    rng = np.random.default_rng(seed)
    states = np.array([[HashModel.root_state(seed * 1000 + b)] for b in range(batch_size)], np.int64)
    return RootOutput(rng.normal(size=(batch_size, NUM_ACTIONS)), rng.normal(size=batch_size), states)


@pytest.mark.parametrize("policy", ["muzero", "gumbel"])
@pytest.mark.parametrize("batch_size", [PARALLEL_MIN_BATCH, PARALLEL_MIN_BATCH + 37])
def test_a_parallel_search_builds_the_trees_of_one_thread(policy: str, batch_size: int) -> None:
    model = JitRecurrentFn(hash_model_step, np.array([0.1, 2.0, 0.7]))  # terminal steps, masks, varied priors
    root = _hash_root(batch_size)
    legal = np.random.default_rng(1).random((batch_size, NUM_ACTIONS)) < 0.8
    legal[:, 0] = True
    outputs = []
    for threads in (1, 2, 3):
        config = SearchConfig(policy=policy, num_simulations=24, num_threads=threads)
        outputs.append(run_policy(config, root, model, legal_mask=legal, rng=7))
    assert parallel_parts(batch_size, 2) == 2
    serial = outputs[0]
    for parallel in outputs[1:]:
        np.testing.assert_array_equal(parallel.action, serial.action)
        np.testing.assert_array_equal(parallel.action_weights, serial.action_weights)
        np.testing.assert_array_equal(parallel.root_value, serial.root_value)
        for field in dataclasses.fields(Tree):
            np.testing.assert_array_equal(getattr(parallel.tree, field.name), getattr(serial.tree, field.name), field.name)


def test_small_batches_and_one_thread_are_not_split() -> None:
    assert parallel_parts(PARALLEL_MIN_BATCH - 1, 2) == 1
    assert parallel_parts(256, 1) == 1
    assert parallel_parts(256, 4) == 4
    assert parallel_parts(PARALLEL_MIN_BATCH, 8) == 2  # parts of at least half the minimum batch
    assert parallel_parts(4 * PARALLEL_MIN_BATCH, 2) == 2


def test_a_parallel_search_reports_the_earliest_failing_simulation() -> None:
    def step(params, embedding, action, reward, discount, prior_logits, value, legal_mask, new_embedding):
        for b in range(action.shape[0]):
            reward[b], discount[b], value[b] = 0.0, 0.9, 0.0
            prior_logits[b, :] = 0.0
            new_embedding[b, 0] = embedding[b, 0] + 1.0
            # Tree 40 (in the second part) fails first, at its third expansion; tree 3 at its fifth.
            if (embedding[b, 1] == 40.0 and embedding[b, 0] >= 2.0) or (embedding[b, 1] == 3.0 and embedding[b, 0] >= 4.0):
                value[b] = np.nan
            new_embedding[b, 1] = embedding[b, 1]

    from numba import njit

    model = JitRecurrentFn(njit(step), np.zeros(1))
    batch = 64
    root = RootOutput(np.zeros((batch, 2)), np.zeros(batch), np.stack([np.zeros(batch), np.arange(batch, dtype=float)], 1))
    messages = []
    for threads in (1, 2):
        with pytest.raises(ValueError, match="value") as error:
            run_policy(SearchConfig(num_simulations=16, num_threads=threads), root, model, rng=0)
        messages.append(str(error.value))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("alpha", [0.25, 0.03])  # numpy draws Dirichlet noise differently below 0.1
def test_root_noise_is_numpys_dirichlet(alpha: float) -> None:
    root = _hash_root(6, seed=3)
    legal = np.ones((6, NUM_ACTIONS), np.bool_)
    legal[2, 1:3] = False
    config = SearchConfig(num_simulations=4, dirichlet_alpha=alpha)
    model = JitRecurrentFn(hash_model_step, np.array([0.0, 1.0, -1.0]))
    tree = run_policy(config, root, model, legal_mask=legal, rng=11).tree
    noise = np.random.default_rng(11).dirichlet(np.full(NUM_ACTIONS, alpha), size=6)
    expected = _noisy_root_logits(root.prior_logits, legal, noise, config.dirichlet_fraction)
    np.testing.assert_array_equal(tree.children_prior_logits[:, 0], expected)


def test_a_store_refuses_data_of_another_shape_or_dtype() -> None:
    root = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="store data must be float32 of shape"):
        EmbeddingStore(root, 8, data=np.zeros((8, 3)))
    rows = (root + np.arange(2)[:, None]).astype(np.float32)
    store = EmbeddingStore.for_trees(rows, 2, 4, data=np.empty((8, 3), np.float32))
    np.testing.assert_array_equal(store.data[[0, 4]], [[0, 0, 0], [1, 1, 1]])


def test_a_borrowed_array_reads_and_writes_the_same_memory() -> None:
    from numba import njit

    from gym_planning.search.borrowed import borrowed

    @njit
    def double_through_borrowed(array):
        view = borrowed(array)
        for i in range(view.shape[0]):
            for j in range(view.shape[1]):
                view[i, j] *= 2.0
        return view.sum()

    array = np.arange(6.0).reshape(2, 3)
    assert double_through_borrowed(array) == 30.0
    np.testing.assert_array_equal(array, np.arange(6.0).reshape(2, 3) * 2)
