"""The ``gym-planning`` command (also ``python -m gym_planning``): train, eval, study, report.

    gym-planning train --algo muzero --env CartPole-v1            # a run folder under runs/
    gym-planning eval runs/muzero/CartPole-v1_seed0 --search-budget 1,4,16,64 --depth 1,2,inf
    gym-planning study test-budget --env CartPole-v1 --seeds 3    # report.md + plots + CSVs
    gym-planning report runs/studies/test-budget_CartPole-v1      # tables and plots again, no training

Each command prints a summary table at the end. Errors in the input (an unknown env, algorithm, study or
hyperparameter, a run folder of another configuration) end the command with one message naming the valid
choices, and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from gym_planning.experiments import evaluate, report, train
from gym_planning.experiments.studies import STUDIES


def _study_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=sorted(STUDIES), help="; ".join(f"{k}: {m.TITLE}" for k, m in sorted(STUDIES.items())))
    parser.add_argument("--env", nargs="+", default=None, help="env id(s) (default: the study's own)")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per configuration")
    parser.add_argument("--budget", type=int, default=None, help="env steps per training run (default: the study's)")
    parser.add_argument("--episodes", type=int, default=8, help="evaluation episodes per point")
    parser.add_argument("--simulations", default=None, help="test-time budgets, comma-separated (default: the study's)")
    parser.add_argument("--out", default="runs", help="runs go to OUT/<algo>/..., the study to OUT/studies/<name>_<env>")
    parser.add_argument("--tiny", action="store_true", help="a seconds-long version (tests, smoke checks)")
    parser.add_argument("--agents", default=None, help="test-budget: muzero,ppo (default both)")
    parser.add_argument("--rollout-steps", default=None, help="test-budget: the weak guide's leaf rollout lengths (30,100)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))


COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], list[dict]], str]] = {
    "train": (train.add_arguments, train.run, "train an agent into a run folder (re-run to continue it)"),
    "eval": (evaluate.add_arguments, evaluate.run, "evaluate a run at test-time search budgets and depths"),
    "study": (_study_arguments, lambda args: STUDIES[args.name].run(args), "run a planning study (report.md, plots)"),
    "report": (report.add_arguments, report.run, "regenerate tables and plots of runs or studies, no training"),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subcommand per entry of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="gym-planning", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    for name, (add_arguments, _, help_text) in COMMANDS.items():
        add_arguments(commands.add_parser(name, help=help_text, description=help_text))
    return parser


def summary_table(rows: list[dict[str, Any]]) -> str:
    """A markdown table of ``rows`` (floats with 2 decimals)."""
    if not rows:
        return "(no rows)"
    columns = list(rows[0])
    cells = [[f"{row.get(c):.2f}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in columns] for row in rows]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(cells_row) + " |" for cells_row in cells])


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (2 for bad input, with one message on stderr)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)  # tiny networks: on a few cores, more threads only contend
        rows = COMMANDS[args.command][1](args)
    except ValueError as error:  # bad input, named by the code that found it
        print(f"gym-planning {args.command}: error: {error}", file=sys.stderr)
        return 2
    print("\n" + summary_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
