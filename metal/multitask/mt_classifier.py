"""The base class of multi-task models: per-task prediction and scoring.

Label conventions: ``t`` tasks with cardinalities ``K = [K_0, ..., K_{t-1}]``.
``predict_proba`` returns a list of ``t`` float arrays ``[n, K_s]`` (column ``c``
is ``P(Y_s = c + 1)``); ``predict`` a list of ``t`` int64 arrays ``[n]`` in
``1..K_s``. Gold labels are a list of ``t`` vectors; 0 means "no gold label" and
is ignored by scoring.
"""

from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from metal._checks import LabelVectorLike, check_choice, check_int, check_task_list
from metal._data import hard_labels
from metal._io import find_class
from metal.classifier import Classifier
from metal.metrics import METRICS, metric_score
from metal.multitask.task_graph import TaskGraph
from metal.multitask.utils import MultiXYDataset, MultiYDataset

__all__ = ["MTClassifier"]

# One array per task (predictions, probabilities or gold labels).
TaskArrays = List[np.ndarray]


class MTClassifier(Classifier):
    """Abstract multi-task classifier: subclasses implement ``predict_proba``
    (returning one ``[n, K_s]`` array per task) and ``train_model``.

    Args:
        K: the cardinalities, one per task.
        config: the model's complete nested config dict.
    """

    def __init__(self, K: Optional[Sequence[int]], config: dict) -> None:
        Classifier.__init__(self, None, config)
        self.multitask = True
        self.K = K

    # -------------------------------------------------------------- prediction
    def predict_proba(self, X: Any, **kwargs: Any) -> List[np.ndarray]:
        """A list of ``t`` arrays ``[n, K_s]`` of per-task class probabilities."""
        raise NotImplementedError

    def _resolve(
        self, Y_s: Any, break_ties: Union[str, int]
    ) -> Tuple[TaskArrays, TaskArrays]:
        """Per-task labels ``[n]`` (ties broken within each task) and the list
        of probabilities ``predict_proba`` returned."""
        if not isinstance(Y_s, list) or not Y_s or not isinstance(Y_s[0], np.ndarray):
            raise ValueError(
                "predict_proba of a multi-task model must return a list of NumPy "
                f"arrays (one per task); it returned {type(Y_s).__name__}."
            )
        Y_p = [self._break_ties(Y_ts, break_ties).astype(np.int64) for Y_ts in Y_s]
        return Y_p, Y_s

    def predict_task(
        self,
        X: Any,
        t: int = 0,
        break_ties: Union[str, int] = "random",
        **kwargs: Any,
    ) -> np.ndarray:
        """Hard labels ``[n]`` (int64, in ``1..K_t``) for task ``t``."""
        Y_tp = self.predict_task_proba(X, t=t, **kwargs)
        return self._break_ties(Y_tp, break_ties).astype(np.int64)

    def predict_task_proba(self, X: Any, t: int = 0, **kwargs: Any) -> np.ndarray:
        """Probabilities ``[n, K_t]`` for task ``t``."""
        probs = self.predict_proba(X, **kwargs)
        return probs[self._check_task_index(t, len(probs), "t")]

    # ----------------------------------------------------------------- scoring
    def score(
        self,
        data: Any,
        metric: Union[str, Sequence[str]] = "accuracy",
        validation_task: Optional[int] = None,
        reduce: Optional[str] = "mean",
        break_ties: Union[str, int] = "random",
        verbose: bool = True,
        print_confusion_matrix: bool = False,
        **kwargs: Any,
    ) -> Union[float, List[float]]:
        """Score per-task predictions on labelled data.

        Args:
            data: ``(X, Y)`` with ``Y`` a list of ``t`` gold label vectors (0 =
                no gold label, ignored), a Dataset or a DataLoader yielding
                ``(X, [Y_0, ..., Y_{t-1}])`` batches.
            metric: one metric name from ``metal.metrics.METRICS`` (a list with
                more than one name raises ``NotImplementedError``).
            validation_task: score only this task (returns a float).
            reduce: ``"mean"`` (the mean over tasks) or ``None`` (a list of ``t``
                per-task scores).
            break_ties: tie policy for ``predict``.
            verbose: print the per-task scores.
            print_confusion_matrix: accepted for compatibility; ignored.

        Returns:
            a float (``reduce="mean"`` or ``validation_task`` given) or a list of
            ``t`` floats (``reduce=None``).
        """
        if isinstance(metric, (list, tuple)):
            if len(metric) != 1:
                raise NotImplementedError(
                    "Multi-task score takes one metric at a time; found "
                    f"{list(metric)}."
                )
            metric = metric[0]
        if metric not in METRICS:
            raise ValueError(
                f"Unknown metric {metric!r}; choose from {sorted(METRICS)}."
            )
        check_choice(reduce, (None, "mean"), "reduce")
        Y_p, Y, Y_s = self._get_predictions(
            data, break_ties=break_ties, return_probs=True, **kwargs
        )
        if validation_task is not None:
            s = self._check_task_index(validation_task, len(Y_p), "validation_task")
            value = self._score_one(Y[s], Y_p[s], Y_s[s], metric)
            if verbose:
                print(f"[t={s}] {metric.capitalize()}: {value:.3f}")
            return value
        scores = [
            self._score_one(Y[s], Y_p[s], Y_s[s], metric) for s in range(len(Y_p))
        ]
        if verbose:
            for s, value in enumerate(scores):
                print(f"[t={s}] {metric.capitalize()}: {value:.3f}")
        if reduce is None:
            return scores
        mean = float(np.mean(scores))
        if verbose:
            print(f"Mean {metric.capitalize()}: {mean:.3f}")
        return mean

    def score_task(
        self,
        X: Any,
        Y: Sequence[LabelVectorLike],
        t: int = 0,
        metric: str = "accuracy",
        verbose: bool = True,
        **kwargs: Any,
    ) -> float:
        """Score task ``t`` on inputs ``X`` against ``Y[t]``.

        Args:
            X: the items (whatever ``predict_proba`` accepts).
            Y: the list of ``t`` per-task gold label vectors (0 = no gold label).
            t: the task to score.
            metric: a metric name from ``metal.metrics.METRICS``.
            verbose: print the score.
            **kwargs: ``break_ties`` (for the prediction) and keyword arguments
                of the metric.
        """
        Y = [self._gold_vector(Y_s) for Y_s in check_task_list(Y, "Y")]
        t = self._check_task_index(t, len(Y), "t")
        break_ties = kwargs.pop("break_ties", "random")
        probs = self.predict_task_proba(X, t=t)
        preds = self._break_ties(probs, break_ties).astype(np.int64)
        if len(Y[t]) != len(preds):
            raise ValueError(
                f"Y[{t}] (task {t}) has {len(Y[t])} labels but X has {len(preds)} "
                "items."
            )
        value = float(
            metric_score(Y[t], preds, metric, ignore_in_gold=[0], probs=probs, **kwargs)
        )
        if verbose:
            print(f"[t={t}] {metric.capitalize()}: {value:.3f}")
        return value

    @staticmethod
    def _score_one(
        gold: np.ndarray, pred: np.ndarray, probs: Optional[np.ndarray], metric: str
    ) -> float:
        return float(metric_score(gold, pred, metric, probs=probs, ignore_in_gold=[0]))

    @staticmethod
    def _check_task_index(t: Any, n_tasks: int, name: str) -> int:
        return check_int(
            t,
            name,
            minimum=0,
            maximum=n_tasks - 1,
            expected=f"a task index in 0..{n_tasks - 1}",
        )

    def _gold_labels(self, Y: Sequence[LabelVectorLike]) -> List[np.ndarray]:
        """Per-task gold labels: a list of 1-D arrays (see ``_gold_vector``)."""
        return [self._gold_vector(Y_s) for Y_s in check_task_list(Y, "Y")]

    @staticmethod
    def _check_gold_lengths(Y: Sequence[np.ndarray], Y_p: Sequence[np.ndarray]) -> None:
        if len(Y) != len(Y_p):
            raise ValueError(
                f"Y must have one gold label vector per task (t={len(Y_p)}); found "
                f"{len(Y)}."
            )
        for s, (Y_t, Y_pt) in enumerate(zip(Y, Y_p)):
            if len(Y_t) != len(Y_pt):
                raise ValueError(
                    f"Y[{s}] (task {s}) has {len(Y_t)} labels but X has "
                    f"{len(Y_pt)} items."
                )

    @classmethod
    def _gold_vector(cls, Y_s: LabelVectorLike) -> np.ndarray:
        """One task's gold labels as a 1-D array (soft rows become argmax + 1)."""
        return hard_labels(Classifier._to_numpy(Y_s)).reshape(-1)

    # -------------------------------------------------------------------- data
    def _create_dataset(self, *data: Any) -> Union[MultiXYDataset, MultiYDataset]:
        """``MultiXYDataset`` when ``X`` is a list of per-task inputs, else
        ``MultiYDataset``."""
        X, Y = data
        if isinstance(X, list):
            return MultiXYDataset(X, Y)
        return MultiYDataset(X, Y)

    @staticmethod
    def _to_torch(
        Z: Any, dtype: Optional[torch.dtype] = None
    ) -> Union[Optional[torch.Tensor], List[Optional[torch.Tensor]]]:
        """A tensor, or a list of tensors for a list (one per task)."""
        if isinstance(Z, list):
            return [Classifier._to_torch(z, dtype=dtype) for z in Z]
        return Classifier._to_torch(Z, dtype=dtype)

    @staticmethod
    def _to_numpy(Z: Any) -> Union[Optional[np.ndarray], List[Optional[np.ndarray]]]:
        """A NumPy array, or a list of arrays for a list (one per task)."""
        if isinstance(Z, list):
            return [Classifier._to_numpy(z) for z in Z]
        return Classifier._to_numpy(Z)

    @staticmethod
    def _stack_batches(X: Sequence[Any]) -> Union[np.ndarray, List[np.ndarray]]:
        """Per-batch lists over tasks -> a list over tasks of stacked arrays."""
        if len(X) == 0:
            return []
        if isinstance(X[0], (list, tuple)):
            return [
                Classifier._stack_batches([batch[s] for batch in X])
                for s in range(len(X[0]))
            ]
        return Classifier._stack_batches(X)

    # ------------------------------------------------------------- persistence
    @classmethod
    def _rebuild(cls, init_kwargs: dict, config: dict) -> "MTClassifier":
        kwargs = dict(init_kwargs)
        spec = kwargs.pop("task_graph_spec", None)
        if spec is not None:
            kwargs["task_graph"] = task_graph_from_spec(spec)
        return super()._rebuild(kwargs, config)


def task_graph_spec(task_graph: TaskGraph) -> dict:
    """Plain data from which ``task_graph_from_spec`` rebuilds ``task_graph``."""
    cls = type(task_graph)
    return {
        "class": f"{cls.__module__}:{cls.__qualname__}",
        "cardinalities": list(task_graph.K),
        "edges": [list(edge) for edge in task_graph.edges],
    }


def task_graph_from_spec(spec: dict) -> TaskGraph:
    """Rebuild a task graph saved by ``task_graph_spec``."""
    cls = find_class(spec["class"], TaskGraph, "Task graph class")
    return cls(spec["cardinalities"], [tuple(edge) for edge in spec["edges"]])


def resolve_task_graph(
    K: Optional[Sequence[int]], task_graph: Optional[TaskGraph]
) -> TaskGraph:
    """``task_graph``, or ``TaskGraph(K)``; ``ValueError`` if neither is given or
    ``K`` disagrees with the graph's cardinalities."""
    if task_graph is None:
        if K is None or len(K) == 0:
            raise ValueError(
                "Give the task structure: K (a list of cardinalities, one per task) "
                "or task_graph (a TaskGraph)."
            )
        return TaskGraph(K)
    if not isinstance(task_graph, TaskGraph):
        raise ValueError(
            f"task_graph must be a TaskGraph; found {type(task_graph).__name__}."
        )
    if K is not None and len(K) > 0 and list(K) != list(task_graph.K):
        raise ValueError(
            f"K={list(K)} disagrees with the task graph's cardinalities "
            f"{task_graph.K}; pass one of them."
        )
    return task_graph
