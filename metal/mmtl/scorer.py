"""One ``Scorer`` for both multi-task front doors.

A scorer holds metric names and custom metric functions; it has no label
convention of its own. A task scores its labels with
``score_task(golds, preds, probs, convention)``, passing its own
``metal.labels.LabelConvention``, so the same scorer gives the same answer
on the same task whichever way it was built:

* ``ONE_BASED`` tasks (MeTaL v0.5's ``ClassificationTask`` ...; classes
  ``1..k``): items whose gold label is the abstain label (0) are dropped, an
  abstaining prediction counts as wrong, and precision/recall/F-scores are
  those of class 1 against the rest;
* ``ZERO_BASED`` tasks (the Operation API's ``Task``; classes ``0..k-1``):
  rows whose gold label or prediction is the abstain label (-1) are dropped
  (except by ``coverage``), and precision/recall/F-scores/ROC-AUC are binary
  metrics.

The abstain label is ``abstain_label`` (given in the Operation API's numbers:
the default ``-1`` is ``0`` for a ``ONE_BASED`` task; None drops nothing).

Two constructor vocabularies, and the shape of the public methods follows the
one used (``vocabulary``):

* the Operation API: ``Scorer(metrics=["accuracy"], custom_metric_funcs={name:
  fn}, abstain_label=-1)`` (also ``Scorer(["accuracy"])``); ``fn(golds, preds,
  probs)`` returns a number or a dict; ``metrics`` is ``{name: f(golds, preds,
  probs)}``; ``score(golds, preds=None, probs=None)`` scores labels ``0..k-1``;
* MeTaL v0.5: ``Scorer(standard_metrics=["accuracy"], custom_metric_funcs={fn:
  ["name", ...]})``; ``fn(Y, Y_preds, probs=Y_probs)`` gets per-item lists
  and returns a dict; ``metrics`` is the list of names; ``score(Y, Y_probs,
  Y_preds, target_metrics=None)`` scores labels ``1..k``.

Metric names are those of ``metal.metrics``' registry in either spelling
(``roc-auc`` / ``roc_auc``), whichever vocabulary.
"""

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from metal._data import to_numpy
from metal.labels import ONE_BASED, ZERO_BASED, LabelConvention
from metal.metrics import get_metric, metric_inputs, metric_names

OPERATION = "operation"
V05 = "v0.5"

_OPERATION_ARGS = ("golds", "preds", "probs", "target_metrics")
_V05_ARGS = ("Y", "Y_probs", "Y_preds", "target_metrics")
_ALIASES = {"Y": "golds", "Y_probs": "probs", "Y_preds": "preds"}
_CONVENTIONS = {OPERATION: ZERO_BASED, V05: ONE_BASED}
# Per-item values: one array [n, ...], or per-item arrays of different shapes.
Items = Union[np.ndarray, List[np.ndarray]]

__all__ = ["OPERATION", "Scorer", "V05"]


class Scorer:
    """Computes a task's metrics (see the module docstring).

    Args:
        metrics: metric names (keys of ``metal.metrics``' registry).
        custom_metric_funcs: ``{name: fn}`` (Operation API) or ``{fn: [names]}``
            (v0.5).
        abstain_label: the abstain label, in the Operation API's numbers
            (``-1``; None: nothing is dropped).
        standard_metrics: v0.5's name for ``metrics``.

    Raises:
        ValueError: for an unknown metric name or a malformed custom metric.
    """

    def __init__(
        self,
        metrics: Optional[List[str]] = None,
        custom_metric_funcs: Optional[Mapping[Any, Any]] = None,
        abstain_label: Optional[int] = -1,
        standard_metrics: Optional[List[str]] = None,
    ) -> None:
        custom = dict(custom_metric_funcs or {})
        keyed_by_function = any(callable(key) for key in custom)
        self.vocabulary = (
            V05 if standard_metrics is not None or keyed_by_function else OPERATION
        )
        names = list(standard_metrics or []) + list(metrics or [])
        for name in names:
            if not isinstance(name, str) or "/" in name or name not in _KNOWN:
                raise ValueError(
                    f"Unrecognized metric: {name!r}; metrics must be simple names "
                    f"from {sorted(_KNOWN)}."
                )
        self.standard_metrics = names
        self.custom_metric_funcs = custom
        self.abstain_label = abstain_label
        self._custom = _parse_custom(custom, keyed_by_function)

    # ------------------------------------------------------------ metadata
    @property
    def metric_names(self) -> List[str]:
        """The standard metric names followed by the custom ones."""
        names = list(self.standard_metrics)
        for _, produced, _ in self._custom:
            names.extend(produced)
        return names

    @property
    def metrics(self) -> Any:
        """Operation API: ``{name: f(golds, preds, probs)}`` scoring labels
        ``0..k-1``; v0.5: the list of metric names."""
        if self.vocabulary == V05:
            return self.metric_names
        functions: Dict[str, Callable] = {
            name: _operation_metric(self, name) for name in self.standard_metrics
        }
        for func, produced, _ in self._custom:
            functions[produced[0]] = func
        return functions

    def validate_target_metrics(self, target_metrics: Optional[Sequence[str]]) -> None:
        """Every target must be a simple name this scorer computes."""
        if not target_metrics:
            return
        known = self.metric_names
        for name in target_metrics:
            if "/" in name:
                raise ValueError(
                    f"Target metrics must be simple names (no '/'); found {name!r}."
                )
            if name not in known:
                raise ValueError(
                    f"Unrecognized target metric {name!r}; this scorer computes "
                    f"{known}."
                )

    def __repr__(self) -> str:
        return f"Scorer(metrics={self.metric_names})"

    # ------------------------------------------------------------- scoring
    def score(self, *args: Any, **kwargs: Any) -> Dict[str, float]:
        """Score labels directly, in the vocabulary the scorer was built with;
        returns ``{metric: value}``.

        Operation API: ``score(golds, preds=None, probs=None)`` (golds ``[n]``
        in ``0..k-1``, preds ``[n]``, probs ``[n, k]``). v0.5:
        ``score(Y, Y_probs, Y_preds, target_metrics=None)`` (one entry per
        item, labels in ``1..k``). Keywords of either vocabulary are accepted.
        """
        names = _V05_ARGS if self.vocabulary == V05 else _OPERATION_ARGS
        if len(args) > len(names):
            raise TypeError(f"score takes at most {len(names)} positional arguments.")
        given = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in _OPERATION_ARGS and key not in _ALIASES:
                raise TypeError(f"score got an unexpected keyword argument {key!r}.")
            given[key] = value
        values = {_ALIASES.get(key, key): value for key, value in given.items()}
        return self.score_task(
            values.get("golds"),
            values.get("preds"),
            values.get("probs"),
            _CONVENTIONS[self.vocabulary],
            values.get("target_metrics"),
        )

    def score_task(
        self,
        golds: Any,
        preds: Any,
        probs: Any,
        convention: LabelConvention,
        target_metrics: Optional[Sequence[str]] = None,
    ) -> Dict[str, float]:
        """Score a task's labels in the task's ``convention``.

        Args:
            golds: gold labels, one per item (an array ``[n]``, or per-item
                arrays, e.g. token labels).
            preds: predictions in the same form (None if unavailable).
            probs: probabilities ``[n, k]`` or per-item arrays (None if
                unavailable).
            convention: the task's label convention.
            target_metrics: compute only these metrics.

        Raises:
            ValueError: for empty ``golds`` or an unknown target metric.
        """
        self.validate_target_metrics(target_metrics)
        Y = _items(golds)
        if Y is None or len(Y) == 0:
            raise ValueError("Cannot score empty labels")
        Y_preds, Y_probs = _items(preds), _items(probs)
        abstain = self._abstain(convention)
        labelled = _rows_without(Y, abstain)

        def wanted(name: str) -> bool:
            return not target_metrics or name in target_metrics

        results: Dict[str, float] = {}
        for name in self.standard_metrics:
            if wanted(name):
                results[name] = self._standard(
                    name, Y, Y_preds, Y_probs, labelled, abstain, convention
                )
        for func, produced, style in self._custom:
            if not any(wanted(name) and name not in results for name in produced):
                continue
            if style == OPERATION:
                value = func(Y, Y_preds, Y_probs)
                value = value if isinstance(value, dict) else {produced[0]: value}
            else:
                value = func(
                    _as_list(_select(Y, labelled)),
                    _as_list(_select(Y_preds, labelled)),
                    probs=_as_list(_select(Y_probs, labelled)),
                )
            results.update({k: v for k, v in value.items() if wanted(k)})
        return results

    def _abstain(self, convention: LabelConvention) -> Optional[int]:
        """The abstain label in ``convention``'s numbers."""
        if self.abstain_label is None:
            return None
        return int(self.abstain_label) + convention.first_class

    def _standard(
        self,
        name: str,
        Y: Items,
        Y_preds: Optional[Items],
        Y_probs: Optional[Items],
        labelled: np.ndarray,
        abstain: Optional[int],
        convention: LabelConvention,
    ) -> float:
        """One standard metric over the items with a gold label (and, in a
        convention that drops them, a non-abstaining prediction)."""
        keep = labelled
        if convention.drop_abstained_predictions:
            if name == "coverage":
                keep = np.ones(len(Y), dtype=bool)
            elif Y_preds is not None:
                keep = keep & _rows_without(Y_preds, abstain)
        arrays = {
            "golds": _flat_labels(_select(Y, keep)),
            "preds": None if Y_preds is None else _flat_labels(_select(Y_preds, keep)),
            "probs": None if Y_probs is None else _stacked(_select(Y_probs, keep)),
        }
        inputs = metric_inputs(name)
        return get_metric(name, convention)(**{key: arrays[key] for key in inputs})


_KNOWN = set(metric_names()) | set(metric_names(ZERO_BASED))


def _parse_custom(
    custom: Dict[Any, Any], keyed_by_function: bool
) -> List[Tuple[Callable, List[str], str]]:
    """``[(fn, names it produces, style)]`` from either form of
    ``custom_metric_funcs``."""
    parsed = []
    if keyed_by_function:
        for func, produced in custom.items():
            if not callable(func) or not isinstance(produced, list):
                raise ValueError(
                    "custom_metric_funcs must map functions f(Y, Y_preds, probs=...) "
                    f"to the list of metric names they return; found {func!r}: "
                    f"{produced!r}."
                )
            for name in produced:
                if "/" in name:
                    raise ValueError(
                        f"Custom metric names must be simple (no '/'); found {name!r}."
                    )
            parsed.append((func, list(produced), V05))
        return parsed
    for name, func in custom.items():
        if not isinstance(name, str) or not callable(func):
            raise ValueError(
                "custom_metric_funcs must map metric names to functions "
                f"f(golds, preds, probs); found {name!r}: {func!r}."
            )
        parsed.append((func, [name], OPERATION))
    return parsed


def _operation_metric(scorer: Scorer, name: str) -> Callable[..., float]:
    """The Operation API's ``scorer.metrics[name]``: ``f(golds, preds, probs)``
    over labels ``0..k-1``."""

    def score(golds=None, preds=None, probs=None) -> float:
        sub = Scorer(metrics=[name], abstain_label=scorer.abstain_label)
        return sub.score_task(golds, preds, probs, ZERO_BASED)[name]

    score.__name__ = name
    return score


def _items(values: Any) -> Optional[Items]:
    """Per-item values as one array ``[n, ...]`` when the items share a shape
    (the usual case), else a list of per-item arrays (e.g. token labels)."""
    if values is None:
        return None
    if isinstance(values, (torch.Tensor, np.ndarray)):
        return to_numpy(values)
    arrays = [
        np.asarray(to_numpy(v) if isinstance(v, torch.Tensor) else v) for v in values
    ]
    if not arrays:
        return np.zeros(0, dtype=np.int64)
    if all(a.shape == arrays[0].shape for a in arrays):
        return np.stack(arrays)
    return arrays


def _rows_without(items: Items, value: Optional[int]) -> np.ndarray:
    """Bool ``[n]``: items with some entry other than ``value`` (all True for
    None)."""
    if value is None:
        return np.ones(len(items), dtype=bool)
    if isinstance(items, np.ndarray):
        width = int(np.prod(items.shape[1:]))
        return (items != value).reshape(len(items), width).any(axis=1)
    return np.array([bool(np.any(item != value)) for item in items], dtype=bool)


def _select(items: Optional[Items], keep: np.ndarray) -> Optional[Items]:
    if items is None:
        return None
    if isinstance(items, np.ndarray):
        return items[keep]
    return [item for item, flag in zip(items, keep) if flag]


def _as_list(items: Optional[Items]) -> Optional[List[Any]]:
    return None if items is None else list(items)


def _flat_labels(items: Items) -> np.ndarray:
    """``[n]`` integer labels from per-item labels of size 1."""
    if isinstance(items, list):
        if any(np.asarray(item).size != 1 for item in items):
            items = None
        else:
            items = np.asarray([np.asarray(item).reshape(-1)[0] for item in items])
    elif int(np.prod(items.shape[1:])) != 1:
        items = None
    if items is None:
        raise ValueError(
            "Standard metrics score one label per example; use a custom metric "
            "(e.g. tokenwise_accuracy) for sequence labels."
        )
    labels = items.reshape(-1)
    if labels.dtype.kind == "f" and not np.all(np.mod(labels, 1) == 0):
        raise ValueError("Input contains at least one non-integer value.")
    return labels.astype(np.int64)


def _stacked(items: Items) -> np.ndarray:
    if isinstance(items, np.ndarray):
        return items if len(items) else np.zeros((0, 2))
    return np.stack([np.asarray(v) for v in items]) if items else np.zeros((0, 2))
