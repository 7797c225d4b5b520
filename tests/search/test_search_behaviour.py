"""Behaviour of the search on problems whose answer is known: exact models of small MDPs and a
two-player game tree, depth limits, batch independence, masks, embedding containers, and the
inspection helpers of :class:`gym_planning.search.Tree`."""

from __future__ import annotations

import copy
import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from gym_planning.search import (
    ROOT_INDEX,
    UNVISITED,
    RecurrentOutput,
    RootOutput,
    Tree,
    gumbel_muzero_policy,
    muzero_policy,
)
from tests.search.reference import RandomModel, batched

RIGHT, LEFT = 0, 1  # corridor actions: RIGHT advances; LEFT is the trap door at cell 1 and a wait elsewhere


def muzero(root, recurrent_fn, num_simulations, **kwargs):
    """MuZero without exploration noise, acting on the most visited action."""
    return muzero_policy(root, recurrent_fn, num_simulations, dirichlet_fraction=0.0, temperature=0.0, **kwargs)


def gumbel(root, recurrent_fn, num_simulations, **kwargs):
    """Gumbel MuZero without Gumbel noise."""
    return gumbel_muzero_policy(root, recurrent_fn, num_simulations, gumbel_scale=0.0, **kwargs)


POLICIES = pytest.mark.parametrize("policy", [muzero, gumbel], ids=["muzero", "gumbel"])


# ---------------------------------------------------------------- a corridor MDP (numpy embeddings)


@dataclasses.dataclass
class Corridor:
    """A one-way corridor of cells ``1..length``, entered at cell 1. RIGHT moves one cell on;
    arriving at cell ``length`` ends the episode with ``goal_reward``. LEFT at cell 1 leaves through
    a trap door that ends the episode with ``trap_reward``; anywhere else LEFT waits a step.
    Non-terminal steps pay 0 and discount by ``gamma``; states after the end are absorbing.

    The model is exact, with value 0 everywhere and uniform interior priors; the root prior
    (``root_logits``) prefers the trap door, as a poorly trained policy would.
    Embeddings are ``[B, 1]`` int64 cells (0 = left through the door).
    """

    length: int = 5
    trap_reward: float = 1.0
    goal_reward: float = 10.0
    gamma: float = 0.95
    root_logits: tuple[float, float] = (0.0, 1.0)

    def root(self, cells: list[int]) -> RootOutput:
        batch = len(cells)
        return RootOutput(np.tile(self.root_logits, (batch, 1)), np.zeros(batch), np.array(cells, np.int64)[:, None])

    def __call__(self, cell: np.ndarray, action: np.ndarray) -> tuple[RecurrentOutput, np.ndarray]:
        cell = cell[:, 0]
        done = (cell <= 0) | (cell >= self.length)
        new_cell = np.where(done, cell, np.where(action == RIGHT, cell + 1, np.where(cell == 1, 0, cell)))
        arrived_trap, arrived_goal = ~done & (new_cell == 0), ~done & (new_cell == self.length)
        reward = np.where(arrived_trap, self.trap_reward, 0.0) + np.where(arrived_goal, self.goal_reward, 0.0)
        discount = np.where(done | arrived_trap | arrived_goal, 0.0, self.gamma)
        batch = len(cell)
        output = RecurrentOutput(reward, discount, np.zeros((batch, 2)), np.zeros(batch))
        return output, new_cell[:, None]

    def optimal_q(self, cell: int) -> tuple[float, float]:
        """Exact ``(Q(cell, RIGHT), Q(cell, LEFT))`` for a cell ``>= 1``."""
        q_right = self.gamma ** (self.length - cell - 1) * self.goal_reward
        q_left = self.trap_reward if cell == 1 else self.gamma * q_right
        return q_right, q_left


@POLICIES
def test_corridor_enough_simulations_find_the_far_goal(policy) -> None:
    corridor = Corridor(length=4)  # the goal is three RIGHT steps from cell 1
    q_right, q_left = corridor.optimal_q(1)
    assert q_right > 9 * q_left  # the far end is worth much more than the trap door next to the start
    out = policy(corridor.root([1]), corridor, 500)
    assert out.action[0] == RIGHT
    # Q(root, RIGHT) is a mean over the subtree, exploration included: near the optimum, never above it.
    assert 0.9 * q_right < out.tree.summary().qvalues[0, RIGHT] <= q_right
    assert out.tree.summary().qvalues[0, LEFT] == corridor.trap_reward


@POLICIES
def test_corridor_one_simulation_follows_the_prior_into_the_trap(policy) -> None:
    corridor = Corridor(length=4)
    out = policy(corridor.root([1]), corridor, 1)
    assert out.action[0] == LEFT
    np.testing.assert_array_equal(out.tree.summary().visit_counts[0], [0, 1])


@POLICIES
@pytest.mark.parametrize(("trap_reward", "expected"), [(9.5, [LEFT, RIGHT, RIGHT]), (1.0, [RIGHT, RIGHT, RIGHT])])
def test_corridor_rows_at_different_cells_get_their_own_answers(policy, trap_reward: float, expected: list[int]) -> None:
    # From cell 1 the trap door pays trap_reward now, the goal 0.95**2 * 10 = 9.025 later; from cells 2
    # and 3 LEFT only waits, so RIGHT is optimal there whatever the trap pays.
    corridor = Corridor(length=4, trap_reward=trap_reward)
    out = policy(corridor.root([1, 2, 3]), corridor, 500)
    np.testing.assert_array_equal(out.action, expected)


# ---------------------------------------------------------------- a real env as its own model (object embeddings)


class FrozenLakeModel:
    """A deterministic FrozenLake used as a perfect model: each embedding is a copy of the env."""

    gamma = 0.9

    def __call__(self, envs: list, action: np.ndarray) -> tuple[RecurrentOutput, list]:
        assert isinstance(envs, list)
        new_envs, rewards, discounts = [], [], []
        for env, a in zip(envs, action):
            env = copy.deepcopy(env)
            _, reward, terminated, _, _ = env.step(int(a))
            new_envs.append(env)
            rewards.append(reward)
            discounts.append(0.0 if terminated else self.gamma)
        batch = len(envs)
        output = RecurrentOutput(np.array(rewards, float), np.array(discounts), np.zeros((batch, 4)), np.zeros(batch))
        return output, new_envs


@POLICIES
def test_object_embeddings_plan_in_a_real_frozen_lake(policy) -> None:
    # S F F      actions: 0 left, 1 down, 2 right, 3 up.
    # H F G      From S: down falls in the hole (H); right reaches G in 3 steps; left/up waste a step.
    env = gym.make("FrozenLake-v1", desc=["SFF", "HFG"], is_slippery=False).unwrapped
    env.reset(seed=0)
    root = RootOutput(np.zeros((1, 4)), np.zeros(1), [env])
    out = policy(root, FrozenLakeModel(), 200)
    assert out.action[0] == 2
    q = out.tree.summary().qvalues[0]
    assert q[1] == 0.0 and q.argmax() == 2 and 0 < q[2] <= FrozenLakeModel.gamma**2
    assert env.s == 0  # the search stepped copies, never the env itself
    # With one simulation the uniform prior sends it to action 0 (lowest index), a wasted step.
    assert policy(root, FrozenLakeModel(), 1).action[0] == 0


# ---------------------------------------------------------------- two-player zero-sum game


def game_tree(state: list[tuple[int, ...]], action: np.ndarray) -> tuple[RecurrentOutput, list]:
    """Player 1 picks a, then player 2 picks b, then the game ends. The last step's reward is for
    player 2 (the mover): ``-OUTCOME[a][b]``, where OUTCOME is player 1's payoff. Values are 0,
    the final step has discount 0 (and every step after it is absorbing)."""
    rewards, discounts, new_state = [], [], []
    for path, a in zip(state, action):
        path = path + (int(a),)
        new_state.append(path)
        rewards.append(-GAME_OUTCOME[path[0]][path[1]] if len(path) == 2 else 0.0)
        discounts.append(1.0 if len(path) < 2 else 0.0)
    batch = len(state)
    return RecurrentOutput(np.array(rewards), np.array(discounts), np.zeros((batch, 2)), np.zeros(batch)), new_state


# Player 1's payoff. Minimax by hand: after a=0 player 2 answers b=1 (P1 gets -1); after a=1 player 2
# answers b=1 (P1 gets 0.5). So player 1 must play a=1. A search that forgets the opponent minimises
# nothing: it adds player 2's rewards as if they were player 1's and favours a=0 (player 2 can earn +1 there).
GAME_OUTCOME = {0: {0: 10.0, 1: -1.0}, 1: {0: 1.0, 1: 0.5}}


@POLICIES
def test_two_player_search_plays_the_minimax_move(policy) -> None:
    root = RootOutput(np.zeros((1, 2)), np.zeros(1), [()])
    assert policy(root, game_tree, 128, two_player=True).action[0] == 1
    assert policy(root, game_tree, 128, two_player=False).action[0] == 0


def test_two_player_q_values_alternate_sign() -> None:
    root = RootOutput(np.zeros((1, 2)), np.zeros(1), [()])
    tree = muzero(root, game_tree, 32, two_player=True).tree
    # The stored discount carries the sign flip: Q(root, a) = r - v(child) for player 1.
    child = tree.children_index[0, ROOT_INDEX, 1]
    assert tree.children_discounts[0, ROOT_INDEX, 1] == -1.0
    assert tree.qvalues()[0, 1] == pytest.approx(-tree.node_values[0, child])
    # Player 2's best reply after a=1 is b=1, worth -0.5 to player 2.
    assert tree.qvalues(np.array([child]))[0, 1] == pytest.approx(-0.5)


# ---------------------------------------------------------------- depth limit


class CountingModel:
    """A batched random model that counts its calls."""

    def __init__(self, num_actions: int, seed: int = 0):
        self.fn = batched(RandomModel(seed, num_actions, 0.0, 1.0, None), num_actions)
        self.calls = 0

    def __call__(self, states, action):
        self.calls += 1
        return self.fn(states, action)


@POLICIES
@pytest.mark.parametrize("max_depth", [1, 2])
def test_max_depth_bounds_the_tree_and_still_spends_every_simulation(policy, max_depth: int) -> None:
    num_actions, num_simulations = 3, 40
    model = CountingModel(num_actions)
    root = RootOutput(np.zeros((1, num_actions)), np.zeros(1), [()])
    tree = policy(root, model, num_simulations, max_depth=max_depth).tree
    used = tree.num_nodes[0]
    assert tree.node_depth[0, :used].max() == max_depth
    assert used <= sum(num_actions**d for d in range(max_depth + 1))
    assert tree.children_visits[0, ROOT_INDEX].sum() == num_simulations
    assert tree.node_visits[0, ROOT_INDEX] == num_simulations + 1
    # The model is called only for new nodes: walks that stop on an existing node at the limit reuse it.
    assert model.calls == used - 1


def test_max_depth_one_backs_up_one_step_values() -> None:
    # Bandit view: with max_depth=1 every simulation backs up r + d * v(child) of a root child.
    num_actions = 4
    model = CountingModel(num_actions, seed=3)
    root = RootOutput(np.zeros((1, num_actions)), np.zeros(1), [()])
    tree = muzero(root, model, 25, max_depth=1).tree
    rm = RandomModel(3, num_actions, 0.0, 1.0, None)
    for a in range(num_actions):
        step = rm.evaluate((a,))
        assert tree.qvalues()[0, a] == pytest.approx(step.reward + step.discount * step.value)


# ---------------------------------------------------------------- batch independence


def mixed_batch(num_actions: int = 7, batch_size: int = 6):
    """Rows with different models and masks; each state is (row, path)."""
    models = [RandomModel(100 + b, num_actions, 0.2, 2.0, 0.7 if b % 2 else None) for b in range(batch_size)]
    rng = np.random.default_rng(5)
    mask = rng.random((batch_size, num_actions)) < 0.6
    mask[np.arange(batch_size), rng.integers(num_actions, size=batch_size)] = True
    roots = [m.evaluate(()) for m in models]
    logits = np.array([r.prior_logits for r in roots])
    values = np.array([r.value for r in roots])

    def per_row(state, action):
        row, path = state
        step = models[row](path, action)
        return step._replace(state=(row, step.state))

    return logits, values, mask, per_row


@POLICIES
@pytest.mark.parametrize("max_depth", [None, 3])
def test_rows_of_a_batch_are_independent(policy, max_depth) -> None:
    num_actions = 7
    logits, values, mask, per_row = mixed_batch(num_actions)
    fn = batched(per_row, num_actions)
    batch_size = len(values)
    together = policy(RootOutput(logits, values, [(b, ()) for b in range(batch_size)]), fn, 30, legal_mask=mask,
                      max_depth=max_depth, two_player=True)  # fmt: skip
    for b in range(batch_size):
        alone = policy(RootOutput(logits[b:b + 1], values[b:b + 1], [(b, ())]), fn, 30, legal_mask=mask[b:b + 1],
                       max_depth=max_depth, two_player=True)  # fmt: skip
        assert together.action[b] == alone.action[0]
        np.testing.assert_array_equal(together.action_weights[b], alone.action_weights[0])
        assert together.root_value[b] == alone.root_value[0]
        for field in dataclasses.fields(Tree):
            got, want = getattr(together.tree, field.name)[b], getattr(alone.tree, field.name)[0]
            if field.name == "embedding_slots":  # slots are numbered across the batch
                got = np.where(got >= 0, got - b * (30 + 1), got)
            np.testing.assert_array_equal(got, want, err_msg=f"row {b}: {field.name}")


# ---------------------------------------------------------------- masks


def greedy_for_illegal(num_actions: int, illegal: list[int]):
    """A model whose illegal actions look irresistible: top prior, reward 100. Interior nodes pass
    their mask to the search (``legal_mask``)."""

    def recurrent_fn(state: np.ndarray, action: np.ndarray):
        batch = len(action)
        into_illegal = np.isin(action, illegal)
        logits = np.zeros((batch, num_actions))
        logits[:, illegal] = 20.0
        legal = np.ones((batch, num_actions), bool)
        legal[:, illegal] = False
        output = RecurrentOutput(np.where(into_illegal, 100.0, 0.0), np.full(batch, 0.9), logits, np.zeros(batch), legal)
        return output, state

    return recurrent_fn


@POLICIES
def test_illegal_actions_never_get_visits_or_weight(policy) -> None:
    num_actions, illegal = 5, [1, 3]
    batch = 3
    logits = np.zeros((batch, num_actions))
    logits[:, illegal] = 20.0
    mask = np.ones((batch, num_actions), bool)
    mask[:, illegal] = False
    root = RootOutput(logits, np.zeros(batch), np.zeros((batch, 1)))
    out = policy(root, greedy_for_illegal(num_actions, illegal), 60, legal_mask=mask)
    tree = out.tree
    used = np.arange(tree.node_visits.shape[1])[None, :] < tree.num_nodes[:, None]
    assert (tree.children_visits[used][:, illegal] == 0).all()
    assert (tree.children_index[used][:, illegal] == UNVISITED).all()
    assert (out.action_weights[:, illegal] == 0).all()
    assert not np.isin(out.action, illegal).any()
    np.testing.assert_allclose(out.action_weights.sum(axis=1), 1.0, rtol=1e-6)
    assert tree.node_depth[used].max() >= 2  # the interior masks were exercised


# ---------------------------------------------------------------- embedding containers


class TinyNet(torch.nn.Module):
    """A real (tiny) MuZero-style network: dynamics, reward, policy and value heads on a 4-d state."""

    def __init__(self, num_actions: int = 3, width: int = 4):
        super().__init__()
        torch.manual_seed(0)
        self.num_actions = num_actions
        self.dynamics = torch.nn.Linear(width + num_actions, width)
        self.heads = torch.nn.Linear(width, 2 + num_actions)

    @torch.no_grad()
    def __call__(self, state: torch.Tensor, action: np.ndarray) -> tuple[RecurrentOutput, torch.Tensor]:
        onehot = torch.nn.functional.one_hot(torch.as_tensor(action, device=state.device), self.num_actions)
        new_state = torch.tanh(self.dynamics(torch.cat([state, onehot.to(state.dtype)], dim=1)))
        out = self.heads(new_state)
        discount = torch.full((len(action),), 0.97, device=state.device)
        return RecurrentOutput(out[:, 0], discount, out[:, 2:], out[:, 1]), new_state


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"))]


@POLICIES
@pytest.mark.parametrize("device", DEVICES)
def test_torch_embeddings_give_the_same_search_as_numpy_embeddings(policy, device: str) -> None:
    net = TinyNet().to(device)
    root_state = torch.randn(4, 4, generator=torch.Generator().manual_seed(1)).to(device)
    seen = set()

    def torch_fn(state, action):
        seen.add((type(state), str(getattr(state, "device", "numpy"))))
        return net(state, action)

    def numpy_fn(state, action):
        seen.add((type(state), "numpy"))
        output, new_state = net(torch.from_numpy(state).to(device), action)
        return output, new_state.cpu().numpy()

    logits, value = np.zeros((4, 3)), np.zeros(4)
    with_torch = policy(RootOutput(logits, value, root_state), torch_fn, 20)
    with_numpy = policy(RootOutput(logits, value, root_state.cpu().numpy()), numpy_fn, 20)
    # The store kept the embeddings as tensors on the network's device, gathered them there.
    assert seen == {(torch.Tensor, str(root_state.device)), (np.ndarray, "numpy")}
    np.testing.assert_array_equal(with_torch.action, with_numpy.action)
    np.testing.assert_array_equal(with_torch.tree.children_visits, with_numpy.tree.children_visits)
    np.testing.assert_array_equal(with_torch.tree.node_values, with_numpy.tree.node_values)
    assert with_torch.tree.num_nodes.min() > 5  # a real tree was built, not only the root's children


# ---------------------------------------------------------------- inspection helpers


@POLICIES
def test_summary_qvalues_and_to_dict_agree_with_the_arrays(policy) -> None:
    num_actions, num_simulations = 4, 30
    model = batched(RandomModel(7, num_actions, 0.1, 1.0, None), num_actions)
    root = RootOutput(np.array([[0.5, 0.0, -0.5, 0.2]]), np.array([0.3]), [()])
    mask = np.array([[True, True, False, True]])
    out = policy(root, model, num_simulations, legal_mask=mask)
    tree, summary = out.tree, out.tree.summary()

    visits = tree.children_visits[0, ROOT_INDEX]
    np.testing.assert_array_equal(summary.visit_counts[0], visits)
    assert visits.sum() == num_simulations and visits[2] == 0
    np.testing.assert_allclose(summary.visit_probs[0], visits / num_simulations)
    assert summary.value[0] == pytest.approx(out.root_value[0], rel=1e-6)
    q = tree.qvalues()[0]
    np.testing.assert_allclose(summary.qvalues[0], np.where(visits > 0, q, 0.0))

    as_dict = tree.to_dict(0)
    assert as_dict["visits"] == num_simulations + 1 and as_dict["depth"] == 0
    assert {a: c["visits"] for a, c in as_dict["children"].items()} == {a: int(v) for a, v in enumerate(visits) if v}
    for a, child in as_dict["children"].items():
        assert child["q"] == pytest.approx(q[a])
    nodes = _check_node(as_dict)
    assert nodes == tree.num_nodes[0]


def _check_node(node: dict, terminal: bool = False) -> int:
    """Check the backup invariants of one node of ``Tree.to_dict`` and below; returns the node count.

    With no depth limit, every simulation through a node continues into one child, so a node's
    visits are its expansion plus its children's visits, and its value is the mean of its raw value
    and every value backed up through it: ``value * visits == raw_value + sum_a n(a) * Q(a)``.
    A terminal node (reached by a discount-0 step) is never walked below: it re-backs up its raw value.
    """
    children = node["children"].values()
    if terminal:
        assert not children and node["value"] == pytest.approx(node["raw_value"])
        return 1
    assert node["visits"] == 1 + sum(c["visits"] for c in children)
    total = node["raw_value"] + sum(c["visits"] * c["q"] for c in children)
    assert node["value"] * node["visits"] == pytest.approx(total, rel=1e-9, abs=1e-9)
    for c in children:
        assert c["node"]["visits"] == c["visits"]
        assert c["node"]["depth"] == node["depth"] + 1
    return 1 + sum(_check_node(c["node"], c["discount"] == 0) for c in children)


# ---------------------------------------------------------------- acting with a temperature


def bandit(values: np.ndarray):
    """One-step bandit: action a pays ``values[a]`` and ends the episode."""

    def recurrent_fn(state, action):
        batch = len(action)
        output = RecurrentOutput(values[action], np.zeros(batch), np.zeros((batch, len(values))), np.zeros(batch))
        return output, state

    return recurrent_fn


def test_temperature_one_samples_actions_in_proportion_to_visits() -> None:
    batch = 4000
    root = RootOutput(np.zeros((batch, 3)), np.zeros(batch), np.zeros((batch, 1)))
    out = muzero_policy(root, bandit(np.array([0.0, 1.0, 0.5])), 12, rng=0, dirichlet_fraction=0.0, temperature=1.0)
    probs = out.action_weights[0]
    assert (out.action_weights == probs).all()  # identical rows, identical searches
    assert (probs > 0.05).all()
    frequencies = np.bincount(out.action, minlength=3) / batch
    np.testing.assert_allclose(frequencies, probs, atol=0.03)


def test_temperature_zero_takes_the_most_visited_action() -> None:
    root = RootOutput(np.zeros((2, 3)), np.zeros(2), np.zeros((2, 1)))
    out = muzero_policy(root, bandit(np.array([0.0, 1.0, 0.5])), 12, rng=0, dirichlet_fraction=0.0, temperature=0.0)
    np.testing.assert_array_equal(out.action, np.argmax(out.tree.summary().visit_counts, axis=1))
    assert out.action[0] == 1


def test_temperature_zero_breaks_visit_ties_by_q() -> None:
    # Two simulations over two actions visit each once: the better one must be acted, whichever its index.
    root = RootOutput(np.zeros((1, 2)), np.zeros(1), np.zeros((1, 1)))
    for values, best in (([0.0, 1.0], 1), ([1.0, 0.0], 0), ([-0.5, -0.2], 1)):
        out = muzero_policy(root, bandit(np.array(values)), 2, rng=0, dirichlet_fraction=0.0, temperature=0.0)
        np.testing.assert_array_equal(out.tree.children_visits[0, 0], [1, 1])
        assert out.action[0] == best, values


@pytest.mark.parametrize("policy", [muzero_policy, gumbel_muzero_policy], ids=["muzero", "gumbel"])
def test_same_seed_same_search_and_noise_matters(policy) -> None:
    model = batched(RandomModel(11, 6, 0.1, 1.0, None), 6)
    root = RootOutput(np.zeros((8, 6)), np.zeros(8), [()] * 8)
    kwargs = dict(temperature=1.0) if policy is muzero_policy else {}
    first = policy(root, model, 16, rng=3, **kwargs)
    again = policy(root, model, 16, rng=np.random.default_rng(3), **kwargs)
    other = policy(root, model, 16, rng=4, **kwargs)
    np.testing.assert_array_equal(first.action, again.action)
    np.testing.assert_array_equal(first.tree.children_visits, again.tree.children_visits)
    # Identical roots explore differently under different noise (Dirichlet / Gumbel).
    assert not np.array_equal(first.tree.children_visits, other.tree.children_visits)
