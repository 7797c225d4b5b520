"""Issue 12 (search): model outputs of any real dtype, overflow detected where it arises, every setting
checked, work bounded by what the search can use, and ``use_mixed_value=False`` as in mctx."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from gym_planning.search import RecurrentOutput, RootOutput, gumbel_muzero_policy, muzero_policy
from gym_planning.search.seq_halving import considered_visits_table
from gym_planning.search.tree import max_tree_nodes

B, A = 3, 4
POLICIES = pytest.mark.parametrize("policy", [muzero_policy, gumbel_muzero_policy], ids=["muzero", "gumbel"])


def root(logits=None, value=None, embedding=None) -> RootOutput:
    return RootOutput(
        np.zeros((B, A)) if logits is None else logits,
        np.zeros(B) if value is None else value,
        np.zeros((B, 2)) if embedding is None else embedding,
    )


def model(convert=lambda x: x, reward=0.5, value=0.25, discount=0.9, num_actions=A):
    """Rewards, values and logits made by ``convert`` (a dtype change) from fixed float64 numbers."""

    def recurrent_fn(embedding, action):
        k = len(action)
        logits = np.tile(np.arange(num_actions, dtype=np.float64) / num_actions, (k, 1))
        output = RecurrentOutput(convert(np.full(k, reward)), convert(np.full(k, discount)), convert(logits),
                                 convert(np.full(k, value)))  # fmt: skip
        return output, embedding

    return recurrent_fn


# ---------------------------------------------------------------- item 4: dtypes of model outputs


HALF = {
    "numpy-float16": lambda x: x.astype(np.float16),
    "torch-float16": lambda x: torch.from_numpy(x).half(),
    "torch-bfloat16": lambda x: torch.from_numpy(x).to(torch.bfloat16),
    "numpy-float32": lambda x: x.astype(np.float32),
    "numpy-int64": lambda x: np.round(x).astype(np.int64),
}


@POLICIES
@pytest.mark.parametrize("convert", list(HALF.values()), ids=list(HALF))
def test_half_precision_and_integer_outputs_search_as_their_float64_values(policy, convert) -> None:
    # The outputs are widened exactly, so the search equals one on the same numbers given as float64.
    widened = lambda x: real(convert(x))  # noqa: E731
    got = policy(root(), model(convert), 12, rng=0)
    want = policy(root(), model(widened), 12, rng=0)
    np.testing.assert_array_equal(got.tree.children_visits, want.tree.children_visits)
    np.testing.assert_array_equal(got.tree.node_values, want.tree.node_values)


def real(x) -> np.ndarray:
    return x.float().numpy().astype(np.float64) if isinstance(x, torch.Tensor) else np.asarray(x, np.float64)


@POLICIES
@pytest.mark.parametrize(
    ("convert", "dtype"),
    [
        (lambda x: x.astype(np.complex128), "complex128"),
        (lambda x: x.astype(object), "object"),
        (lambda x: x.astype(str), "<U"),
        (lambda x: x.astype("datetime64[s]"), "datetime64"),
    ],
    ids=["complex", "object", "string", "datetime"],
)
def test_outputs_that_are_not_real_numbers_are_refused_by_name(policy, convert, dtype) -> None:
    with pytest.raises(TypeError, match=f"recurrent_fn's reward has dtype {dtype}.*expected real numbers"):
        policy(root(), model(convert), 4)


@POLICIES
def test_root_logits_of_complex_dtype_are_refused_by_name(policy) -> None:
    with pytest.raises(TypeError, match="root prior_logits has dtype complex128"):
        policy(root(logits=np.zeros((B, A), np.complex128)), model(), 4)


@POLICIES
def test_bfloat16_root_from_torch_is_accepted(policy) -> None:
    out = policy(root(torch.zeros(B, A, dtype=torch.bfloat16), torch.zeros(B).half()), model(), 4)
    assert np.isfinite(out.root_value).all()


# ---------------------------------------------------------------- item 5: overflow, embedding dtypes


@POLICIES
@pytest.mark.parametrize(("reward", "value"), [(1e308, 0.0), (0.0, 1e308), (-1e308, 1e308)])
def test_finite_outputs_that_overflow_the_search_raise(policy, reward, value) -> None:
    with pytest.raises(ValueError, match="the search's values overflowed float64 at simulation"):
        policy(root(), model(reward=reward, value=value, discount=1.0), 16, rng=0)


def test_gumbel_weights_never_nan_from_huge_values() -> None:
    with pytest.raises(ValueError, match="overflowed float64"):
        gumbel_muzero_policy(root(), model(reward=1e306, value=1e306, discount=1.0), 64, rng=0)


@POLICIES
def test_integer_root_embedding_keeps_the_models_float_embeddings(policy) -> None:
    seen = []

    def recurrent_fn(embedding, action):
        seen.append(np.array(embedding))
        k = len(action)
        return RecurrentOutput(np.zeros(k), np.full(k, 0.9), np.zeros((k, A)), np.zeros(k)), embedding + 0.25

    policy(root(embedding=np.zeros((B, 2), np.int64)), recurrent_fn, 8, rng=0)
    assert any((x % 1 == 0.25).any() for x in seen)  # a child's float embedding came back as a parent
    for x in seen:
        assert np.isin(x % 1, (0.0, 0.25)).all()


# ---------------------------------------------------------------- item 6: settings


BAD_SETTINGS = [
    (muzero_policy, dict(pb_c_init=np.nan), "pb_c_init must be a finite number >= 0"),
    (muzero_policy, dict(pb_c_base=0.0), "pb_c_base must be a finite number > 0"),
    (muzero_policy, dict(pb_c_base=-5.0), "pb_c_base must be a finite number > 0"),
    (muzero_policy, dict(dirichlet_alpha=np.nan), "dirichlet_alpha must be a finite number > 0"),
    (muzero_policy, dict(dirichlet_fraction=np.nan), "dirichlet_fraction must be"),
    (muzero_policy, dict(temperature=np.nan), "temperature must be a finite number >= 0"),
    (muzero_policy, dict(temperature=np.inf), "temperature must be a finite number >= 0"),
    (muzero_policy, dict(value_bounds=(-np.inf, np.inf)), "value_bounds must be None or .* finite"),
    (muzero_policy, dict(value_bounds=(np.nan, 1.0)), "value_bounds must be None or .* finite"),
    (muzero_policy, dict(value_bounds=(-1e308, 1e308)), "value_bounds must be None or .* finite"),
    (muzero_policy, dict(value_bounds="ab"), "value_bounds must be None or"),
    (gumbel_muzero_policy, dict(value_scale=np.nan), "value_scale must be a finite number >= 0"),
    (gumbel_muzero_policy, dict(maxvisit_init=np.nan), "maxvisit_init must be a finite number >= 0"),
    (gumbel_muzero_policy, dict(gumbel_scale=np.inf), "gumbel_scale must be a finite number >= 0"),
    (gumbel_muzero_policy, dict(gumbel_scale=-1.0), "gumbel_scale must be a finite number >= 0"),
    (gumbel_muzero_policy, dict(max_num_considered_actions=2.5), "max_num_considered_actions must be an integer >= 1"),
]


@pytest.mark.parametrize(("policy", "kwargs", "message"), BAD_SETTINGS, ids=[str(k) for _, k, _ in BAD_SETTINGS])
def test_bad_settings_raise_one_error_naming_them(policy, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        policy(root(), model(), 4, **kwargs)


@pytest.mark.parametrize("kwargs", [dict(pb_c_init="1.0"), dict(temperature=1j), dict(gumbel_scale=None)])
def test_settings_that_are_not_numbers_raise_a_type_error(kwargs) -> None:
    policy = gumbel_muzero_policy if "gumbel_scale" in kwargs else muzero_policy
    with pytest.raises(TypeError, match=f"{next(iter(kwargs))} must be a real number"):
        policy(root(), model(), 4, **kwargs)


# ---------------------------------------------------------------- item 7: work bounded by what is used


def test_tree_holds_only_the_nodes_max_depth_allows() -> None:
    out = muzero_policy(RootOutput(np.zeros((1, 3)), np.zeros(1), np.zeros((1, 1))), model(num_actions=3), 200, max_depth=1)
    assert out.tree.children_index.shape == (1, 4, 3)
    assert out.tree.children_visits[0, 0].sum() == 200
    assert max_tree_nodes(200, 3, 1) == 4 and max_tree_nodes(200, 3, 2) == 13 and max_tree_nodes(200, 3, 9) == 201
    assert max_tree_nodes(5, 10**6, None) == 6


def test_sequential_halving_table_is_built_only_up_to_the_actions() -> None:
    considered_visits_table.cache_clear()
    start = time.perf_counter()
    out = gumbel_muzero_policy(root(), model(), 50, max_num_considered_actions=10_000, rng=0)
    assert time.perf_counter() - start < 2.0  # was ~10 s: 10,001 rows of which only A + 1 are read
    assert out.tree.children_visits[:, 0].sum(axis=1).tolist() == [50] * B


# ---------------------------------------------------------------- item 8: use_mixed_value=False as mctx


def test_unvisited_actions_complete_with_the_raw_value_without_mixing() -> None:
    # One simulation visits action 0 (ties go low); it ends the episode with reward 1, so Q(0) = 1 and the
    # root's search value is (0 + 1) / 2 = 0.5, its raw value 0. mctx completes action 1 with the raw value:
    # sigma = (maxvisit_init + 1) * value_scale * [1, 0] without rescaling.
    one = RootOutput(np.zeros((1, 2)), np.zeros(1), np.zeros((1, 1)))
    out = gumbel_muzero_policy(one, model(reward=1.0, value=0.0, discount=0.0, num_actions=2), 1, gumbel_scale=0.0,
                               rescale_values=False, use_mixed_value=False)  # fmt: skip
    sigma = np.array([1.0, 0.0]) * 51 * 0.1
    np.testing.assert_allclose(out.action_weights[0], np.exp(sigma) / np.exp(sigma).sum(), rtol=1e-6)


@POLICIES
def test_a_root_value_beyond_float32_is_an_error_not_inf(policy) -> None:
    # 1e300 is a fine float64 inside the search, but SearchOutput.root_value is float32 (found by the fuzz suite).
    with pytest.raises(ValueError, match=r"do not fit SearchOutput.root_value \(float32"):
        policy(root(), model(value=1e300, reward=0.0), 4, rng=0)


def test_an_unbounded_chain_warns_and_max_depth_bounds_its_cost() -> None:
    # A peaked prior and a reward per step make Gumbel MuZero grow one chain (depth ~0.37 x simulations):
    # every simulation then walks the whole chain. The search says so, and max_depth bounds it.
    def chain_model(embedding, action):
        k = len(action)
        logits = np.zeros((k, A))
        logits[:, 0] = 3.0
        return RecurrentOutput(np.ones(k), np.ones(k), logits, np.zeros(k)), embedding

    one = RootOutput(np.zeros((1, A)), np.zeros(1), np.zeros((1, 1)))
    with pytest.warns(RuntimeWarning, match=r"grew to depth \d+ with max_depth=None.*pass max_depth"):
        deep = gumbel_muzero_policy(one, chain_model, 3000, rng=0)
    assert deep.tree.node_depth.max() > 1000
    bounded = gumbel_muzero_policy(one, chain_model, 3000, rng=0, max_depth=50)
    assert bounded.tree.node_depth.max() == 50
