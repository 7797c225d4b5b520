"""The Numba search core against the plain-Python reference in :mod:`tests.search.reference`.

Hypothesis generates deterministic random models (rewards, discounts in [0, 1] with terminals,
priors, values, interior legal masks), batch sizes up to 64, 2..18 actions and 1..64 simulations,
root masks, depth limits and the two-player flag. Both searches must build the same trees: every
array of :class:`gym_planning.search.Tree` is rebuilt from the reference's node objects and compared
field by field (integers exactly, floats to 1e-9), then actions, policy targets and root values.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gym_planning.search import (
    ROOT_INDEX,
    UNVISITED,
    JitRecurrentFn,
    RecurrentOutput,
    RootOutput,
    SearchConfig,
    Tree,
    considered_visits_sequence,
    gumbel_muzero_policy,
    muzero_policy,
)
from gym_planning.search.tree import max_tree_nodes
from tests.search.reference import (
    HashModel,
    RandomModel,
    ReferenceResult,
    batched,
    considered_visits,
    hash_model_step,
    reference_gumbel,
    reference_muzero,
)

TOLERANCE = dict(rtol=1e-9, atol=1e-9)
FLOAT_FIELDS = {"raw_values", "node_values", "children_prior_logits", "children_rewards", "children_discounts",
                "children_values", "value_bounds", "root_gumbel"}  # fmt: skip


@dataclasses.dataclass
class Case:
    """One generated search problem: a batch of roots of one random model family."""

    batch_size: int
    num_actions: int
    num_simulations: int
    max_depth: int | None
    two_player: bool
    seed: int
    root_legal_prob: float
    interior_legal_prob: float | None
    terminal_prob: float
    logit_scale: float

    def models(self) -> list[RandomModel]:
        return [
            RandomModel(self.seed * 1000 + b, self.num_actions, self.terminal_prob, self.logit_scale, self.interior_legal_prob)
            for b in range(self.batch_size)
        ]

    def root_mask(self) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        mask = rng.random((self.batch_size, self.num_actions)) < self.root_legal_prob
        mask[np.arange(self.batch_size), rng.integers(self.num_actions, size=self.batch_size)] = True
        return mask


@st.composite
def cases(draw) -> Case:
    return Case(
        batch_size=draw(st.integers(1, 64)),
        num_actions=draw(st.integers(2, 18)),
        num_simulations=draw(st.integers(1, 64)),
        max_depth=draw(st.none() | st.integers(1, 5)),
        two_player=draw(st.booleans()),
        seed=draw(st.integers(0, 2**20)),
        root_legal_prob=draw(st.sampled_from([0.2, 0.6, 1.0])),
        interior_legal_prob=draw(st.sampled_from([None, 0.5, 0.9])),
        terminal_prob=draw(st.sampled_from([0.0, 0.1, 0.4])),
        logit_scale=draw(st.sampled_from([0.0, 1.0, 3.0, 300.0])),
    )


class MultiModel:
    """Row ``b`` of the batch uses ``models[b]``: each state carries its row."""

    def __init__(self, models: list[RandomModel]):
        self.models = models

    def __call__(self, state: tuple[int, tuple[int, ...]], action: int):
        row, path = state
        step = self.models[row](path, action)
        return step._replace(state=(row, step.state))


def root_output(case: Case, models: list[RandomModel]) -> RootOutput:
    roots = [model.evaluate(()) for model in models]
    return RootOutput(
        prior_logits=np.array([r.prior_logits for r in roots]),
        value=np.array([r.value for r in roots]),
        embedding=[(b, ()) for b in range(case.batch_size)],
    )


def expected_tree(case: Case, results: list[ReferenceResult], gumbel: np.ndarray) -> Tree:
    """The array tree the core should build, filled in from the reference's node objects."""
    num_nodes = max_tree_nodes(case.num_simulations, case.num_actions, case.max_depth)
    tree = Tree.allocate(case.batch_size, num_nodes, case.num_actions)
    for b, result in enumerate(results):
        tree.num_nodes[b] = result.num_nodes
        tree.value_bounds[b] = result.value_bounds
        tree.root_gumbel[b] = gumbel[b]
        for parent, action, node in result.root.walk():
            i = node.index
            tree.node_visits[b, i] = node.visits
            tree.raw_values[b, i] = node.raw_value
            tree.node_values[b, i] = node.value
            tree.node_depth[b, i] = node.depth
            tree.embedding_slots[b, i] = b * num_nodes + i
            tree.children_prior_logits[b, i] = node.prior_logits
            tree.children_legal[b, i] = node.legal
            if parent is not None:
                tree.parents[b, i] = parent.index
                tree.action_from_parent[b, i] = action
            for a, child in node.children.items():
                tree.children_index[b, i, a] = child.index
                tree.children_visits[b, i, a] = child.visits
                tree.children_rewards[b, i, a] = child.reward
                tree.children_discounts[b, i, a] = child.discount
                tree.children_values[b, i, a] = child.value
    return tree


def assert_same_tree(actual: Tree, expected: Tree) -> None:
    for field in dataclasses.fields(Tree):
        got, want = getattr(actual, field.name), getattr(expected, field.name)
        assert got.shape == want.shape, field.name
        if field.name in FLOAT_FIELDS:
            np.testing.assert_allclose(got, want, **TOLERANCE, err_msg=field.name)
        else:
            np.testing.assert_array_equal(got, want, err_msg=field.name)


def assert_masks_respected(tree: Tree, action: np.ndarray, weights: np.ndarray, root_mask: np.ndarray) -> None:
    """No visits on illegal edges anywhere in the tree; the action and the weights are legal."""
    assert not (tree.children_visits[~tree.children_legal] > 0).any()
    assert root_mask[np.arange(len(action)), action].all()
    assert (weights[~root_mask] == 0).all()


@settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=cases(),
    pb_c=st.sampled_from([(1.25, 19652.0), (0.5, 2.0)]),
    dirichlet_fraction=st.sampled_from([0.0, 0.25]),
    value_bounds=st.sampled_from([None, (-3.0, 3.0)]),
)
def test_muzero_matches_reference(
    case: Case, pb_c: tuple[float, float], dirichlet_fraction: float, value_bounds: tuple[float, float] | None
) -> None:
    models = case.models()
    root, mask = root_output(case, models), case.root_mask()
    out = muzero_policy(
        root,
        batched(MultiModel(models), case.num_actions),
        case.num_simulations,
        legal_mask=mask,
        max_depth=case.max_depth,
        rng=case.seed,
        dirichlet_fraction=dirichlet_fraction,
        pb_c_init=pb_c[0],
        pb_c_base=pb_c[1],
        temperature=0.0,
        two_player=case.two_player,
        value_bounds=value_bounds,
    )
    noise = np.random.default_rng(case.seed).dirichlet(
        np.full(case.num_actions, SearchConfig.dirichlet_alpha), size=case.batch_size
    )
    noise = noise if dirichlet_fraction > 0 else [None] * case.batch_size
    results = [
        reference_muzero(
            MultiModel(models),
            root.embedding[b],
            root.prior_logits[b].tolist(),
            float(root.value[b]),
            mask[b].tolist(),
            case.num_simulations,
            noise=None if noise[b] is None else noise[b].tolist(),
            dirichlet_fraction=dirichlet_fraction,
            max_depth=case.max_depth,
            pb_c_init=pb_c[0],
            pb_c_base=pb_c[1],
            two_player=case.two_player,
            value_bounds=value_bounds,
        )
        for b in range(case.batch_size)
    ]
    assert_same_tree(out.tree, expected_tree(case, results, np.zeros((case.batch_size, case.num_actions))))
    np.testing.assert_array_equal(out.action, [r.action for r in results])
    np.testing.assert_allclose(out.action_weights, [r.action_weights for r in results], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out.root_value, [r.root_value for r in results], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(out.tree.summary().visit_counts.sum(axis=1), case.num_simulations)
    assert_masks_respected(out.tree, out.action, out.action_weights, mask)


@settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=cases(),
    max_considered=st.sampled_from([1, 2, 4, 16]),
    gumbel_scale=st.sampled_from([1.0, 0.0]),
    sigma=st.sampled_from(
        [
            dict(value_scale=0.1, maxvisit_init=50.0, rescale_values=True, use_mixed_value=True),
            dict(value_scale=0.5, maxvisit_init=20.0, rescale_values=False, use_mixed_value=True),
            dict(value_scale=0.1, maxvisit_init=50.0, rescale_values=True, use_mixed_value=False),
        ]
    ),
)
def test_gumbel_matches_reference(case: Case, max_considered: int, gumbel_scale: float, sigma: dict) -> None:
    models = case.models()
    root, mask = root_output(case, models), case.root_mask()
    out = gumbel_muzero_policy(
        root,
        batched(MultiModel(models), case.num_actions),
        case.num_simulations,
        legal_mask=mask,
        max_depth=case.max_depth,
        rng=case.seed,
        max_num_considered_actions=max_considered,
        gumbel_scale=gumbel_scale,
        two_player=case.two_player,
        **sigma,
    )
    gumbel = gumbel_scale * np.random.default_rng(case.seed).gumbel(size=(case.batch_size, case.num_actions))
    results = [
        reference_gumbel(
            MultiModel(models),
            root.embedding[b],
            root.prior_logits[b].tolist(),
            float(root.value[b]),
            mask[b].tolist(),
            case.num_simulations,
            gumbel=gumbel[b].tolist(),
            max_num_considered_actions=max_considered,
            max_depth=case.max_depth,
            two_player=case.two_player,
            **sigma,
        )
        for b in range(case.batch_size)
    ]
    assert_same_tree(out.tree, expected_tree(case, results, gumbel))
    np.testing.assert_array_equal(out.action, [r.action for r in results])
    np.testing.assert_allclose(out.action_weights, [r.action_weights for r in results], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out.root_value, [r.root_value for r in results], rtol=1e-6, atol=1e-6)
    assert_masks_respected(out.tree, out.action, out.action_weights, mask)


@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(), use_gumbel=st.booleans(), compiled=st.booleans())
def test_compiled_and_python_model_paths_match_reference(case: Case, use_gumbel: bool, compiled: bool) -> None:
    """The same model as a Numba ``JitRecurrentFn`` (search and model in one compiled loop) or as a
    Python callback gives the reference's trees."""
    legal_prob = -1.0 if case.interior_legal_prob is None else case.interior_legal_prob
    params = np.array([case.terminal_prob, case.logit_scale, legal_prob])
    model = HashModel(params, case.num_actions)
    rng = np.random.default_rng(case.seed)
    states = [HashModel.root_state(case.seed * 1000 + b) for b in range(case.batch_size)]
    logits, values = case.logit_scale * rng.normal(size=(case.batch_size, case.num_actions)), rng.normal(size=case.batch_size)
    mask = case.root_mask()
    recurrent_fn = JitRecurrentFn(hash_model_step, params) if compiled else batched(model, case.num_actions)
    embedding = np.array(states, np.int64)[:, None] if compiled else states
    root = RootOutput(logits, values, embedding)
    settings_ = dict(legal_mask=mask, max_depth=case.max_depth, rng=case.seed, two_player=case.two_player)
    common = dict(max_depth=case.max_depth, two_player=case.two_player)
    if use_gumbel:
        out = gumbel_muzero_policy(root, recurrent_fn, case.num_simulations, **settings_)
        noise = np.random.default_rng(case.seed).gumbel(size=(case.batch_size, case.num_actions))
        results = [
            reference_gumbel(
                model,
                states[b],
                logits[b].tolist(),
                float(values[b]),
                mask[b].tolist(),
                case.num_simulations,
                gumbel=noise[b].tolist(),
                **common,
            )  # fmt: skip
            for b in range(case.batch_size)
        ]
    else:
        out = muzero_policy(root, recurrent_fn, case.num_simulations, temperature=0.0, **settings_)
        dirichlet = np.random.default_rng(case.seed).dirichlet(
            np.full(case.num_actions, SearchConfig.dirichlet_alpha), size=case.batch_size
        )
        noise = np.zeros_like(dirichlet)
        results = [
            reference_muzero(
                model,
                states[b],
                logits[b].tolist(),
                float(values[b]),
                mask[b].tolist(),
                case.num_simulations,
                noise=dirichlet[b].tolist(),
                **common,
            )  # fmt: skip
            for b in range(case.batch_size)
        ]
    expected = expected_tree(case, results, noise)
    assert_same_tree(out.tree, expected)
    np.testing.assert_array_equal(out.action, [r.action for r in results])
    np.testing.assert_allclose(out.action_weights, [r.action_weights for r in results], rtol=1e-5, atol=1e-7)
    assert_masks_respected(out.tree, out.action, out.action_weights, mask)


@pytest.mark.parametrize("num_simulations", [1, 2, 7, 16, 50, 64, 200])
@pytest.mark.parametrize("max_considered", [1, 2, 3, 4, 5, 16, 18])
def test_considered_visits_sequence_matches_reference(max_considered: int, num_simulations: int) -> None:
    expected = considered_visits(max_considered, num_simulations)
    assert list(considered_visits_sequence(max_considered, num_simulations)) == expected
    assert len(expected) == num_simulations


def test_considered_visits_sequence_known_values() -> None:
    # 4 actions, 8 simulations: log2(4) = 2 phases; phase 1 gives each of 4 actions one visit,
    # phase 2 gives the 2 survivors max(1, 8 // (2 * 2)) = 2 visits each.
    assert list(considered_visits_sequence(4, 8)) == [0, 0, 0, 0, 1, 1, 2, 2]
    # A single considered action is simply visited every time.
    assert list(considered_visits_sequence(1, 4)) == [0, 1, 2, 3]


def test_considered_visits_sequence_matches_mctx() -> None:
    seq_halving = pytest.importorskip("mctx._src.seq_halving")
    for m in range(1, 19):
        for n in (1, 5, 16, 33, 64):
            ours = list(considered_visits_sequence(m, n))
            assert ours == list(seq_halving.get_sequence_of_considered_visits(m, n)), (m, n)


# ---------------------------------------------------------------- mctx's golden trees

# mctx ships search trees recorded from its own policies (``mctx/_src/tests/test_data``), each with
# the model outputs at every expanded node. Replaying those outputs through our search must rebuild
# the same trees: an independent check that our semantics are mctx's. Only the configurations our
# search offers are replayed (the fourth file uses mctx's parent-and-siblings Q transform).
GOLDEN_TREES = {
    "muzero_tree.json": muzero_policy,
    "gumbel_muzero_tree.json": gumbel_muzero_policy,
    "gumbel_muzero_reward_tree.json": gumbel_muzero_policy,
}


def _golden_tree(name: str) -> dict:
    mctx = pytest.importorskip("mctx", reason="mctx (the `bench` extra) holds the golden trees")
    path = pathlib.Path(mctx.__file__).parent / "_src" / "tests" / "test_data" / name
    if not path.exists():
        pytest.skip(f"this mctx install has no {name}")
    return json.loads(path.read_text())


def _golden_logits(node: dict) -> np.ndarray:
    return np.log(np.maximum([child["prior"] for child in node["child_stats"]], 1e-30))


def _golden_model(discount: float):
    """A recurrent_fn that replays the recorded tree; a node mctx never expanded is a divergence."""

    def recurrent_fn(nodes: list[dict], action: np.ndarray):
        children = [node["child_stats"][a] for node, a in zip(nodes, action)]
        missing = [int(a) for child, a in zip(children, action) if "visit" not in child]
        assert not missing, f"our search expanded actions {missing} that mctx never expanded"
        output = RecurrentOutput(
            reward=np.array([child.get("reward", 0.0) for child in children]),
            discount=np.full(len(children), discount),
            prior_logits=np.stack([_golden_logits(child) for child in children]),
            value=np.array([child["raw_value_view"] for child in children]),
        )
        return output, children

    return recurrent_fn


def _assert_same_as_golden(tree: Tree, node_index: int, golden: dict, path: tuple[int, ...] = ()) -> int:
    """Compare one node and its subtree; returns the number of nodes compared."""
    assert tree.node_visits[0, node_index] == golden["visit"], path
    assert tree.node_values[0, node_index] == pytest.approx(golden["value_view"], abs=1e-5), path
    assert node_index == golden["evaluation_index"], path
    count = 1
    for child in golden["child_stats"]:
        a = child["action"]
        index = tree.children_index[0, node_index, a]
        if "visit" not in child:
            assert index == UNVISITED, path + (a,)
            continue
        assert tree.children_visits[0, node_index, a] == child["visit"], path + (a,)
        count += _assert_same_as_golden(tree, index, child, path + (a,))
    return count


@pytest.mark.parametrize("name", sorted(GOLDEN_TREES))
def test_replaying_mctx_golden_trees_rebuilds_them(name: str) -> None:
    record = _golden_tree(name)
    golden, config, env = record["tree"], dict(record["algorithm_config"]), record["env_config"]
    qtransform_kwargs = config.pop("qtransform_kwargs", {})
    config.pop("qtransform")
    policy = GOLDEN_TREES[name]
    two_player = env["discount"] < 0  # mctx encodes alternating play as discount -1
    discount = abs(env["discount"])
    if policy is muzero_policy:
        bounds = (qtransform_kwargs["min_value"], qtransform_kwargs["max_value"])  # mctx's qtransform_by_min_max
        settings_ = dict(pb_c_init=config["pb_c_init"], pb_c_base=config["pb_c_base"], dirichlet_fraction=0.0,
                         temperature=0.0, value_bounds=bounds)  # fmt: skip
    else:
        settings_ = dict(gumbel_scale=config["gumbel_scale"], max_num_considered_actions=config["max_num_considered_actions"],
                         **qtransform_kwargs)  # fmt: skip
    root = RootOutput(_golden_logits(golden)[None], np.array([golden["raw_value_view"]]), [golden])
    out = policy(root, _golden_model(discount), golden["visit"] - 1, two_player=two_player, **settings_)
    assert _assert_same_as_golden(out.tree, ROOT_INDEX, golden) == golden["visit"]
