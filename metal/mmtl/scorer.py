"""One ``Scorer`` for both multi-task front doors.

A scorer is built in one of two vocabularies, which fixes what its metric
names mean and the argument order of ``score``:

* Operation API (seed tutorial): ``Scorer(metrics=["accuracy"],
  custom_metric_funcs={name: fn}, abstain_label=-1)``; labels are ``0..k-1``,
  rows whose gold or prediction equals ``abstain_label`` are ignored (except by
  ``coverage``); metrics come from ``metal.mmtl.metrics``; custom functions are
  called ``fn(golds, preds, probs)`` and return a number or a dict;
  ``score(golds, preds=None, probs=None)``.
* MeTaL v0.5: ``Scorer(standard_metrics=["accuracy"], custom_metric_funcs={fn:
  ["name", ...]})``; labels are ``1..k`` and examples whose gold row is all 0
  are ignored; metrics come from ``metal.metrics``; custom functions are called
  ``fn(Y, Y_preds, probs=Y_probs)`` and return a dict; ``score(Y, Y_probs,
  Y_preds, target_metrics=None)``.

Models never call ``score`` directly: they call ``score_task`` with labels in
the convention of the task the scorer belongs to (``first_class`` 0 or 1), and
the scorer shifts them into its own.
"""

import functools
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from metal.metrics import METRICS as V05_METRICS
from metal.metrics import metric_score as v05_metric_score
from metal.mmtl.metrics import METRICS, metric_score

OPERATION = "operation"
V05 = "v0.5"

_OPERATION_ARGS = ("golds", "preds", "probs", "target_metrics")
_V05_ARGS = ("Y", "Y_probs", "Y_preds", "target_metrics")
_ALIASES = {"Y": "golds", "Y_probs": "probs", "Y_preds": "preds"}


class Scorer:
    """Computes a task's metrics (see the module docstring for both vocabularies).

    Args:
        metrics: Operation-API metric names (keys of ``metal.mmtl.metrics.METRICS``).
        custom_metric_funcs: ``{name: fn}`` (Operation API) or ``{fn: [names]}``
            (v0.5).
        abstain_label: Operation API: the "no label" value ignored in golds and
            predictions (None: nothing ignored).
        standard_metrics: v0.5 metric names (keys of ``metal.metrics.METRICS``).

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
        if standard_metrics is not None or keyed_by_function:
            self.flavour = V05
            names = list(standard_metrics if standard_metrics is not None else [])
            names += list(metrics or [])
            self._init_v05(names, custom)
        else:
            self.flavour = OPERATION
            self._init_operation(list(metrics or []), custom, abstain_label)

    # ------------------------------------------------------------ building
    def _init_operation(self, names: List[str], custom: dict, abstain_label) -> None:
        self.abstain_label = abstain_label
        self.standard_metrics = names
        self.custom_metric_funcs = custom
        self._metric_fns: Dict[str, Callable] = {}
        for name in names:
            if name not in METRICS:
                raise ValueError(
                    f"Unrecognized metric: {name!r}; choose from {sorted(METRICS)}."
                )
            filter_dict = (
                None
                if abstain_label is None or name == "coverage"
                else {"golds": [abstain_label], "preds": [abstain_label]}
            )
            self._metric_fns[name] = functools.partial(
                metric_score, metric=name, filter_dict=filter_dict
            )
        for name, func in custom.items():
            if not isinstance(name, str) or not callable(func):
                raise ValueError(
                    "custom_metric_funcs must map metric names to functions "
                    f"f(golds, preds, probs); found {name!r}: {func!r}."
                )
            self._metric_fns[name] = func

    def _init_v05(self, names: List[str], custom: dict) -> None:
        self.abstain_label = 0
        for name in names:
            if "/" in name or name not in V05_METRICS:
                raise ValueError(
                    f"Unrecognized metric: {name!r}; standard_metrics must be simple "
                    f"names from {sorted(V05_METRICS)}."
                )
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
        self.standard_metrics = names
        self.custom_metric_funcs = custom

    # ------------------------------------------------------------ metadata
    @property
    def metrics(self) -> Union[Dict[str, Callable], List[str]]:
        """Operation API: ``{name: f(golds, preds, probs)}``; v0.5: the list of
        standard metric names followed by the custom ones."""
        if self.flavour == OPERATION:
            return self._metric_fns
        names = list(self.standard_metrics)
        for produced in self.custom_metric_funcs.values():
            names.extend(produced)
        return names

    @property
    def first_class(self) -> int:
        """The smallest class label in this scorer's convention (0 or 1)."""
        return 0 if self.flavour == OPERATION else 1

    def validate_target_metrics(self, target_metrics: Optional[Sequence[str]]) -> None:
        """Every target must be a simple name this scorer computes."""
        if not target_metrics:
            return
        known = list(self.metrics)
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
        return f"Scorer(metrics={list(self.metrics)})"

    # ------------------------------------------------------------- scoring
    def score(self, *args, **kwargs) -> Dict[str, float]:
        """Score predictions against gold labels; returns ``{metric: value}``.

        Operation API: ``score(golds, preds=None, probs=None)`` (golds ``[n]`` in
        ``0..k-1``, preds ``[n]``, probs ``[n, k]``). v0.5:
        ``score(Y, Y_probs, Y_preds, target_metrics=None)`` (lists with one
        entry per example, labels in ``1..k``). Keywords of either vocabulary
        are accepted.
        """
        names = _OPERATION_ARGS if self.flavour == OPERATION else _V05_ARGS
        if len(args) > len(names):
            raise TypeError(f"score takes at most {len(names)} positional arguments.")
        given = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in _OPERATION_ARGS and key not in _ALIASES:
                raise TypeError(f"score got an unexpected keyword argument {key!r}.")
            given[key] = value
        values = {_ALIASES.get(key, key): value for key, value in given.items()}
        return self._score(
            values.get("golds"),
            values.get("preds"),
            values.get("probs"),
            values.get("target_metrics"),
        )

    def score_task(
        self,
        golds: Any,
        preds: Any,
        probs: Any,
        first_class: int = 0,
        target_metrics: Optional[Sequence[str]] = None,
    ) -> Dict[str, float]:
        """Score labels given in a task's convention (classes from
        ``first_class``; ``first_class - 1`` means "no label")."""
        shift = self.first_class - first_class
        if shift:
            golds = _shift(golds, shift)
            preds = _shift(preds, shift)
        return self._score(golds, preds, probs, target_metrics)

    def _score(self, golds, preds, probs, target_metrics) -> Dict[str, float]:
        if self.flavour == OPERATION:
            return self._score_operation(golds, preds, probs, target_metrics)
        return self._score_v05(golds, probs, preds, target_metrics)

    def _score_operation(self, golds, preds, probs, target_metrics) -> Dict[str, float]:
        if target_metrics:
            self.validate_target_metrics(target_metrics)
        golds = _to_numpy(golds)
        if golds is None or len(golds) == 0:
            raise ValueError("Cannot score empty labels")
        preds, probs = _to_numpy(preds), _to_numpy(probs)
        results: Dict[str, float] = {}
        for name, func in self._metric_fns.items():
            if target_metrics and name not in target_metrics:
                continue
            value = func(golds, preds, probs)
            if isinstance(value, dict):
                results.update(value)
            else:
                results[name] = value
        return results

    def _score_v05(self, Y, Y_probs, Y_preds, target_metrics) -> Dict[str, float]:
        self.validate_target_metrics(target_metrics)
        Y = _per_example(Y)
        Y_probs = _per_example(Y_probs) if Y_probs is not None else [None] * len(Y)
        Y_preds = _per_example(Y_preds) if Y_preds is not None else [None] * len(Y)
        active = [bool(np.any(np.asarray(y) != 0)) for y in Y]
        Y = [y for y, keep in zip(Y, active) if keep]
        Y_probs = [p for p, keep in zip(Y_probs, active) if keep]
        Y_preds = [p for p, keep in zip(Y_preds, active) if keep]
        results: Dict[str, float] = {}
        for name in self.standard_metrics:
            if target_metrics and name not in target_metrics:
                continue
            results[name] = v05_metric_score(
                _flat_labels(Y),
                None if name == "roc-auc" else _flat_labels(Y_preds),
                name,
                probs=_stacked(Y_probs) if name == "roc-auc" else None,
            )
        for func, produced in self.custom_metric_funcs.items():
            wanted = [
                name
                for name in produced
                if (not target_metrics or name in target_metrics)
                and name not in results
            ]
            if not wanted:
                continue
            output = func(Y, Y_preds, probs=Y_probs)
            for name, value in output.items():
                if not target_metrics or name in target_metrics:
                    results[name] = value
        return results


# ------------------------------------------------------------------ helpers
def _to_numpy(values):
    if values is None:
        return None
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    if isinstance(values, list) and values and isinstance(values[0], torch.Tensor):
        return np.stack([v.detach().cpu().numpy() for v in values])
    return np.asarray(values)


def _shift(values, shift: int):
    if values is None:
        return None
    if isinstance(values, torch.Tensor):
        return values + shift
    if isinstance(values, np.ndarray):
        return values + shift
    return [np.asarray(v) + shift for v in values]


def _per_example(values) -> list:
    """A list with one numpy array (or scalar) per example."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    if isinstance(values, np.ndarray):
        return list(values)
    return [
        v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v for v in values
    ]


def _flat_labels(values: list) -> np.ndarray:
    """``[n]`` ints from per-example labels of size 1."""
    arrays = [np.asarray(v).reshape(-1) for v in values]
    if any(a.shape[0] != 1 for a in arrays):
        raise ValueError(
            "Standard metrics score one label per example; use a custom metric "
            "(e.g. tokenwise_accuracy) for sequence labels."
        )
    if not arrays:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(arrays).astype(np.int64)


def _stacked(values: list) -> np.ndarray:
    return np.stack([np.asarray(v) for v in values]) if values else np.zeros((0, 2))
