"""MuZero as a Stable-Baselines3 algorithm."""

from gym_planning.agents.muzero.actor import Actor, ActorProcess, Chunk
from gym_planning.agents.muzero.buffer import GameSegmentBuffer, UnrollTargets
from gym_planning.agents.muzero.muzero import FAST_CPU_SETTINGS, MuZero, visit_temperature_schedule
from gym_planning.agents.muzero.policies import CnnPolicy, MlpPolicy, MuZeroPolicy

__all__ = [
    "Actor",
    "ActorProcess",
    "Chunk",
    "FAST_CPU_SETTINGS",
    "CnnPolicy",
    "GameSegmentBuffer",
    "MlpPolicy",
    "MuZero",
    "MuZeroPolicy",
    "UnrollTargets",
    "visit_temperature_schedule",
]
