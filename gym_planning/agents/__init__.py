"""gym_planning.agents."""
