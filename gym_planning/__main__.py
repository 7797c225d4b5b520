"""``python -m gym_planning``: the ``gym-planning`` command line (:mod:`gym_planning.experiments.cli`)."""

import sys

from gym_planning.experiments.cli import main

sys.exit(main())
