"""Experiments: the ``gym-planning`` command line (train, eval, study, report), run folders and the studies.

One module per command (:mod:`~gym_planning.experiments.train`, :mod:`~gym_planning.experiments.evaluate`,
:mod:`~gym_planning.experiments.report`) and per study (:mod:`gym_planning.experiments.studies`); run folders
in :mod:`~gym_planning.experiments.runs`, settings in :mod:`~gym_planning.experiments.config`, plots in
:mod:`~gym_planning.experiments.plots`. ``docs/studies.md`` describes the studies.
"""
