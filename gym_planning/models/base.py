"""What a model must offer to be planned with.

A :class:`SearchModel` turns observations into search roots and answers the search's batched
``recurrent_fn`` calls. Learned MuZero networks and the true simulator (``SimulatorModel``) both
implement it, so agents can search with either.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from gym_planning.search import RecurrentOutput, RootOutput


@runtime_checkable
class SearchModel(Protocol):
    """A batched model for :mod:`gym_planning.search`."""

    def root(self, observation: np.ndarray) -> RootOutput:
        """Roots for a batch of observations ``[B, *obs_shape]``: prior logits ``[B, A]``, value ``[B]``, embeddings."""
        ...

    def recurrent(self, embedding: Any, action: np.ndarray) -> tuple[RecurrentOutput, Any]:
        """One step from each of the B embeddings with ``action`` ``[B]``; the search's ``recurrent_fn``."""
        ...
