"""The Python-callback loop's packing: the model sees only the expanding trees, in order, with arrays it may keep."""

from __future__ import annotations

import numpy as np

from gym_planning.search import RecurrentOutput, RootOutput, muzero_policy

NUM_ACTIONS = 3


def _recording_model(calls: list[tuple[np.ndarray, np.ndarray]], terminal_action: int = -1, keep_embedding: bool = False):
    """Reward = action, value 0; ``terminal_action`` ends the episode (discount 0). Embeddings count the depth
    (or stay the root's with ``keep_embedding``). Every (embedding, action) pair the search passes is kept,
    unchanged, in ``calls``."""

    def recurrent_fn(embedding: np.ndarray, action: np.ndarray):
        calls.append((embedding, action))
        size = action.shape[0]
        discount = np.where(action == terminal_action, 0.0, 1.0)
        output = RecurrentOutput(action.astype(np.float64), discount, np.zeros((size, NUM_ACTIONS)), np.zeros(size))
        return output, embedding.copy() if keep_embedding else embedding + 1.0

    return recurrent_fn


def test_the_model_gets_actions_it_may_keep_and_the_tree_records_the_same_edges() -> None:
    calls: list[tuple[np.ndarray, np.ndarray]] = []
    root = RootOutput(np.zeros((2, NUM_ACTIONS)), np.zeros(2), np.zeros((2, 1)))
    output = muzero_policy(root, _recording_model(calls), 12, rng=0, dirichlet_fraction=0.0)
    tree = output.tree
    assert len(calls) == 12
    # Node i + 1 of each tree was expanded by call i: the kept action arrays still hold those edges.
    kept = np.stack([action for _, action in calls], axis=1)  # [B, 12]
    np.testing.assert_array_equal(kept, tree.action_from_parent[:, 1:13])
    # The embedding passed for a node's expansion is its parent's (root embedding 0, then depth).
    depths = np.stack([embedding[:, 0] for embedding, _ in calls], axis=1)
    np.testing.assert_array_equal(depths, tree.node_depth[:, 1:13] - 1)


def test_trees_that_do_not_expand_are_left_out_of_the_call() -> None:
    """Action 0 is terminal (discount 0). Tree 0's prior insists on it, so after its first expansion its walks
    end on that terminal edge and back up without a model call; trees 1 and 2 prefer other actions. The
    embedding carries the tree's index (the model keeps it), so each call's rows name their trees."""
    calls: list[tuple[np.ndarray, np.ndarray]] = []
    logits = np.array([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]])
    root = RootOutput(logits, np.zeros(3), np.arange(3.0)[:, None])
    model = _recording_model(calls, terminal_action=0, keep_embedding=True)
    output = muzero_policy(root, model, 20, rng=0, dirichlet_fraction=0.0)
    trees = [embedding[:, 0].astype(int).tolist() for embedding, _ in calls]
    assert trees[0] == [0, 1, 2]
    assert all(0 not in rows for rows in trees[1:])  # tree 0 expanded once, then only revisited its terminal edge
    assert output.tree.num_nodes[0] == 2 and output.tree.children_visits[0, 0, 0] == 20
    assert sum(map(len, trees)) == int(output.tree.num_nodes.sum()) - 3  # one call row per node below a root
