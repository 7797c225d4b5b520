"""Environments of the seed study that no maintained package provides.

Ids register when :mod:`gym_planning` is imported (Gymnasium 1.x has no plugin loader), so
``gym.make("gym_planning:gym_planning/Sokoban-v0")`` works without importing anything first.
Entry points are strings, so registering imports none of the environment modules.
"""

from gymnasium.envs.registration import register, registry

_ENVS = [
    dict(id="gym_planning/Sokoban-v0", entry_point="gym_planning.envs.sokoban:SokobanEnv"),
    dict(id="gym_planning/Minipacman-v0", entry_point="gym_planning.envs.minipacman:MinipacmanEnv"),
    dict(id="gym_planning/Go9x9-v0", entry_point="gym_planning.envs.go:GoEnv"),
]

for _spec in _ENVS:
    if _spec["id"] not in registry:
        register(**_spec)
