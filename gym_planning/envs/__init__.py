"""Environments of the seed study that no maintained package provides.

Ids register when :mod:`gym_planning` is imported (Gymnasium 1.x has no plugin loader), so
``gym.make("gym_planning:gym_planning/Sokoban-v0")`` works without importing anything first.
"""
