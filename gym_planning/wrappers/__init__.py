"""gym_planning.wrappers."""
