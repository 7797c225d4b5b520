"""Fuzz targets for the search: what the model returns (dtypes, shapes, extreme and non-finite values,
masks, embeddings) and every setting of both policies.

Promise: a bad output or setting is refused with one ``ValueError``/``TypeError`` naming it (or saying the
search overflowed); an accepted search returns a legal action, finite weights that sum to 1, a finite root
value, and spends every simulation.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import strategies as st

from tests.reliability.harness import InvariantBroken, Target

DTYPES = ["float64"] * 8 + ["float32", "float16", "int64", "bool", "complex128", "object", "U8", "torch-bfloat16",
                            "torch-float16"]  # fmt: skip
SPECIALS = [0.0, 1.0, 1e308, -1e308, 1e300, 1e150, 5e-324, math.nan, math.inf, -math.inf]
SEARCH_NAMES = ("reward", "discount", "value", "prior_logits", "legal_mask", "embedding", "overflowed", "root",
                "recurrent_fn", "num_simulations", "max_depth", "JitRecurrentFn")  # fmt: skip
SETTINGS = {
    "muzero": ("dirichlet_alpha", "dirichlet_fraction", "pb_c_init", "pb_c_base", "temperature", "value_bounds"),
    "gumbel": ("max_num_considered_actions", "gumbel_scale", "value_scale", "maxvisit_init"),
}
CLEAN = st.tuples(st.sampled_from(["float64", "float64", "float32", "float16", "torch-bfloat16", "int64"]), st.just(1.0),
                  st.just(0.0), st.just(0.0), st.just(False))  # fmt: skip
NOISY = st.tuples(
    st.sampled_from(DTYPES),
    st.sampled_from([1.0, 1.0, 1.0, 1e3, 1e150, 1e300, 1e308]),  # magnitude
    st.sampled_from(SPECIALS),  # a value injected...
    st.sampled_from([0.0, 0.0, 0.0, 0.1, 1.0]),  # ...with this probability per entry
    st.sampled_from([False] * 12 + [True]),  # a wrong shape
)
RECIPE = st.one_of(CLEAN, CLEAN, CLEAN, CLEAN, NOISY)  # mostly well-formed, so that searches also run


def convert(x: np.ndarray, dtype: str) -> Any:
    if dtype.startswith("torch-"):
        import torch

        return torch.from_numpy(np.ascontiguousarray(x)).to(getattr(torch, dtype[6:]))
    with np.errstate(all="ignore"):
        return x.astype(dtype)


def make_array(recipe, shape: tuple[int, ...], rng: np.random.Generator, unit: bool = False) -> Any:
    """A model output of ``shape`` drawn from ``recipe`` (``unit``: base values in [0, 1), as discounts)."""
    dtype, scale, special, probability, bad_shape = recipe
    if bad_shape:
        shape = (shape[0] + 1, *shape[1:])
    with np.errstate(all="ignore"):
        x = (rng.random(shape) if unit else rng.standard_normal(shape)) * (1.0 if unit else scale)
    x[rng.random(shape) < probability] = special
    return convert(x, dtype)


def make_mask(kind: str, shape: tuple[int, int], rng: np.random.Generator) -> Any:
    if kind == "none":
        return None
    mask = rng.random(shape) < 0.6
    if kind == "empty-row":
        mask[0] = False
    return {"bool": mask, "empty-row": mask, "int": mask.astype(np.int64), "twos": mask * 2, "float": mask * 1.0}[kind]


def make_embedding(kind: str, batch: int) -> Any:
    base = np.arange(batch * 2, dtype=np.float64).reshape(batch, 2)
    if kind == "torch":
        import torch

        return torch.from_numpy(base)
    if kind == "list":
        return [tuple(row) for row in base]
    return base.astype(kind)


@st.composite
def output_cases(draw):
    batch, actions = draw(st.integers(1, 4)), draw(st.integers(1, 6))
    return dict(
        batch=batch, actions=actions, simulations=draw(st.integers(1, 12)), seed=draw(st.integers(0, 2**16)),
        policy=draw(st.sampled_from(["muzero", "gumbel"])), max_depth=draw(st.none() | st.integers(1, 4)),
        two_player=draw(st.booleans()), root_logits=draw(RECIPE), root_value=draw(RECIPE),
        root_mask=draw(st.sampled_from(["none", "none", "bool", "int", "twos", "empty-row", "float"])),
        embedding=draw(st.sampled_from(["float64", "float64", "int64", "float32", "list", "torch"])),
        reward=draw(RECIPE), discount=draw(RECIPE), value=draw(RECIPE), logits=draw(RECIPE),
        child_mask=draw(st.sampled_from(["none", "none", "bool", "int", "twos", "empty-row", "float"])),
        child_embedding=draw(st.sampled_from(["same", "same", "plus-half", "short"])),
        jit=draw(st.sampled_from([False, False, False, True])),  # a compiled model (the hash model of the tests)
        jit_params=draw(st.tuples(st.sampled_from([0.0, 0.2, 1.0, math.nan]),
                                  st.sampled_from([1.0, 3.0, 1e308, math.nan, math.inf]),
                                  st.sampled_from([-1.0, 0.5, 1.0]), st.sampled_from(["float64"] * 5 + ["float32"]))),
    )  # fmt: skip


def _model(case: dict):
    """The case's model: a Python callback built from the recipes, or the compiled hash model."""
    from gym_planning.search import JitRecurrentFn, RecurrentOutput

    if case["jit"]:
        from tests.search.reference import hash_model_step

        *params, dtype = case["jit_params"]
        with np.errstate(over="ignore"):  # 1e308 as float32 is inf: a parameter the search must refuse
            return JitRecurrentFn(hash_model_step, np.array(params, dtype))
    rng = np.random.default_rng(case["seed"])

    def recurrent_fn(embedding, action):
        k = len(action)
        shape = (k, case["actions"])
        output = RecurrentOutput(
            make_array(case["reward"], (k,), rng), make_array(case["discount"], (k,), rng, unit=True),
            make_array(case["logits"], shape, rng), make_array(case["value"], (k,), rng),
            make_mask(case["child_mask"], shape, rng),
        )  # fmt: skip
        kind = case["child_embedding"]
        if kind == "plus-half" and not isinstance(embedding, list):
            embedding = embedding + 0.5
        return output, (embedding[:-1] if kind == "short" else embedding)

    return recurrent_fn


def _check_output(out, legal: np.ndarray | None, simulations: int) -> None:
    batch, actions = out.action_weights.shape
    legal = np.ones((batch, actions), bool) if legal is None else legal
    if not legal[np.arange(batch), out.action].all():
        raise InvariantBroken(f"illegal action {out.action.tolist()} for mask {legal.tolist()}")
    if not (np.isfinite(out.action_weights).all() and np.allclose(out.action_weights.sum(axis=1), 1.0, atol=1e-4)):
        raise InvariantBroken(f"action weights {out.action_weights.tolist()}")
    if not np.isfinite(out.root_value).all():
        raise InvariantBroken(f"root value {out.root_value.tolist()}")
    if (out.tree.children_visits[:, 0].sum(axis=1) != simulations).any():
        raise InvariantBroken("a simulation was not spent")


def search_outputs() -> Target:
    from gym_planning.search import RootOutput, gumbel_muzero_policy, muzero_policy

    def run(case: dict) -> None:
        rng = np.random.default_rng(case["seed"] + 1)
        shape = (case["batch"], case["actions"])
        embedding = make_embedding(case["embedding"], case["batch"])
        if case["jit"] and case["embedding"] in ("int64", "float64"):  # the hash model's state: [B, 1]
            embedding = embedding[:, :1].astype(case["embedding"])
        root = RootOutput(make_array(case["root_logits"], shape, rng), make_array(case["root_value"], shape[:1], rng),
                          embedding)  # fmt: skip
        mask = make_mask(case["root_mask"], shape, rng)
        policy = muzero_policy if case["policy"] == "muzero" else gumbel_muzero_policy
        out = policy(root, _model(case), case["simulations"], legal_mask=mask, max_depth=case["max_depth"],
                     two_player=case["two_player"], rng=case["seed"])  # fmt: skip
        _check_output(out, None if mask is None else np.asarray(mask, bool), case["simulations"])

    return Target(output_cases(), run, (ValueError, TypeError), SEARCH_NAMES)


WEIRD = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-5, 10**6),
    st.sampled_from([None, "1", True, 1j, (1, 2), [0.0, 1.0], np.float32(0.5), np.int64(3)]),
)


@st.composite
def setting_cases(draw):
    policy = draw(st.sampled_from(["muzero", "gumbel"]))
    kwargs = {name: draw(WEIRD) for name in SETTINGS[policy] if draw(st.integers(0, 3)) == 0}
    if policy == "muzero" and draw(st.booleans()):
        kwargs["value_bounds"] = draw(st.tuples(st.floats(), st.floats()) | st.tuples(st.integers(), st.integers()))
    if draw(st.integers(0, 4)) == 0:
        kwargs["max_depth"] = draw(st.none() | st.integers(-1, 6) | WEIRD)
    simulations = draw(st.integers(-2, 60) | st.sampled_from([None, 2.5, "8", True]))
    return policy, simulations, kwargs


def search_settings() -> Target:
    from gym_planning.search import RecurrentOutput, RootOutput, gumbel_muzero_policy, muzero_policy

    def recurrent_fn(embedding, action):
        k = len(action)
        return RecurrentOutput(np.ones(k), np.full(k, 0.9), np.zeros((k, 3)), np.zeros(k)), embedding

    root = RootOutput(np.array([[0.0, 1.0, -1.0], [2.0, 0.0, 0.0]]), np.zeros(2), np.zeros((2, 1)))

    def run(case) -> None:
        policy, simulations, kwargs = case
        search = muzero_policy if policy == "muzero" else gumbel_muzero_policy
        out = search(root, recurrent_fn, simulations, rng=0, **kwargs)
        _check_output(out, None, simulations)

    names = SEARCH_NAMES + SETTINGS["muzero"] + SETTINGS["gumbel"]
    return Target(setting_cases(), run, (ValueError, TypeError), names)


TARGETS = {"search_outputs": search_outputs, "search_settings": search_settings}
