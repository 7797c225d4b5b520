"""The standing fuzz suite, fast profile: every env's ``step``/``set_state`` and the search's model outputs
and settings, each target in its own worker process (a segfault is reported, not fatal to pytest).

The long profile is ``python -m benchmarks.fuzz [--examples N]``. ``GYM_PLANNING_FUZZ_SEED`` changes the
seed of this run (default 0, so that the default test run is reproducible).
"""

from __future__ import annotations

import json
import os

import pytest

from tests.reliability.harness import TARGETS, run_target

FAST_EXAMPLES = {"sokoban": 400, "minipacman": 400, "go": 300, "search_outputs": 120, "search_settings": 250}
SEED = int(os.environ.get("GYM_PLANNING_FUZZ_SEED", "0"))


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target_finds_no_crash_and_no_unclear_error(target: str) -> None:
    record = run_target(target, FAST_EXAMPLES[target], seed=SEED, timeout=120)
    assert record["crashes"] == 0 and record["failures"] == 0, json.dumps(record, indent=1)
    assert record["examples"] == FAST_EXAMPLES[target]
    assert record["accepted"] > 0 and record["clear_errors"] > 0  # the inputs reach both outcomes


def test_a_segfault_in_a_worker_is_reported_with_its_input() -> None:
    record = run_target("segfault_selftest", 50, timeout=60)
    assert record["crashes"] == 1
    assert "SIGSEGV" in record["failure_examples"][0]["why"] and record["failure_examples"][0]["input"] == "2"
