"""MuZero as an SB3 algorithm: learning on a tiny corridor, search vs policy head, save/load, resume, API."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure

from gym_planning.agents.muzero import MuZero
from tests.agents.corridor import Corridor, make_corridor

LENGTH = 6
# Tiny settings: a CI-sized budget (a few hundred env steps) on the corridor.
TINY = dict(
    num_simulations=8,
    learning_starts=64,
    batch_size=32,
    replay_ratio=0.5,
    discount=0.9,
    td_steps=5,
    value_support_size=5,
    reward_support_size=2,
    learning_rate=3e-3,
    policy_kwargs=dict(network_kwargs=dict(latent_dim=16, hidden_sizes=(32,))),
)


def _returns(model, env, n=2):
    return evaluate_policy(model, env, n_eval_episodes=n, warn=False)[0]


@pytest.fixture(scope="module")
def trained():
    th.set_num_threads(1)
    model = MuZero("MlpPolicy", make_corridor(LENGTH), seed=0, **TINY)
    return model.learn(600)


def test_corridor_is_solved(trained):
    assert _returns(trained, make_corridor(LENGTH)) == 1.0
    # Deterministic search takes the shortest path.
    obs = np.eye(LENGTH, dtype=np.float32)[: LENGTH - 1]
    actions, _ = trained.predict(obs, deterministic=True)
    assert actions.tolist() == [1] * (LENGTH - 1)


def test_search_with_learned_model_beats_the_raw_policy_head(trained):
    model = MuZero("MlpPolicy", make_corridor(LENGTH), seed=0, **TINY)
    model.set_parameters(trained.get_parameters())
    # Flatten the policy head: alone it now always goes left (argmax of equal logits), and never arrives ...
    last = model.policy.network.policy_net[-1]
    th.nn.init.zeros_(last.weight), th.nn.init.zeros_(last.bias)
    assert _returns(model.policy, make_corridor(LENGTH)) == 0.0
    # ... while the search plans with the learned dynamics, rewards and values and still walks to the goal.
    assert _returns(model, make_corridor(LENGTH)) == 1.0


def test_save_load_gives_identical_predictions(trained, tmp_path):
    trained.save(tmp_path / "muzero")
    loaded = MuZero.load(tmp_path / "muzero", env=make_corridor(LENGTH))
    obs = np.random.default_rng(0).random((7, LENGTH)).astype(np.float32)
    for key, tensor in trained.policy.state_dict().items():
        assert th.equal(tensor, loaded.policy.state_dict()[key]), key
    root, loaded_root = trained.policy.network.root(obs), loaded.policy.network.root(obs)
    assert th.equal(root.prior_logits, loaded_root.prior_logits) and th.equal(root.value, loaded_root.value)
    assert np.array_equal(trained.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    # The search's Generator is saved too: non-deterministic predictions draw the same numbers.
    assert np.array_equal(trained.predict(obs)[0], loaded.predict(obs)[0])


def _fingerprint(model):
    return (
        {k: v.clone() for k, v in model.policy.state_dict().items()},
        model.replay_buffer.priorities.copy(),
        model.num_timesteps,
        model._n_updates,
    )


def _assert_same_run(a, b):
    params_a, prio_a, steps_a, updates_a = a
    params_b, prio_b, steps_b, updates_b = b
    assert (steps_a, updates_a) == (steps_b, updates_b)
    assert np.array_equal(prio_a, prio_b)
    for key in params_a:
        assert th.equal(params_a[key], params_b[key]), key


def test_checkpoint_resume_equals_uninterrupted_run(tmp_path):
    settings = dict(TINY, learning_starts=40, temperature=1.0, reanalyse_fraction=0.5, buffer_size=400)
    straight = MuZero("MlpPolicy", make_corridor(LENGTH), seed=3, **settings)
    straight.learn(100).learn(100, reset_num_timesteps=False)

    first = MuZero("MlpPolicy", make_corridor(LENGTH), seed=3, **settings).learn(100)
    first.save(tmp_path / "ckpt")
    first.save_replay_buffer(tmp_path / "replay")
    # SB3 never saves envs: resuming continues the same (live) env without resetting it.
    resumed = MuZero.load(tmp_path / "ckpt", env=first.get_env(), force_reset=False)
    resumed.load_replay_buffer(tmp_path / "replay")
    resumed.learn(100, reset_num_timesteps=False)
    _assert_same_run(_fingerprint(straight), _fingerprint(resumed))

    # Two seeded runs agree, a different seed does not.
    other = MuZero("MlpPolicy", make_corridor(LENGTH), seed=4, **settings).learn(100)
    assert not np.array_equal(other.replay_buffer.priorities, first.replay_buffer.priorities)


@pytest.mark.parametrize(
    "settings",
    [
        dict(search="gumbel", max_num_considered_actions=2),
        dict(max_depth=1, search_at_train_time=False),
        dict(search_for_targets=False),
        dict(search="gumbel", search_at_train_time=False, search_for_targets=False, reanalyse_fraction=1.0),
    ],
    ids=["gumbel", "depth1-prior-acting", "one-step-targets", "gumbel-no-search"],
)
def test_variants_train_and_store_valid_policy_targets(settings):
    model = MuZero("MlpPolicy", make_corridor(LENGTH), seed=0, **dict(TINY, learning_starts=32), **settings)
    model.learn(80)
    stored = model.replay_buffer.policy_targets[: model.replay_buffer.pos, 0]
    assert np.allclose(stored.sum(axis=1), 1.0) and (stored >= 0).all()
    assert model._n_updates > 0
    if not settings.get("search_for_targets", True):
        assert set(np.unique(stored)) <= {0.0, 1.0}  # one-step look-ahead targets are one-hot


def test_sb3_api_evaluate_callbacks_logger(tmp_path):
    env = make_vec_env(lambda: make_corridor(LENGTH), n_envs=2, seed=0)
    model = MuZero("MlpPolicy", env, seed=0, verbose=0, **dict(TINY, learning_starts=32))
    model.set_logger(configure(str(tmp_path / "log"), ["csv"]))

    class CountSteps(BaseCallback):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def _on_step(self) -> bool:
            self.calls += 1
            return True

    counter = CountSteps()
    eval_callback = EvalCallback(make_corridor(LENGTH), eval_freq=40, n_eval_episodes=1, log_path=str(tmp_path), warn=False)
    checkpoint = CheckpointCallback(save_freq=50, save_path=str(tmp_path / "ckpt"), name_prefix="mz")
    model.learn(200, callback=[counter, eval_callback, checkpoint], log_interval=1)
    assert counter.calls == 100  # one call per vector step of 2 envs
    assert eval_callback.n_calls == 100 and len(eval_callback.evaluations_results) == 2
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir())[0] == "mz_100_steps.zip"
    header = (tmp_path / "log" / "progress.csv").read_text().splitlines()[0].split(",")
    for key in ("rollout/ep_rew_mean", "train/loss_value", "train/loss_reward", "train/loss_policy", "time/fps"):
        assert key in header
    for phase in ("search", "env", "targets", "gradient"):
        assert f"time/{phase}_s" in header and model.phase_seconds[phase] > 0
    # predict takes one observation or a batch; evaluate_policy runs batched searches over both envs.
    single, _ = model.predict(np.eye(LENGTH, dtype=np.float32)[0], deterministic=True)
    assert np.ndim(single) == 0
    mean, _ = evaluate_policy(model, env, n_eval_episodes=4, warn=False)
    assert mean == 1.0  # 200 steps are enough for this seed: all four episodes reach the goal


def test_stopping_callback_ends_training():
    class Stop(BaseCallback):
        def _on_step(self) -> bool:
            return self.n_calls < 5

    model = MuZero("MlpPolicy", make_corridor(LENGTH), seed=0, **TINY)
    model.learn(100, callback=Stop())
    assert model.num_timesteps == 5


class _MaskedCorridor(Corridor):
    """The corridor where moving left is illegal (sb3-contrib ``action_masks()``)."""

    def action_masks(self) -> np.ndarray:
        return np.array([False, True])


def test_action_masks_are_respected():
    model = MuZero("MlpPolicy", gym.wrappers.TimeLimit(_MaskedCorridor(LENGTH), 12), seed=0, **TINY)
    model.learn(20)
    assert (model.replay_buffer.actions[:20, 0] == 1).all()
    assert (model.replay_buffer.policy_targets[:20, 0, 0] == 0).all()


@pytest.mark.parametrize(
    "action_space, hint",
    [
        (spaces.Box(-np.inf, np.inf, (1,)), "finite bounds"),
        (spaces.MultiDiscrete([2, 3]), "Discrete\\(prod\\(nvec\\)\\)"),
        (spaces.Dict({"a": spaces.Discrete(2)}), "single Discrete"),
    ],
)
def test_unsupported_action_space_names_the_wrapper(action_space, hint):
    class Env(Corridor):
        def __init__(self):
            super().__init__()
            self.action_space = action_space

    with pytest.raises(ValueError, match=hint):
        MuZero("MlpPolicy", Env())


def test_unembeddable_observation_spaces_are_named():
    class DictObs(Corridor):
        def __init__(self):
            super().__init__()
            self.observation_space = spaces.Dict({"pos": spaces.Box(0, 1, (6,))})

    with pytest.raises(ValueError, match="FlattenObservation"):
        MuZero("MlpPolicy", DictObs())
    with pytest.raises(ValueError, match="CnnPolicy needs image observations"):
        MuZero("CnnPolicy", make_corridor(LENGTH))


def test_cnn_policy_refuses_channel_last_planes():
    # Minipacman's binary planes are [H, W, C] = [15, 19, 6] with high 1: SB3 transposes only uint8 0-255
    # images, so the conv network would read 15 channels of 19 x 6 images without this check.
    from gym_planning.envs import MinipacmanEnv

    with pytest.raises(ValueError, match="channel-last"):
        MuZero("CnnPolicy", MinipacmanEnv(observation_type="planes"))
    model = MuZero("CnnPolicy", MinipacmanEnv(observation_type="rgb"), num_simulations=2)  # SB3 transposes RGB
    assert model.observation_space.shape == (3, 15, 19)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(search="alphazero"), "search must be"),
        (dict(num_simulations=0), "num_simulations"),
        (dict(reanalyse_fraction=2.0), "reanalyse"),
        (dict(replay_ratio=0.0), "replay_ratio must be > 0"),
        (dict(inference="jax"), "inference must be 'auto', 'numba' or 'torch'"),
        (dict(weight_decay=0.5, policy_kwargs=dict(optimizer_kwargs=dict(weight_decay=0.1))), "weight_decay is set twice"),
    ],
)
def test_bad_hyperparameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MuZero("MlpPolicy", make_corridor(LENGTH), **kwargs)


def test_cnn_policy_trains_on_images():

    class ImageCorridor(Corridor):
        def __init__(self):
            super().__init__()
            self.observation_space = spaces.Box(0, 255, (LENGTH, LENGTH, 1), np.uint8)

        def _observation(self):
            image = np.zeros((LENGTH, LENGTH, 1), np.uint8)
            image[:, self.position] = 255
            return image

    network_kwargs = dict(channels=8, downsample=False)
    settings = dict(TINY, learning_starts=16, batch_size=8, policy_kwargs=dict(network_kwargs=network_kwargs))
    model = MuZero("CnnPolicy", gym.wrappers.TimeLimit(ImageCorridor(), 12), seed=0, **settings).learn(40)
    assert model._n_updates > 0
    image = np.zeros((LENGTH, LENGTH, 1), np.uint8)
    # Barely trained, the search goes left (action 0) on ties; a mask allowing only right must overrule it.
    assert model.predict(image, deterministic=True)[0] == 0
    assert model.predict(image, deterministic=True, action_masks=np.array([False, True]))[0] == 1


def test_predict_takes_action_masks(trained):
    obs = np.eye(LENGTH, dtype=np.float32)[:3]
    only_left = np.array([[True, False]] * 3)
    assert trained.predict(obs, deterministic=True)[0].tolist() == [1, 1, 1]
    assert trained.predict(obs, deterministic=True, action_masks=only_left)[0].tolist() == [0, 0, 0]


def test_target_network_is_refreshed_every_interval():
    synced = MuZero("MlpPolicy", make_corridor(LENGTH), seed=0, target_update_interval=1, **dict(TINY, learning_starts=32))
    initial = {k: v.clone() for k, v in synced.policy.target_network.state_dict().items()}
    synced.learn(48)
    assert synced._n_updates > 0
    target, online = synced.policy.target_network.state_dict(), synced.policy.network.state_dict()
    assert all(th.equal(target[k], online[k]) for k in online)
    assert not all(th.equal(target[k], initial[k]) for k in initial)
    # Never refreshed: the target stays at the initial weights while the network trains.
    frozen = MuZero("MlpPolicy", make_corridor(LENGTH), seed=0, target_update_interval=10**6, **dict(TINY, learning_starts=32))
    frozen.learn(48)
    assert all(th.equal(frozen.policy.target_network.state_dict()[k], initial[k]) for k in initial)


def test_weight_decay_reaches_the_optimizer_beside_other_optimizer_kwargs():
    model = MuZero("MlpPolicy", make_corridor(LENGTH), weight_decay=0.5, policy_kwargs=dict(optimizer_kwargs=dict(eps=1e-5)))
    group = model.policy.optimizer.param_groups[0]
    assert group["weight_decay"] == 0.5 and group["eps"] == 1e-5 and group["fused"] is True


def test_assigning_a_search_setting_changes_the_next_search():
    model = MuZero("MlpPolicy", make_corridor(5), num_simulations=4, seed=0, device="cpu")
    observation = model.get_env().reset()

    def root_visits() -> int:
        output = model._run_search(model._root(observation), None, explore=False, temperature=0.0)
        return int(output.tree.summary().visit_counts.sum(axis=1)[0])

    assert root_visits() == 4
    model.num_simulations = 12
    assert model.search_config.num_simulations == 12
    assert root_visits() == 12
    model.num_simulations = 0
    with pytest.raises(ValueError, match="num_simulations"):
        model.predict(observation)
