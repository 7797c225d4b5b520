"""Batched MuZero / Gumbel MuZero tree search in Numba.

The tree is a struct of arrays (:class:`Tree`); the model is a batched Python callback, so it can be a
torch network on any device or the environment itself. Nothing here imports torch.
"""

from gym_planning.search.base import JitRecurrentFn, RecurrentFn, RecurrentOutput, RootOutput, SearchOutput
from gym_planning.search.config import SearchConfig, run_policy
from gym_planning.search.embeddings import EmbeddingStore
from gym_planning.search.policies import gumbel_muzero_policy, muzero_policy
from gym_planning.search.seq_halving import considered_visits_sequence
from gym_planning.search.tree import NO_PARENT, ROOT_INDEX, UNVISITED, SearchSummary, Tree

__all__ = [
    "EmbeddingStore",
    "JitRecurrentFn",
    "NO_PARENT",
    "ROOT_INDEX",
    "RecurrentFn",
    "RecurrentOutput",
    "RootOutput",
    "SearchConfig",
    "SearchOutput",
    "SearchSummary",
    "Tree",
    "UNVISITED",
    "considered_visits_sequence",
    "gumbel_muzero_policy",
    "muzero_policy",
    "run_policy",
]
