import numpy as np
import pytest
import torch as th
from hypothesis import given, settings
from hypothesis import strategies as st

from gym_planning.models.support import (
    inverse_scalar_transform,
    scalar_to_support,
    scalar_transform,
    support_to_scalar,
    two_hot_numpy,
)


def test_transform_values_by_hand():
    x = th.tensor([0.0, 3.0, -3.0, 8.0])
    # h(3) = sqrt(4) - 1 + 0.003 = 1.003; h(8) = 3 - 1 + 0.008 = 2.008
    assert th.allclose(scalar_transform(x), th.tensor([0.0, 1.003, -1.003, 2.008]))


def test_inverse_transform_round_trips():
    x = th.linspace(-1000.0, 1000.0, 2001, dtype=th.float64)
    assert th.allclose(inverse_scalar_transform(scalar_transform(x)), x, rtol=1e-9, atol=1e-8)


def test_two_hot_by_hand():
    # h(3) = 1.003 -> 0.997 on bin 1, 0.003 on bin 2 (support -2..2: indices 3, 4).
    probs = scalar_to_support(th.tensor([3.0]), support_size=2)
    assert th.allclose(probs, th.tensor([[0.0, 0.0, 0.0, 0.997, 0.003]]), atol=1e-6)


def test_support_round_trip_and_clipping():
    x = th.tensor([-40.0, -1.5, 0.0, 0.25, 7.0, 40.0])
    logits = th.log(scalar_to_support(x, support_size=10) + 1e-12)
    assert th.allclose(support_to_scalar(logits, support_size=10), x, rtol=1e-3, atol=1e-3)
    # Beyond the support the target sits entirely on the edge bin.
    top = scalar_to_support(th.tensor([1e6]), support_size=10)
    assert top[0, -1] == 1.0 and top.sum() == 1.0


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="support_size"):
        scalar_to_support(th.zeros(2), support_size=0)
    with pytest.raises(ValueError, match="bins"):
        support_to_scalar(th.zeros(2, 5), support_size=3)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.floats(-1e5, 1e5, allow_nan=False, width=32), min_size=1, max_size=40),
    support_size=st.integers(1, 30),
)
def test_numpy_two_hot_equals_torch_bit_for_bit(values, support_size):
    x = th.tensor(values, dtype=th.float32).reshape(-1, 1)
    expected = scalar_to_support(x, support_size).numpy()
    np.testing.assert_array_equal(two_hot_numpy(scalar_transform(x).numpy(), support_size), expected)


def test_numpy_two_hot_by_hand():
    # h(3) = 1.003 -> 0.997 on bin 1, 0.003 on bin 2; a value beyond the support sits on the edge bin.
    probs = two_hot_numpy(np.array([1.003, 50.0]), support_size=2)
    np.testing.assert_allclose(probs, [[0.0, 0.0, 0.0, 0.997, 0.003], [0.0, 0.0, 0.0, 0.0, 1.0]], atol=1e-6)
