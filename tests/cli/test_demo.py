"""`make demo`'s table: every evaluation of every agent, with its training wall seconds."""

from gym_planning.demo import evaluation_table


def _row(algo: str, env_steps: int, mean_return: float, wall_s: float) -> dict:
    return dict(env="CartPole-v1", algo=algo, seed=0, env_steps=env_steps, wall_s=wall_s, mean_return=mean_return)


def test_evaluation_table_lines_up_each_agents_evaluations():
    curves = [
        _row("ppo", 512, 20.0, 0.4),
        _row("muzero", 1000, 150.5, 3.25),
        _row("muzero", 0, 9.0, 0.0),
        _row("ppo", 0, 9.5, 0.0),
        _row("ppo", 1024, 40.0, 0.9),
    ]
    lines = evaluation_table(curves).splitlines()
    assert lines[0].split("|")[1].strip().startswith("muzero:") and lines[0].split("|")[2].strip().startswith("ppo:")
    assert len(lines) == 4  # a header and PPO's three evaluations; MuZero has two
    assert lines[2].split() == ["1", "|", "1,000", "150.5", "3.2", "|", "512", "20.0", "0.4"]
    assert lines[3].split() == ["2", "|", "|", "1,024", "40.0", "0.9"]
