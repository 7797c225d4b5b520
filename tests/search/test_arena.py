"""The search's memory pool and workspaces: trees the caller still holds (or any array, view or record of them) are
never reused, dropped ones are."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gym_planning.search import RecurrentOutput, RootOutput, Tree, arena, gumbel_muzero_policy, muzero_policy


def _model(num_actions: int):
    def recurrent_fn(embedding, action):
        batch = action.shape[0]
        # Rewards depend on the action, so two searches with different roots build different trees.
        output = RecurrentOutput(action * 0.1 + embedding[:, 0], np.full(batch, 0.9), np.zeros((batch, num_actions)),
                                 np.zeros(batch))  # fmt: skip
        return output, embedding + 1.0

    return recurrent_fn


def _search(policy, offset: float):
    root = RootOutput(np.zeros((8, 5)), np.zeros(8), np.full((8, 3), offset))
    return policy(root, _model(5), 20, rng=0)


@pytest.mark.parametrize("policy", [muzero_policy, gumbel_muzero_policy])
def test_a_held_tree_is_never_overwritten(policy) -> None:
    first = _search(policy, 0.0)
    snapshot = {f.name: getattr(first.tree, f.name).copy() for f in dataclasses.fields(Tree)}
    second = _search(policy, 5.0)
    for name, values in snapshot.items():
        np.testing.assert_array_equal(getattr(first.tree, name), values, err_msg=name)
        assert not np.shares_memory(getattr(first.tree, name), getattr(second.tree, name)), name
    assert not np.array_equal(first.tree.children_rewards, second.tree.children_rewards)


def test_dropped_trees_are_reused_and_reset() -> None:
    expected = _search(muzero_policy, 0.0).tree.node_values.copy()
    _search(muzero_policy, 3.0)  # fills a pooled buffer with other values, then drops it
    pooled = len(arena._buffers)
    for _ in range(10):
        np.testing.assert_array_equal(_search(muzero_policy, 0.0).tree.node_values, expected)
    assert len(arena._buffers) == pooled  # every search found a free buffer


def test_a_view_kept_by_the_caller_keeps_its_buffer_busy() -> None:
    visits = _search(muzero_policy, 0.0).tree.children_visits[:, 0]
    kept = visits.copy()
    for _ in range(3):
        _search(muzero_policy, 7.0)
    np.testing.assert_array_equal(visits, kept)


@pytest.mark.parametrize("policy", [muzero_policy, gumbel_muzero_policy])
def test_a_dropped_workspace_is_reused_with_the_results_of_a_fresh_one(policy) -> None:
    expected = _search(policy, 0.0)
    expected_arrays = {f.name: getattr(expected.tree, f.name).copy() for f in dataclasses.fields(Tree)}
    address = expected.tree.node_values.__array_interface__["data"][0]
    del expected
    _search(policy, 4.0)  # takes the dropped workspace, fills it with other values, drops it
    again = _search(policy, 0.0)
    assert again.tree.node_values.__array_interface__["data"][0] == address
    for name, values in expected_arrays.items():
        np.testing.assert_array_equal(getattr(again.tree, name), values, err_msg=name)


@pytest.mark.parametrize("kept", ["node_visits", "children_visits", "arrays", "fields"])
def test_any_part_of_a_tree_kept_by_the_caller_keeps_its_workspace_busy(kept: str) -> None:
    part = getattr(_search(muzero_policy, 0.0).tree, kept)  # a field, a view field, the kernels' record, its tuple
    arrays = list(part) if kept in ("arrays", "fields") else [part]
    snapshot = [a.copy() for a in arrays]
    for _ in range(3):
        _search(muzero_policy, 7.0)
    for array, values in zip(arrays, snapshot):
        np.testing.assert_array_equal(array, values)


def test_a_tree_built_by_hand_has_no_kernel_record() -> None:
    allocated = Tree.allocate(1, 2, 3)
    by_hand = Tree(**{f.name: getattr(allocated, f.name).copy() for f in dataclasses.fields(Tree)})
    assert allocated.arrays.edge_floats.shape == (1, 2, 5, 3)
    with pytest.raises(TypeError, match="Tree.allocate"):
        _ = by_hand.arrays
