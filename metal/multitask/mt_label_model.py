"""The label model over the feasible label vectors of a task graph.

Label conventions: task ``s`` has classes ``1..K_s``; label matrices hold ``0``
for abstain. A multi-task label matrix is a list of ``t`` per-task matrices
``L_s [n, m]``: source ``j`` votes ``L_s[i, j]`` on task ``s`` for item ``i``.

The model is ``LabelModel`` run over the ``k`` feasible label vectors ``y`` of
the task graph (``k = task_graph.k``; vector index ``yi`` in ``0..k-1`` follows
``task_graph.feasible_set()``): source ``j``'s vote on item ``i`` is the set of
feasible vectors that agree with every task it voted on. Its indicator column
``j*k + yi`` is on iff, for every task ``s``, ``L_s[i, j]`` is 0 or equals
``y[s]``, and the source voted on at least one task. ``mu``, ``p`` and
``get_conditional_probs`` live in that flat space (``p[yi] = P(Y = y)``);
``predict_proba`` marginalises the posterior over vectors to each task.
"""

import itertools
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.sparse as sparse
from torch.utils.data import DataLoader

from metal._checks import (
    FloatArrayLike,
    LabelMatrix,
    LabelMatrixLike,
    LabelVectorLike,
    check_label_matrix,
    check_task_list,
    iter_dense_chunks,
)
from metal.label_model.label_model import _CHUNK_ROWS, LabelModel
from metal.multitask.mt_classifier import (
    MTClassifier,
    TaskArrays,
    resolve_task_graph,
    task_graph_spec,
)
from metal.multitask.task_graph import TaskGraph
from metal.multitask.utils import (
    check_feasible,
    feasible_array,
    stack_task_labels,
    to_feasible_index,
)
from metal.utils import merge_config

__all__ = ["MTLabelModel"]

# Largest lookup table (joint vote codes x feasible vectors) built for the
# indicator construction; beyond it indicators are built by comparisons.
_MAX_LOOKUP_ENTRIES = 1 << 22


class MTLabelModel(MTClassifier, LabelModel):
    """A label model for several related tasks.

    Args:
        K: the cardinalities, one per task (used when ``task_graph`` is not
            given: a plain ``TaskGraph(K)`` whose feasible set is every label
            combination).
        task_graph: a ``TaskGraph`` or ``TaskHierarchy`` giving the tasks and
            their feasible label vectors.
        **kwargs: config overrides (see ``lm_default_config``), flat or nested;
            an unknown key is dropped with a ``UserWarning``.

    Attributes (beyond ``LabelModel``'s): ``task_graph``, ``K``, ``t``, ``k``
    (number of feasible vectors).

    Training: ``train_model(L_train, Y_dev=None, deps=[], class_balance=None,
    log_writer=None, **kwargs)`` with ``L_train`` a list of ``t`` label matrices
    ``[n, m]``; ``class_balance`` has length ``k`` (over the feasible vectors);
    ``Y_dev`` is a list of ``t`` gold label vectors. With ``deps`` the inverse
    form fits ``mu``; the posterior treats the sources as independent given the
    label vector.

    Raises:
        ValueError: for bad config values, no ``K`` and no ``task_graph``, a
            graph with fewer than two feasible vectors, and (in training and
            prediction) ``L`` with a task count other than the graph's, per-task
            matrices of different shapes, values outside ``0..K_s``, or ``Y_dev``
            rows that are not feasible label vectors (naming the task).
    """

    def __init__(
        self,
        K: Optional[Sequence[int]] = None,
        task_graph: Optional[TaskGraph] = None,
        **kwargs: Any,
    ) -> None:
        config = merge_config(self._config_defaults, kwargs, type(self).__name__)
        task_graph = resolve_task_graph(K, task_graph)
        MTClassifier.__init__(self, K=task_graph.K, config=config)
        self.task_graph = task_graph
        self.K = list(task_graph.K)
        self.t = task_graph.t
        self.k = task_graph.k
        if self.k < 2:
            raise ValueError(
                f"The task graph {task_graph!r} has only {self.k} feasible label "
                "vector(s); a label model needs at least two."
            )
        self._record_init_kwargs(task_graph_spec=task_graph_spec(task_graph), **kwargs)
        self.is_trained = False
        self._log_writer = None
        self._build_indicator_tables()

    def _build_indicator_tables(self) -> None:
        """Precompute the feasible set, per-task marginalisation maps and (when
        small enough) the lookup table from joint vote codes to indicators."""
        F = feasible_array(self.task_graph)
        self._feasible = F
        # _marginals[s][yi, v-1] = 1 iff feasible vector yi has label v on task s.
        self._marginals = []
        for s, K_s in enumerate(self.K):
            M = np.zeros((self.k, K_s))
            M[np.arange(self.k), F[:, s] - 1] = 1.0
            self._marginals.append(M)
        # Joint vote code of (v_0, ..., v_{t-1}), v_s in 0..K_s: sum_s v_s*radix_s.
        self._radix = np.cumprod([1] + [K_s + 1 for K_s in self.K[:-1]]).astype(
            np.int64
        )
        n_codes = int(np.prod([K_s + 1 for K_s in self.K]))
        if n_codes * self.k > _MAX_LOOKUP_ENTRIES:
            self._lookup = None
            return
        votes = np.array(
            list(itertools.product(*(range(K_s + 1) for K_s in reversed(self.K)))),
            dtype=np.int64,
        )[:, ::-1]
        # Row r of votes is the vote combination whose code is r (task 0 fastest).
        agree = (votes[:, None, :] == 0) | (votes[:, None, :] == F[None, :, :])
        table = agree.all(axis=2) & (votes != 0).any(axis=1)[:, None]
        self._lookup = np.ascontiguousarray(table, dtype=np.float32)

    # ============================================================ validation
    def _check_L(self, L: Sequence[LabelMatrixLike]) -> List[LabelMatrix]:
        """Validate ``L``: a list of ``t`` label matrices of one shape ``[n, m]``
        with task ``s``'s values in ``0..K_s``; return their compact forms."""
        if not isinstance(L, (list, tuple)):
            raise ValueError(
                f"L must be a list of t={self.t} label matrices, one [n, m] matrix "
                f"per task; found {type(L).__name__}."
            )
        if len(L) != self.t:
            raise ValueError(
                f"L has {len(L)} label matrices but the task graph has t={self.t} "
                "tasks; pass one [n, m] matrix per task."
            )
        checked = [
            check_label_matrix(L_s, name=f"L[{s}] (task {s})", k=K_s)
            for s, (L_s, K_s) in enumerate(zip(L, self.K))
        ]
        n, m = checked[0].shape
        for s, L_s in enumerate(checked):
            if L_s.shape[0] != n:
                raise ValueError(
                    f"L[{s}] (task {s}) has {L_s.shape[0]} rows but L[0] has {n}; "
                    "every task's label matrix must cover the same n items."
                )
            if L_s.shape[1] != m:
                raise ValueError(
                    f"L[{s}] (task {s}) has {L_s.shape[1]} sources (columns) but "
                    f"L[0] has {m}; every task's label matrix must have the same m "
                    "sources."
                )
        return checked

    def _set_constants(self, L: Sequence[LabelMatrix]) -> None:
        self.n, self.m = L[0].shape
        self.t = len(L)

    def _n_sources(self, L: Sequence[LabelMatrix]) -> int:
        return L[0].shape[1]

    def _n_rows(self, L: Sequence[LabelMatrix]) -> int:
        return L[0].shape[0]

    def _iter_L_chunks(self, L: Sequence[LabelMatrix]) -> Iterator[List[np.ndarray]]:
        """Consecutive row blocks: lists of ``t`` dense ``[rows, m]`` arrays."""
        for chunk in zip(*(iter_dense_chunks(L_s, _CHUNK_ROWS) for L_s in L)):
            yield list(chunk)

    def _set_class_balance(
        self,
        class_balance: Optional[FloatArrayLike],
        Y_dev: Optional[Sequence[LabelVectorLike]],
    ) -> None:
        """Class balance over the ``k`` feasible vectors: ``class_balance``,
        else the frequencies of ``Y_dev``'s label vectors, else uniform. Items
        of ``Y_dev`` with a 0 (no gold label) on any task are left out."""
        if class_balance is None and Y_dev is not None:
            labels = stack_task_labels(Y_dev, "Y_dev", self.K, allow_abstain=True)
            labels = labels[(labels > 0).all(axis=1)]
            if labels.shape[0] == 0:
                raise ValueError(
                    "Y_dev must contain at least one item with a gold label on "
                    "every task (0 = no label); found none."
                )
            index = to_feasible_index(labels, self.task_graph, name="Y_dev")
            counts = np.bincount(index, minlength=self.k)
            class_balance = counts / counts.sum()
        LabelModel._set_class_balance(self, class_balance, None)

    # ================================================== augmented label matrix
    def _create_L_ind(self, L: Sequence[LabelMatrix]) -> np.ndarray:
        """Indicators over feasible vectors: float32 ``[n, m*k]``.

        ``L`` is a list of ``t`` label matrices ``[n, m]``. Column ``j*k + yi`` is
        1 iff source ``j`` voted on at least one task and, on every task ``s``,
        voted 0 (abstain) or ``F[yi, s]`` (``F`` the feasible vectors).
        """
        votes = [
            L_s.toarray() if sparse.issparse(L_s) else np.asarray(L_s) for L_s in L
        ]
        n, m = votes[0].shape
        if self._lookup is not None:
            code = votes[0].astype(np.intp)
            for s in range(1, self.t):
                code += votes[s].astype(np.intp) * int(self._radix[s])
            return self._lookup[code].reshape(n, m * self.k)
        voted = np.zeros((n, m), dtype=bool)
        for v in votes:
            voted |= v != 0
        out = np.empty((n, m, self.k), dtype=np.float32)
        for yi, vector in enumerate(self._feasible):
            ok = voted.copy()
            for s, v in enumerate(votes):
                ok &= (v == 0) | (v == vector[s])
            out[:, :, yi] = ok
        return out.reshape(n, m * self.k)

    def _get_augmented_label_matrix(
        self, L: Sequence[LabelMatrix], higher_order: bool = False
    ) -> np.ndarray:
        """The indicator matrix ``[n, m*k]`` of ``L`` (a list of ``t`` matrices).
        Higher-order clique columns are not built for multi-task models."""
        self._build_c_data()
        return self._create_L_ind(L)

    def _higher_order_blocks(self) -> list:
        # The posterior over feasible vectors uses the unary factors only.
        return []

    # ============================================================= prediction
    def predict_proba(self, L: Sequence[LabelMatrixLike]) -> List[np.ndarray]:
        """Per-task posteriors: a list of ``t`` float64 arrays ``[n, K_s]``.

        ``LabelModel.predict_proba`` gives ``P(Y = y | votes)`` over the feasible
        vectors ``[n, k]``; task ``s``'s column ``v-1`` sums it over the vectors
        with ``y[s] = v``.
        """
        probs = LabelModel.predict_proba(self, L)
        return [probs @ M for M in self._marginals]

    def predict_feasible_proba(self, L: Sequence[LabelMatrixLike]) -> np.ndarray:
        """``P(Y = y | votes)`` over the feasible vectors: float64 ``[n, k]``
        (column ``yi`` follows ``task_graph.feasible_set()``)."""
        return LabelModel.predict_proba(self, L)

    def _get_predictions(
        self,
        data: Any,
        break_ties: Union[str, int] = "random",
        return_probs: bool = False,
        **kwargs: Any,
    ) -> Union[
        Tuple[TaskArrays, TaskArrays], Tuple[TaskArrays, TaskArrays, TaskArrays]
    ]:
        """As ``MTClassifier._get_predictions``; gold label vectors given as
        ``(L, Y)`` must be feasible (0 = no gold label matches any value)."""
        if isinstance(data, (tuple, list)) and not isinstance(data, DataLoader):
            if len(data) == 2:
                Y = check_task_list(data[1], "Y", t=self.t)
                gold = [self._gold_vector(Y_s) for Y_s in Y]
                labels = stack_task_labels(gold, "Y", self.K, allow_abstain=True)
                check_feasible(labels, self.task_graph, name="Y")
        return MTClassifier._get_predictions(
            self, data, break_ties=break_ties, return_probs=return_probs, **kwargs
        )
