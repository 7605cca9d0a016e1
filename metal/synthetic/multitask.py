"""A synthetic multi-task data generator over the feasible label vectors of a
task hierarchy (importable from ``metal.synthetic.generate`` too).

Label conventions: task ``s`` has classes ``1..K_s``; ``0`` means abstain.
"""

from typing import Sequence, Tuple

import numpy as np
from scipy.sparse import csr_matrix

from metal.multitask.task_graph import TaskHierarchy
from metal.synthetic.generate import SingleTaskTreeDepsGenerator

__all__ = ["HierarchicalMultiTaskTreeDepsGenerator"]


class HierarchicalMultiTaskTreeDepsGenerator(SingleTaskTreeDepsGenerator):
    """Multi-task version over the feasible label vectors of a task hierarchy.

    The single-task model is run with ``k = len(feasible set)`` (uniform class
    balance over the feasible vectors); flat labels are then mapped to per-task
    labels. ``c_probs``, ``p`` and ``k`` stay in the flat space.

    Attributes (beyond the single-task ones): task_graph (a ``TaskHierarchy``);
    L: list of t CSR float matrices ``[n, m]`` where task s's entry is
    ``fs[L_flat - 1][s]`` for votes and 0 for abstains; Y: list of t int64
    arrays ``[n]``.
    """

    def __init__(
        self,
        n: int,
        m: int,
        theta_range: Tuple[float, float] = (0, 1.5),
        edge_prob: float = 0.0,
        theta_edge_range: Tuple[float, float] = (-1, 1),
        cardinalities: Sequence[int] = [2, 3, 3],
        edges: Sequence[Tuple[int, int]] = [(0, 1), (0, 2)],
    ):
        self.task_graph = TaskHierarchy(cardinalities, edges)
        fs = np.array(list(self.task_graph.feasible_set()), dtype=np.int64)
        super().__init__(
            n,
            m,
            k=len(fs),
            theta_range=theta_range,
            edge_prob=edge_prob,
            theta_edge_range=theta_edge_range,
        )
        flat_L = self.L.toarray()
        flat_Y = self.Y
        self.L = []
        self.Y = []
        for s in range(self.task_graph.t):
            # Index 0 (abstain) maps to 0; flat label v maps to fs[v - 1][s].
            lookup = np.concatenate([[0], fs[:, s]])
            self.L.append(csr_matrix(lookup[flat_L], dtype=float))
            self.Y.append(lookup[flat_Y])
