"""The training step's bookkeeping: loss targets built in numpy equal the torch ones; the fast mode switch."""

import numpy as np
import torch as th

from gym_planning.agents.muzero import MuZero
from gym_planning.agents.muzero.buffer import INSIDE, UNKNOWN
from gym_planning.agents.muzero.muzero import _flag_only_modules
from gym_planning.models.support import scalar_to_support


def _model() -> MuZero:
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, device="cpu", learning_starts=100, batch_size=16,
                   num_unroll_steps=3, num_simulations=2)  # fmt: skip
    model.learn(200)
    return model


def test_loss_targets_equal_torch_supports_and_masks_bit_for_bit():
    model = _model()
    batch = model.replay_buffer.sample(16, 3, model.td_steps, model.discount)
    value_targets = model._value_targets(batch)
    targets = model._loss_targets(batch, value_targets)
    expected_value = scalar_to_support(th.as_tensor(value_targets), model.value_support_size)
    expected_reward = scalar_to_support(th.as_tensor(batch.rewards), model.reward_support_size)[:, 1:]
    assert th.equal(targets["value_probs"], expected_value)
    assert th.equal(targets["reward_probs"], expected_reward)
    scale = np.array([1.0, 1 / 3, 1 / 3, 1 / 3], np.float32)
    np.testing.assert_array_equal(targets["value_weight"].numpy(), (batch.status != UNKNOWN) * scale)
    np.testing.assert_array_equal(targets["policy_weight"].numpy(), (batch.status == INSIDE) * scale)
    np.testing.assert_array_equal(targets["reward_weight"].numpy(), batch.reward_mask[:, 1:] * scale[1:])


def test_mode_switch_sets_every_module_and_falls_back_when_train_is_overridden():
    model = _model()
    for mode in (True, False, True):
        model._set_training_mode(mode)
        assert all(module.training == mode for module in model.policy.modules())

    calls = []

    class CountingReLU(th.nn.ReLU):
        def train(self, mode: bool = True):
            calls.append(mode)
            return super().train(mode)

    model.policy.network.policy_net.append(CountingReLU())
    # What _setup_model records: a module overriding train() is switched through torch's own walk.
    model._mode_modules = _flag_only_modules(model.policy)
    assert model._mode_modules is None
    model._set_training_mode(not model.policy.training)
    assert calls == [model.policy.training]
    assert all(module.training == model.policy.training for module in model.policy.modules())
