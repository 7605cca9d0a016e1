"""Structure over the tasks of a multi-task problem.

A task with cardinality ``K_s`` has classes ``1..K_s``; a multi-task label is a
vector ``y`` of length ``t`` with ``y[s]`` in ``1..K_s``. The value ``0`` is never
part of a feasible label vector (it means abstain in label matrices).
"""

import itertools
from typing import Any, Dict, Iterable, Iterator, List, Sequence, Tuple

import networkx as nx
import numpy as np

from metal._checks import check_int, check_pairs, check_positive_int

__all__ = ["TaskGraph", "TaskHierarchy"]


def _check_cardinalities(cardinalities: Iterable[int]) -> List[int]:
    try:
        values = list(cardinalities)
    except TypeError:
        raise ValueError(
            "cardinalities must be a sequence of positive ints (one per task); "
            f"found {cardinalities!r}."
        ) from None
    if not values:
        raise ValueError("cardinalities must name at least one task; found [].")
    return [
        check_positive_int(value, f"cardinalities[{s}] (task {s})")
        for s, value in enumerate(values)
    ]


class TaskGraph:
    """A directed graph over tasks ``0..t-1``; an edge ``(a, b)`` makes ``a`` the
    parent of ``b``. Plain task graphs impose no constraint between tasks, so every
    label vector in ``{1..K_0} x ... x {1..K_{t-1}}`` is feasible.

    Args:
        cardinalities: ``K``, one positive int per task (default: one binary task).
        edges: ``(parent, child)`` pairs of task indices.

    Attributes:
        K: the cardinalities (list of ints); t: number of tasks; edges: list of
        ``(parent, child)`` tuples; G: ``networkx.DiGraph`` over all tasks;
        leaf_nodes: tasks without children (node order); parents / children:
        ``{task: sorted list}``; k: number of feasible label vectors.
    """

    def __init__(
        self,
        cardinalities: Sequence[int] = [2],
        edges: Sequence[Tuple[int, int]] = [],
    ) -> None:
        self.K = _check_cardinalities(cardinalities)
        self.t = len(self.K)
        self.edges = check_pairs(
            edges, "edges", self.t, item="task", pair="(parent, child)", n_name="t"
        )

        self.G = nx.DiGraph()
        self.G.add_nodes_from(range(self.t))
        self.G.add_edges_from(self.edges)
        self._check_structure()

        self.leaf_nodes = [
            node for node in self.G.nodes() if self.G.out_degree(node) == 0
        ]
        self.parents: Dict[int, List[int]] = {
            node: sorted(self.G.predecessors(node)) for node in self.G.nodes()
        }
        self.children: Dict[int, List[int]] = {
            node: sorted(self.G.successors(node)) for node in self.G.nodes()
        }
        self.k = self._count_feasible()

    def _check_structure(self) -> None:
        """Hook for subclasses that constrain the graph's shape."""

    def _count_feasible(self) -> int:
        return int(np.prod(self.K))

    def _check_node(self, node: int) -> int:
        return check_int(
            node,
            "node",
            minimum=0,
            maximum=self.t - 1,
            expected=f"a task index in 0..{self.t - 1}",
        )

    def get_parent(self, node: int) -> List[int]:
        """Sorted list of the parents of task ``node``."""
        return list(self.parents[self._check_node(node)])

    def get_children(self, node: int) -> List[int]:
        """Sorted list of the children of task ``node``."""
        return list(self.children[self._check_node(node)])

    def is_feasible(self, y: Sequence[int]) -> bool:
        """Every label vector is feasible in a plain task graph."""
        return True

    def feasible_set(self) -> Iterator[np.ndarray]:
        """Yield every label vector (int arrays of length t; last task fastest)."""
        for values in itertools.product(*(range(1, K_s + 1) for K_s in self.K)):
            yield np.array(values, dtype=np.int64)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TaskGraph):
            return NotImplemented
        return self.edges == other.edges and self.K == other.K

    __hash__ = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(cardinalities={self.K}, edges={self.edges})"


class TaskHierarchy(TaskGraph):
    """A tree of mutually exclusive tasks rooted at task 0.

    Each non-root task's last value ``K_s`` means "not applicable"; a child task
    applies only when its parent's label selects it: the parent's value is
    ``1 + (position of the child among the parent's children, in edge order)``.
    For ``K=[2, 3, 3]`` and edges ``(0, 1), (0, 2)`` the feasible set is
    ``[1,1,3], [1,2,3], [2,3,1], [2,3,2]``.

    Raises:
        ValueError: if the graph is not a tree with every edge pointing away from
            task 0.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)

    def _check_structure(self) -> None:
        if not nx.is_tree(self.G):
            raise ValueError(
                "TaskHierarchy needs the edges to form a tree over all "
                f"{self.t} tasks (connected, no cycles); found edges {self.edges}."
            )
        if self.t > 1 and not nx.is_arborescence(self.G):
            raise ValueError(
                "TaskHierarchy needs every task to have at most one parent; found "
                f"edges {self.edges}."
            )
        if self.G.in_degree(0) != 0:
            raise ValueError(
                "TaskHierarchy needs task 0 to be the root (no parent); found the "
                f"parent(s) {sorted(self.G.predecessors(0))} in edges {self.edges}."
            )

    def _count_feasible(self) -> int:
        return sum(1 for _ in self.feasible_set())

    def _leaf_values(self, leaf: int) -> range:
        # The root has no "not applicable" value; every other task does.
        if leaf == 0:
            return range(1, self.K[leaf] + 1)
        return range(1, self.K[leaf])

    def feasible_set(self) -> Iterator[np.ndarray]:
        """Yield the feasible label vectors: one per (leaf, applicable leaf value)."""
        for leaf in self.leaf_nodes:
            for value in self._leaf_values(leaf):
                y = np.array(self.K, dtype=np.int64)
                y[leaf] = value
                node = leaf
                while node != 0:
                    parent = next(iter(self.G.predecessors(node)))
                    position = list(self.G.successors(parent)).index(node)
                    y[parent] = position + 1
                    node = parent
                yield y

    def is_feasible(self, y: Sequence[int]) -> bool:
        """Whether the label vector ``y`` (length t) is in the feasible set."""
        y = np.asarray(y)
        return any(np.array_equal(y, feasible) for feasible in self.feasible_set())
