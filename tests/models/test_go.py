"""Go's rules as a search model: rewards for the mover, absorbing ends, root checks, rollouts, a search that finds
the winning pass."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyspiel")

from gym_planning.envs.go import BLACK, WHITE, move_from_string  # noqa: E402
from gym_planning.models.go import ILLEGAL_LOGIT, GoPerfectModel, fills_own_eye, random_rollout  # noqa: E402
from gym_planning.search import SearchConfig, run_policy  # noqa: E402
from tests.envs.test_go import PASS, position_after, walls  # noqa: E402


def test_perfect_model_rewards_are_for_the_mover_and_terminal_states_absorb():
    state = position_after(walls("e", "f") + ["pass"])  # white to move; white passing ends it, black wins
    model = GoPerfectModel()
    output, children = model.recurrent([state, state], np.array([PASS, move_from_string("g5")]))
    assert output.reward.tolist() == [-1.0, 0.0] and output.discount.tolist() == [0.0, 1.0]
    assert children[1].legal_actions() == np.flatnonzero(output.legal_mask[1]).tolist()
    assert output.prior_logits[1, move_from_string("e5")] == ILLEGAL_LOGIT and output.prior_logits[1, PASS] == 0
    assert str(state) == str(position_after(walls("e", "f") + ["pass"]))  # parents are never changed
    output, again = model.recurrent([children[0]], np.array([0]))
    assert again[0] is children[0] and (output.reward[0], output.discount[0]) == (0.0, 0.0)


def test_perfect_model_root_rejects_non_go_and_terminal_states():
    model = GoPerfectModel()
    with pytest.raises(TypeError, match="list of OpenSpiel Go states"):
        model.root(position_after([]))
    with pytest.raises(ValueError, match="terminal"):
        model.root([position_after(["pass", "pass"])])


@pytest.mark.parametrize("black_file, should_pass", [("e", True), ("d", False)])
def test_search_passes_exactly_when_passing_wins(black_file, should_pass):
    # White has just passed: black's pass ends the game; it wins with file e (+1.5), loses with file d (-7.5).
    # Without noise, every legal move is considered and the search needs no luck to find the pass.
    state = position_after(walls(black_file, "f") + ["a9", "pass"])
    model = GoPerfectModel(num_rollouts=0)
    config = SearchConfig(policy="gumbel", num_simulations=100, max_num_considered_actions=82, two_player=True)
    output = run_policy(config, model.root([state]), model.recurrent, legal_mask=model.legal_masks([state]), explore=False)
    assert output.tree.qvalues()[0, PASS] == (1.0 if should_pass else -1.0)
    assert (output.action[0] == PASS) == should_pass


def test_random_rollouts_keep_their_eyes_and_finish_the_game():
    planes = np.zeros(4 * 81, np.float32)
    for point in ("d5", "f5", "e4", "e6"):  # black surrounds e5
        planes[move_from_string(point)] = 1
    assert fills_own_eye(planes, move_from_string("e5"), BLACK, 9)
    assert not fills_own_eye(planes, move_from_string("e5"), WHITE, 9)
    for point in ("d4", "f6"):  # two white diagonals: a false eye, which may be filled
        planes[81 + move_from_string(point)] = 1
    assert not fills_own_eye(planes, move_from_string("e5"), BLACK, 9)
    returns = random_rollout(position_after(["e5"]), np.random.default_rng(0))
    assert returns.sum() == 0 and abs(returns[0]) in (0.0, 1.0)
