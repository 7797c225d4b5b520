"""Run one fuzz target in a worker process, so that a segfault is a reported result, not a dead pytest.

A *target* is a hypothesis strategy of inputs plus a function that feeds one input to the code under test
and returns an :class:`Outcome`. An input may be accepted (then invariants are checked: the env state stays
valid, the search outputs are finite) or refused with a *clear error*: one of the target's promised
exception types whose message names the field or setting. Anything else is a failure: another exception
(``ZeroDivisionError``, a Numba ``TypingError``, ``IndexError``...), an error that names nothing, or a
broken invariant. A worker that dies (segfault, abort) is a crash; the input it was running is saved
before each example, so the report names it.

    python -m tests.reliability.harness TARGET --examples N --seed S --out RESULT.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("sokoban", "minipacman", "go", "search_outputs", "search_settings")
MAX_REPORTED = 10


@dataclasses.dataclass
class Target:
    """What to fuzz: ``strategy`` draws inputs, ``run(input)`` returns "accepted" or raises.

    ``errors`` are the promised exception types; a refusal counts as clear when its message contains one
    of ``names`` (the fields and settings the target can complain about).
    """

    strategy: Any
    run: Callable[[Any], None]
    errors: tuple[type[BaseException], ...]
    names: tuple[str, ...]


class InvariantBroken(AssertionError):
    """An accepted input left the env or the search in a state that breaks a promise."""


def _segfault_target() -> Target:
    """A target whose third input kills the worker with SIGSEGV: proves that crashes are reported."""
    import ctypes

    from hypothesis import strategies as st

    def run(case: int) -> None:
        if case == 2:
            ctypes.string_at(0)  # reads address 0

    return Target(st.integers(0, 2), run, (ValueError,), ())


def _load(name: str) -> Target:
    if name == "segfault_selftest":
        return _segfault_target()
    if name in ("sokoban", "minipacman", "go"):
        from tests.reliability import env_targets

        return env_targets.TARGETS[name]()
    from tests.reliability import search_targets

    return search_targets.TARGETS[name]()


def _classify(target: Target, error: BaseException) -> str | None:
    """None for a clear refusal; else why the error is a failure."""
    if isinstance(error, InvariantBroken):
        return f"invariant broken: {error}"
    module = type(error).__module__
    if not isinstance(error, target.errors) or module.startswith("numba"):
        return f"unexpected {type(error).__name__}: {str(error)[:300]}"
    message = str(error)
    if not any(name in message for name in target.names):
        return f"{type(error).__name__} that names no field or setting: {message[:300]}"
    return None


def run_worker(name: str, examples: int, seed: int, out: Path) -> None:
    """Runs ``examples`` inputs of target ``name`` and writes the counts and failures as JSON to ``out``."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    target = _load(name)
    counts = {"examples": 0, "accepted": 0, "clear_errors": 0, "failures": 0}
    failures: list[dict[str, str]] = []
    last_input = open(out.with_suffix(".last"), "w")
    start = time.perf_counter()

    @hypothesis_seed(seed)
    @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(target.strategy)
    def fuzz(case: Any) -> None:
        counts["examples"] += 1
        last_input.seek(0)
        last_input.write(repr(case)[:4000])
        last_input.truncate()
        last_input.flush()
        try:
            target.run(case)
            counts["accepted"] += 1
        except Exception as error:  # noqa: BLE001 - classifying every exception is the point
            why = _classify(target, error)
            if why is None:
                counts["clear_errors"] += 1
                return
            counts["failures"] += 1
            if len(failures) < MAX_REPORTED:
                failures.append({"input": repr(case)[:1000], "why": why, "where": traceback.format_exc(limit=-3)[-800:]})

    fuzz()
    record = dict(target=name, seed=seed, seconds=round(time.perf_counter() - start, 2), **counts, failure_examples=failures)
    out.write_text(json.dumps(record, indent=1))


def run_target(name: str, examples: int, seed: int = 0, timeout: float = 600.0, nice: int = 10) -> dict[str, Any]:
    """Runs target ``name`` in a worker process; returns its record, with ``crashes`` (0 or 1: the worker died)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "tests.reliability.harness", name, "--examples", str(examples),
                   "--seed", str(seed), "--out", str(out)]  # fmt: skip
        if nice and hasattr(os, "nice"):
            command = ["nice", "-n", str(nice), *command]
        start = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
            code, stderr = done.returncode, done.stderr
        except subprocess.TimeoutExpired as expired:
            code, stderr = "timeout", str(expired.stderr or "")
        if code == 0 and out.exists():
            return {**json.loads(out.read_text()), "crashes": 0}
        last = out.with_suffix(".last")
        crash = {"input": last.read_text() if last.exists() else "?", "why": _death(code), "where": stderr[-1500:]}
        return dict(target=name, seed=seed, seconds=round(time.perf_counter() - start, 2), examples=None, accepted=None,
                    clear_errors=None, failures=0, crashes=1, failure_examples=[crash])  # fmt: skip


def _death(code: int | str) -> str:
    if code == "timeout":
        return "worker timed out (a hang, or too many examples for the timeout)"
    if isinstance(code, int) and code < 0:
        return f"worker killed by signal {signal.Signals(-code).name} (exit {128 - code})"
    return f"worker exited with status {code}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=(*TARGETS, "segfault_selftest"))
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    run_worker(args.target, args.examples, args.seed, args.out)


if __name__ == "__main__":
    main()
