"""A plain-Python reference implementation of MuZero and Gumbel MuZero search, for testing.

Written on purpose in a different style from the Numba core in :mod:`gym_planning.search`: one tree
at a time, nodes are objects with a dict of children (as in DeepMind's MuZero pseudocode), the
walk is recursive, and every number is a Python float. Indexing or bookkeeping bugs in the array
code then show up as disagreements with this file.

The semantics follow the search core exactly (same tie-breaking: lowest action index wins; same
noise, drawn from the same numpy Generator calls in the same order), so that with the same inputs
both give the same trees, visit counts, values and actions.

The model is a per-state function ``model(state, action) -> Step`` where ``Step`` holds the reward,
discount, prior logits, value and legal mask of the new state, plus the new state itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
from numba import njit

MASKED_LOGIT = -1e30
LOW_LOGIT = -1e9
EPSILON = 1e-8
TINY = float(np.finfo(np.float64).tiny)


class Step(NamedTuple):
    """One model step from a single state: everything the search needs about the child."""

    reward: float
    discount: float
    prior_logits: list[float]
    value: float
    legal: list[bool] | None
    state: Any


Model = Callable[[Any, int], Step]


@dataclass
class Node:
    """A search node. ``reward``/``discount`` describe the edge from the parent into this node;
    ``discount`` carries the two-player sign flip, as in the array tree."""

    prior_logits: list[float]
    legal: list[bool]
    raw_value: float
    state: Any
    index: int
    depth: int
    reward: float = 0.0
    discount: float = 0.0
    visits: int = 1
    value: float = 0.0
    children: dict[int, Node] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.value = self.raw_value

    def q(self, action: int) -> float:
        """``Q(self, action) = r + d * v(child)``; only meaningful for an expanded action."""
        child = self.children[action]
        return child.reward + child.discount * child.value

    def child_visits(self, action: int) -> int:
        child = self.children.get(action)
        return 0 if child is None else child.visits

    def walk(self, parent: Node | None = None, action: int = -1):
        """Yield ``(parent, action, node)`` for this node and every node below it (depth first)."""
        yield parent, action, self
        for child_action, child in sorted(self.children.items()):
            yield from child.walk(self, child_action)


class Bounds:
    """Tree-wide (min, max) of the Q-values backed up so far (MuZero's MinMaxStats)."""

    def __init__(self, known: tuple[float, float] | None):
        self.tracked = known is None
        self.low, self.high = (math.inf, -math.inf) if known is None else (float(known[0]), float(known[1]))

    def update(self, q: float) -> None:
        if self.tracked:
            self.low = min(self.low, q)
            self.high = max(self.high, q)

    def normalise(self, q: float) -> float:
        return (q - self.low) / max(self.high - self.low, EPSILON)


# ---------------------------------------------------------------- small maths on Python lists


def softmax(logits: Sequence[float]) -> list[float]:
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = 0.0
    for e in exps:
        total += e
    return [e / total for e in exps]


def masked(logits: Sequence[float], legal: Sequence[bool]) -> list[float]:
    """Shift legal logits so their max is 0; illegal ones get ``MASKED_LOGIT``."""
    top = max(x for x, ok in zip(logits, legal) if ok)
    return [x - top if ok else MASKED_LOGIT for x, ok in zip(logits, legal)]


def argmax(scores: dict[int, Any]) -> int:
    """Key of the largest score; the lowest key wins ties."""
    best = None
    for action in sorted(scores):
        if best is None or scores[action] > scores[best]:
            best = action
    return best


def considered_visits(max_considered: int, num_simulations: int) -> list[int]:
    """Sequential Halving schedule (Danihelka et al. 2022): the visit count an action needs to be
    chosen at the root at each simulation. Written independently of the core's version."""
    if max_considered <= 1:
        return list(range(num_simulations))
    rounds = math.ceil(math.log2(max_considered))
    schedule: list[int] = []
    remaining = max_considered
    done = 0  # visits each remaining action has received so far
    while len(schedule) < num_simulations:
        extra = max(1, int(num_simulations / (rounds * remaining)))
        for visit in range(done, done + extra):
            schedule += [visit] * remaining
        done += extra
        remaining = max(2, remaining // 2)
    return schedule[:num_simulations]


# ---------------------------------------------------------------- the search


class ReferenceSearch:
    """Search one tree with a per-state model. Subclasses define ``select``."""

    def __init__(self, model: Model, num_simulations: int, max_depth: int | None, two_player: bool):
        self.model = model
        self.num_simulations = num_simulations
        self.max_depth = num_simulations + 1 if max_depth is None else max_depth
        self.sign = -1.0 if two_player else 1.0
        self.num_nodes = 0

    def new_node(self, logits: list[float], legal: list[bool], value: float, state: Any, depth: int) -> Node:
        node = Node(list(logits), list(legal), float(value), state, index=self.num_nodes, depth=depth)
        self.num_nodes += 1
        return node

    def run(self, root: Node) -> Node:
        for _ in range(self.num_simulations):
            self.simulate(root, depth=0)
        return root

    def simulate(self, node: Node, depth: int) -> float:
        """One simulation below ``node``; returns the value it backs up into ``node``'s parent edge
        (i.e. the value of ``node`` seen by this simulation) after updating ``node``."""
        action = self.select(node, depth)
        child = node.children.get(action)
        if child is None:
            step = self.model(node.state, action)
            legal = step.legal if step.legal is not None and any(step.legal) else [True] * len(node.legal)
            child = self.new_node(step.prior_logits, legal, step.value, step.state, depth + 1)
            child.reward, child.discount = float(step.reward), self.sign * float(step.discount)
            node.children[action] = child
            leaf_value = child.raw_value
        elif depth + 1 >= self.max_depth or child.discount == 0.0:
            # Depth cut-off, or a terminal step (nothing below can change the value): the child's own
            # model value stands in for its subtree.
            leaf_value = child.raw_value
            child.value = (child.value * child.visits + leaf_value) / (child.visits + 1)
            child.visits += 1
        else:
            leaf_value = self.simulate(child, depth + 1)
        backed_up = child.reward + child.discount * leaf_value
        node.value = (node.value * node.visits + backed_up) / (node.visits + 1)
        node.visits += 1
        self.on_backup(node.q(action))
        return backed_up

    def on_backup(self, q: float) -> None:
        """Hook called with the Q of every edge a backup passes through."""

    def select(self, node: Node, depth: int) -> int:
        raise NotImplementedError


class MuZeroReference(ReferenceSearch):
    """pUCT with Q normalised by the tree-wide bounds (Schrittwieser et al. 2020, appendix B)."""

    def __init__(self, model, num_simulations, max_depth, two_player, pb_c_init, pb_c_base, value_bounds):
        super().__init__(model, num_simulations, max_depth, two_player)
        self.pb_c_init, self.pb_c_base = pb_c_init, pb_c_base
        self.bounds = Bounds(value_bounds)

    def on_backup(self, q: float) -> None:
        self.bounds.update(q)

    def select(self, node: Node, depth: int) -> int:
        probs = softmax(node.prior_logits)
        n_parent = node.visits
        pb_c = self.pb_c_init + math.log((n_parent + self.pb_c_base + 1.0) / self.pb_c_base)
        explore = math.sqrt(n_parent) * pb_c
        scores = {}
        for a, ok in enumerate(node.legal):
            if ok:
                q_norm = self.bounds.normalise(node.q(a)) if a in node.children else 0.0
                scores[a] = q_norm + explore * probs[a] / (node.child_visits(a) + 1)
        return argmax(scores)


def completed_qvalues(
    node: Node, value_scale: float, maxvisit_init: float, rescale_values: bool = True, use_mixed_value: bool = True
) -> list[float]:
    """Gumbel MuZero's ``sigma(completed Q)`` at ``node`` over all ``A`` actions (mctx's
    ``qtransform_completed_by_mix_value``): unvisited actions get the mixed value (or the node's
    raw model value), then optional min-max rescaling over all actions, then the visit scale."""
    num_actions = len(node.prior_logits)
    probs = softmax(node.prior_logits)
    visited = sorted(node.children)
    total_visits = sum(node.child_visits(a) for a in visited)
    prob_mass = 0.0
    for a in visited:
        prob_mass += max(TINY, probs[a])
    weighted_q = 0.0
    for a in visited:
        weighted_q += max(TINY, probs[a]) * node.q(a) / prob_mass
    mixed = (node.raw_value + total_visits * weighted_q) / (total_visits + 1.0)
    stand_in = mixed if use_mixed_value else node.raw_value
    completed = [node.q(a) if a in node.children else stand_in for a in range(num_actions)]
    if rescale_values:
        low, high = min(completed), max(completed)
        completed = [(q - low) / max(high - low, EPSILON) for q in completed]
    max_visits = max([node.child_visits(a) for a in range(num_actions)])
    scale = (maxvisit_init + max_visits) * value_scale
    return [scale * q for q in completed]


class GumbelReference(ReferenceSearch):
    """Gumbel MuZero (Danihelka et al. 2022): Sequential Halving with Gumbel-top-k at the root,
    deterministic interior selection."""

    def __init__(self, model, num_simulations, max_depth, two_player, gumbel, max_considered, sigma):
        super().__init__(model, num_simulations, max_depth, two_player)
        self.gumbel = list(gumbel)
        self.max_considered = max_considered
        self.sigma = sigma  # keyword arguments of completed_qvalues

    def select(self, node: Node, depth: int) -> int:
        cq = completed_qvalues(node, **self.sigma)
        legal = [a for a, ok in enumerate(node.legal) if ok]
        if depth == 0:
            schedule = considered_visits(min(self.max_considered, len(legal)), self.num_simulations)
            needed = schedule[sum(node.child_visits(a) for a in range(len(node.legal)))]
            top = max(node.prior_logits[a] for a in legal)
            scores = {a: max(LOW_LOGIT, self.gumbel[a] + (node.prior_logits[a] - top) + cq[a]) for a in legal}
            considered = {a: s for a, s in scores.items() if node.child_visits(a) == needed}
            return argmax(considered or scores)
        improved = softmax([logit + q for logit, q in zip(node.prior_logits, cq)])
        total = sum(node.child_visits(a) for a in range(len(node.legal)))
        return argmax({a: improved[a] - node.child_visits(a) / (1.0 + total) for a in legal})


# ---------------------------------------------------------------- policies (one root per call)


class ReferenceResult(NamedTuple):
    """What a reference policy returns for one root."""

    action: int
    action_weights: list[float]
    root_value: float
    root: Node
    num_nodes: int
    value_bounds: tuple[float, float]  # MuZero's (min, max) of Q at the end; (inf, -inf) for Gumbel


def muzero_root_logits(logits: Sequence[float], legal: Sequence[bool], noise: Sequence[float] | None, fraction: float):
    """Root logits MuZero stores: masked log of the (noised) masked prior."""
    probs = softmax(masked(logits, legal))
    if noise is not None:
        probs = [(1 - fraction) * p + fraction * n for p, n in zip(probs, noise)]
    return masked([math.log(max(p, TINY)) for p in probs], legal)


def reference_muzero(
    model: Model,
    root_state: Any,
    root_logits: Sequence[float],
    root_value: float,
    legal: Sequence[bool],
    num_simulations: int,
    *,
    noise: Sequence[float] | None = None,
    dirichlet_fraction: float = 0.25,
    max_depth: int | None = None,
    pb_c_init: float = 1.25,
    pb_c_base: float = 19652.0,
    two_player: bool = False,
    value_bounds: tuple[float, float] | None = None,
) -> ReferenceResult:
    """MuZero search on one root, acting greedily (temperature 0) on visit counts.

    :param noise: the root's Dirichlet sample ``[A]`` (None: no noise).
    """
    search = MuZeroReference(model, num_simulations, max_depth, two_player, pb_c_init, pb_c_base, value_bounds)
    logits = muzero_root_logits(root_logits, legal, noise, dirichlet_fraction)
    root = search.run(search.new_node(logits, list(legal), root_value, root_state, depth=0))
    visits = {a: root.child_visits(a) for a, ok in enumerate(legal) if ok}
    total = sum(visits.values())
    weights = [root.child_visits(a) / total for a in range(len(legal))]
    bounds = (search.bounds.low, search.bounds.high)
    # The most visited action; equally visited ones by their Q, then the lowest index.
    scores = {a: (n, root.q(a) if n else -math.inf) for a, n in visits.items()}
    return ReferenceResult(argmax(scores), weights, root.value, root, search.num_nodes, bounds)


def reference_gumbel(
    model: Model,
    root_state: Any,
    root_logits: Sequence[float],
    root_value: float,
    legal: Sequence[bool],
    num_simulations: int,
    *,
    gumbel: Sequence[float],
    max_num_considered_actions: int = 16,
    max_depth: int | None = None,
    two_player: bool = False,
    value_scale: float = 0.1,
    maxvisit_init: float = 50.0,
    rescale_values: bool = True,
    use_mixed_value: bool = True,
) -> ReferenceResult:
    """Gumbel MuZero search on one root. ``gumbel`` is the root's noise ``[A]`` (already scaled)."""
    sigma = dict(value_scale=value_scale, maxvisit_init=maxvisit_init, rescale_values=rescale_values,
                 use_mixed_value=use_mixed_value)  # fmt: skip
    search = GumbelReference(model, num_simulations, max_depth, two_player, gumbel, max_num_considered_actions, sigma)
    logits = masked(root_logits, legal)
    root = search.run(search.new_node(logits, list(legal), root_value, root_state, depth=0))
    cq = completed_qvalues(root, **sigma)
    most = max(root.child_visits(a) for a, ok in enumerate(legal) if ok)
    candidates = {
        a: max(LOW_LOGIT, gumbel[a] + logits[a] + cq[a]) for a, ok in enumerate(legal) if ok and root.child_visits(a) == most
    }
    weights = softmax([logits[a] + cq[a] if ok else MASKED_LOGIT for a, ok in enumerate(legal)])
    return ReferenceResult(argmax(candidates), weights, root.value, root, search.num_nodes, (math.inf, -math.inf))


# ---------------------------------------------------------------- adapters and test models


def batched(model: Model, num_actions: int):
    """Turn a per-state model into the core's batched ``recurrent_fn`` over a list of states.

    Rows whose step has no legal mask count as all legal (as the reference does).
    """
    from gym_planning.search import RecurrentOutput

    def recurrent_fn(states: list, action: np.ndarray):
        steps = [model(state, int(a)) for state, a in zip(states, action)]
        legal = None
        if any(step.legal is not None for step in steps):
            all_legal = [True] * num_actions
            rows = [all_legal if step.legal is None else step.legal for step in steps]
            legal = np.array(rows, dtype=bool).reshape(len(steps), num_actions)
        output = RecurrentOutput(
            reward=np.array([step.reward for step in steps], dtype=np.float64),
            discount=np.array([step.discount for step in steps], dtype=np.float64),
            prior_logits=np.array([step.prior_logits for step in steps], dtype=np.float64).reshape(len(steps), num_actions),
            value=np.array([step.value for step in steps], dtype=np.float64),
            legal_mask=legal,
        )
        return output, [step.state for step in steps]

    return recurrent_fn


class RandomModel:
    """A deterministic random model: every output is a function of ``(seed, path)``, where the
    state is the path of actions from the root. Used to generate arbitrary search problems.

    :param seed: model identity.
    :param num_actions: ``A``.
    :param terminal_prob: probability that a step has discount exactly 0.
    :param logit_scale: standard deviation of the prior logits.
    :param legal_prob: probability that an action is legal at interior states (None: no mask).
    """

    def __init__(self, seed: int, num_actions: int, terminal_prob: float, logit_scale: float, legal_prob: float | None):
        self.seed, self.num_actions = seed, num_actions
        self.terminal_prob, self.logit_scale, self.legal_prob = terminal_prob, logit_scale, legal_prob
        self._cache: dict[tuple[int, ...], Step] = {}

    def evaluate(self, path: tuple[int, ...]) -> Step:
        """Outputs at the state reached by ``path`` (the reward/discount are those of its last step)."""
        if path not in self._cache:
            # len(path) first, so that paths differing only by trailing zeros get different streams.
            rng = np.random.default_rng([self.seed, len(path), *path])
            discount = 0.0 if rng.random() < self.terminal_prob else float(rng.uniform(0.0, 1.0))
            legal = None
            if self.legal_prob is not None:
                mask = rng.random(self.num_actions) < self.legal_prob
                mask[rng.integers(self.num_actions)] = True
                legal = mask.tolist()
            self._cache[path] = Step(
                reward=float(rng.normal()),
                discount=discount,
                prior_logits=(self.logit_scale * rng.normal(size=self.num_actions)).tolist(),
                value=float(rng.normal()),
                legal=legal,
                state=path,
            )
        return self._cache[path]

    def __call__(self, state: tuple[int, ...], action: int) -> Step:
        return self.evaluate(state + (action,))


# ---------------------------------------------------------------- a hash model, in Python and in Numba

MASK64 = (1 << 64) - 1
STATE_BITS = (1 << 62) - 1  # states stay non-negative int64 so they fit an int64 embedding array
_M1, _M2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def mix64(x: int) -> int:
    """SplitMix64's finaliser on Python ints (a bijection of 64-bit words)."""
    x = ((x ^ (x >> 30)) * _M1) & MASK64
    x = ((x ^ (x >> 27)) * _M2) & MASK64
    return x ^ (x >> 31)


def uniform01(state: int, k: int) -> float:
    """The ``k``-th uniform draw in [0, 1) of ``state``: 53 random bits, exact in float64."""
    return (mix64((state + k) & MASK64) >> 11) * 2.0**-53


class HashModel:
    """A deterministic random model whose state is a 62-bit hash of the action path, so that it can
    also run compiled (:func:`hash_model_step`) with the state as a ``[B, 1]`` int64 embedding.
    Outputs use only uniform draws and exact arithmetic, so both versions agree bit for bit.

    ``params = [terminal_prob, logit_scale, legal_prob]``; ``legal_prob < 0`` gives no mask.
    """

    def __init__(self, params: np.ndarray, num_actions: int):
        self.terminal_prob, self.logit_scale, self.legal_prob = (float(p) for p in params)
        self.num_actions = num_actions

    @staticmethod
    def root_state(seed: int) -> int:
        return mix64(seed) & STATE_BITS

    def __call__(self, state: int, action: int) -> Step:
        new = mix64(state ^ (action + 1)) & STATE_BITS
        draw = [uniform01(new, k) for k in range(4 + 2 * self.num_actions)]
        discount = 0.0 if draw[1] < self.terminal_prob else draw[2]
        legal = None
        if self.legal_prob >= 0:
            legal = [draw[4 + self.num_actions + a] < self.legal_prob for a in range(self.num_actions)]
            legal[new % self.num_actions] = True
        logits = [self.logit_scale * (2.0 * draw[4 + a] - 1.0) for a in range(self.num_actions)]
        return Step(2.0 * draw[0] - 1.0, discount, logits, 2.0 * draw[3] - 1.0, legal, new)


_U64_M1, _U64_M2, _U64_STATE_BITS = np.uint64(_M1), np.uint64(_M2), np.uint64(STATE_BITS)


@njit(cache=True)
def _mix64_compiled(x):
    x = (x ^ (x >> np.uint64(30))) * _U64_M1
    x = (x ^ (x >> np.uint64(27))) * _U64_M2
    return x ^ (x >> np.uint64(31))


@njit(cache=True)
def _uniform01_compiled(state, k):
    return np.float64(_mix64_compiled(state + np.uint64(k)) >> np.uint64(11)) * 2.0**-53


@njit(cache=True)
def hash_model_step(params, embedding, action, reward, discount, prior_logits, value, legal_mask, new_embedding):
    """The Numba twin of :class:`HashModel`, with the ``JitRecurrentFn`` signature."""
    terminal_prob, logit_scale, legal_prob = params[0], params[1], params[2]
    num_actions = prior_logits.shape[1]
    for b in range(action.shape[0]):
        new = _mix64_compiled(np.uint64(embedding[b, 0]) ^ np.uint64(action[b] + 1)) & _U64_STATE_BITS
        reward[b] = 2.0 * _uniform01_compiled(new, 0) - 1.0
        discount[b] = 0.0 if _uniform01_compiled(new, 1) < terminal_prob else _uniform01_compiled(new, 2)
        value[b] = 2.0 * _uniform01_compiled(new, 3) - 1.0
        for a in range(num_actions):
            prior_logits[b, a] = logit_scale * (2.0 * _uniform01_compiled(new, 4 + a) - 1.0)
            if legal_prob >= 0:
                legal_mask[b, a] = _uniform01_compiled(new, 4 + num_actions + a) < legal_prob
        if legal_prob >= 0:
            legal_mask[b, np.int64(new % np.uint64(num_actions))] = True
        new_embedding[b, 0] = np.int64(new)
