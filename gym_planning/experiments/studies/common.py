"""What every study shares: its folder, its training runs (reused when they exist) and its report.

A study folder ``OUT/studies/<name>_<envs>/`` holds ``study.yml`` (the arguments it ran with, so that
``gym-planning report`` can redraw it), its CSVs, PNG plots and ``report.md``. Its training runs live beside
the others under ``OUT/<algo>/`` and are shared by studies that need the same run.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import yaml

from gym_planning.experiments.config import resolve_config
from gym_planning.experiments.runs import default_run_dir
from gym_planning.experiments.train import train_run

# A seconds-long training run per algorithm (``--tiny``): enough steps for every code path to run.
TINY_SETTINGS: dict[str, dict[str, Any]] = {
    "muzero": dict(n_timesteps=200, n_envs=2, learning_starts=64, batch_size=16, buffer_size=1000, num_simulations=4,
                   num_unroll_steps=2, td_steps=5, policy_kwargs={"network_kwargs": {"latent_dim": 16}}),
    "ppo": dict(n_timesteps=256, n_envs=4, n_steps=32, batch_size=64, n_epochs=2),
    "dqn": dict(n_timesteps=300, learning_starts=100, train_freq=16, gradient_steps=4, buffer_size=1000),
    "a2c": dict(n_timesteps=200, n_envs=4),
}  # fmt: skip


def study_dir(args: argparse.Namespace, name: str, envs: list[str]) -> Path:
    """``OUT/studies/<name>_<envs>[_tiny]``, created, with ``study.yml`` recording ``args``."""
    label = "+".join(re.sub(r"[^A-Za-z0-9_.-]", "-", env) for env in envs)
    path = Path(args.out) / "studies" / f"{name}_{label}{'_tiny' if args.tiny else ''}"
    path.mkdir(parents=True, exist_ok=True)
    record = {k: v for k, v in vars(args).items() if isinstance(v, (str, int, float, bool, list, type(None)))}
    (path / "study.yml").write_text(yaml.safe_dump({**record, "name": name, "env": envs}, sort_keys=False))
    return path


def read_study(path: str | Path) -> dict[str, Any]:
    """The arguments a study folder was made with (its ``study.yml``)."""
    file = Path(path) / "study.yml"
    if not file.is_file():
        raise ValueError(f"{path} is neither a run folder (config.yml) nor a study folder (study.yml)")
    return yaml.safe_load(file.read_text())


def study_run(args: argparse.Namespace, algo: str, env_id: str, seed: int, *, n_timesteps: int | None = None,
              variant: str = "", overrides: dict[str, Any] | None = None, conf: str | Path | None = None) -> Path:  # fmt: skip
    """Train (or reuse) one run of a study: ``OUT/<algo>/<env>_<steps>steps[_variant][_tiny]_seed<N>``.

    :param n_timesteps: env steps (default: ``--budget``, else the tuned entry's).
    :param variant: names a non-default configuration (``targets-off``), so that runs of different settings
        never share a folder.
    """
    overrides = {**(TINY_SETTINGS[algo] if args.tiny else {}), **(overrides or {})}
    steps = n_timesteps or args.budget or None
    if args.tiny:
        steps = (
            TINY_SETTINGS[algo]["n_timesteps"] if n_timesteps is None else min(n_timesteps, TINY_SETTINGS[algo]["n_timesteps"])
        )
    config = resolve_config(algo, env_id, seed=seed, overrides=overrides, conf=conf, n_timesteps=steps)
    base = default_run_dir(args.out, config)
    suffix = "".join(f"_{part}" for part in (f"{config.n_timesteps}steps", variant, "tiny" if args.tiny else "") if part)
    run_dir = base.with_name(base.name.replace(f"_seed{seed}", f"{suffix}_seed{seed}"))
    print(f"[{algo} {env_id} seed {seed}{' ' + variant if variant else ''}] {run_dir}", flush=True)
    return train_run(config, run_dir, device=args.device, eval_episodes=min(args.episodes, 5))


def markdown_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """A markdown table (floats with 1 decimal)."""
    if not rows:
        return "(no rows)"
    columns = columns or list(rows[0])

    def fmt(value: Any) -> str:
        return f"{value:.1f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(fmt(row.get(c, "")) for c in columns) + " |" for row in rows])


def write_report(path: Path, title: str, sections: list[str]) -> Path:
    """Write ``report.md`` (title, then the sections separated by blank lines); return its path."""
    report = path / "report.md"
    report.write_text(f"# {title}\n\n" + "\n\n".join(sections) + "\n")
    print(f"report: {report}")
    return report
