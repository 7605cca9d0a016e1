"""``MetalModel``: MeTaL v0.5's face of ``MultitaskClassifier``.

Same network machinery (one module pool, ops computed once per forward), with
v0.5's config dict, ``forward(X, task_names) -> {task: head output}``, losses
keyed ``task/payload/label_set/loss`` and scoring of ``Payload``s under
``task/payload/label_set/metric`` names. Labels of v0.5 tasks are ``1..k``
with 0 = no label; predictions are ``argmax + 1`` (first maximum wins).
"""

import random
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn

from metal._io import atomic_torch_save, read_state_dict, reshaped_entries
from metal.labels import ONE_BASED, break_ties
from metal.mmtl.classifier import MultitaskClassifier, _match_dataparallel_keys
from metal.mmtl.payload import Payload
from metal.mmtl.task import StageTask, Task
from metal.utils import merge_config, set_seed

model_defaults = {
    "seed": None,
    "device": 0,  # GPU id; -1 = CPU
    "verbose": True,
    "fp16": False,
    "model_weights": None,  # checkpoint/weights file to load at construction
}

__all__ = [
    "MetalModel",
    "model_defaults",
    "predict_payload_with_gold",
    "probs_to_preds",
    "score_payload",
    "validate_targets",
]


def probs_to_preds(probs: np.ndarray) -> np.ndarray:
    """``argmax + 1`` over the last axis (classes ``1..k``; ties → first)."""
    probs = np.asarray(probs)
    rows = probs.reshape(-1, probs.shape[-1])
    return break_ties(rows, "first", ONE_BASED).reshape(probs.shape[:-1])


def validate_targets(
    payload: Payload,
    target_tasks: Optional[Union[str, Sequence[str]]],
    target_labels: Optional[Union[str, Sequence[str]]],
) -> None:
    """Requested tasks must be fed by the payload and requested label sets be
    in it.

    Raises:
        ValueError: naming the payload and the missing task / label set.
    """
    for task_name in _as_list(target_tasks):
        if task_name not in payload.labels_to_tasks.values():
            raise ValueError(
                f"Task {task_name!r} is not fed by payload {payload.name!r} "
                f"(labels_to_tasks={payload.labels_to_tasks})."
            )
    for label_name in _as_list(target_labels):
        if label_name not in payload.labels_to_tasks:
            raise ValueError(
                f"Label set {label_name!r} is not in payload {payload.name!r} "
                f"(labels_to_tasks={payload.labels_to_tasks})."
            )


def _as_list(value) -> List[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


class MetalModel(MultitaskClassifier):
    """A multi-task network over v0.5 tasks (``ClassificationTask`` etc.; any
    ``Task`` works too).

    Args:
        tasks: the tasks; modules passed as the same object to several tasks
            are shared, and computed once per forward on the same input.
        **kwargs: keys of ``model_defaults`` (flat keys reach nested ones):
            ``seed`` (seeds all RNGs when given), ``device`` (GPU id, -1 = CPU;
            falls back to CPU without CUDA), ``verbose``, ``fp16`` (not
            supported), ``model_weights`` (a file to load after building).

    Attributes: ``config``, ``task_map`` (``{name: task}``), ``module_pool``,
    and ``input_modules`` / ``middle_modules`` / ``head_modules`` (per task).
    """

    def __init__(self, tasks: List[Task], **kwargs: Any) -> None:
        config = merge_config(model_defaults, kwargs, "MetalModel", insert=True)
        if config["fp16"]:
            raise NotImplementedError(
                "fp16 training (NVIDIA apex) is not supported; use fp16=False."
            )
        if config["seed"] is None:
            config["seed"] = random.SystemRandom().randrange(1_000_000)
        else:
            set_seed(config["seed"])
        super().__init__([], name=type(self).__name__, device=config["device"])
        self._dataparallel = False
        self.config = config
        self._build(tasks)
        if config["model_weights"]:
            self.load_weights(config["model_weights"])
        self._move_to_device()
        if config["verbose"]:
            where = (
                f"GPU {self._device}"
                if self._device.type == "cuda"
                else "CPU" + ("" if config["device"] < 0 else " (no CUDA is available)")
            )
            print(f"Using {where}.")
            print(nn.Module.__repr__(self))
            n_params = sum(p.numel() for p in self.parameters() if p.requires_grad)
            print(f"Total number of trainable parameters: {n_params}")

    def _build(self, tasks: List[Task]) -> None:
        self._build_network(tasks)
        self.task_map = self._tasks

    # ----------------------------------------------------------- structure
    def _stage_modules(self, index: int) -> Dict[str, nn.Module]:
        modules = {}
        for name, task in self._tasks.items():
            if isinstance(task, StageTask):
                modules[name] = self.module_pool[task.op_sequence[index].module_name]
        return modules

    @property
    def input_modules(self) -> Dict[str, nn.Module]:
        """``{task name: input module}`` (v0.5 tasks)."""
        return self._stage_modules(0)

    @property
    def middle_modules(self) -> Dict[str, nn.Module]:
        return self._stage_modules(1)

    @property
    def head_modules(self) -> Dict[str, nn.Module]:
        return self._stage_modules(2)

    @property
    def loss_hat_funcs(self) -> Dict[str, Any]:
        return dict(self.loss_funcs)

    @property
    def output_hat_funcs(self) -> Dict[str, Any]:
        return dict(self.output_funcs)

    def update_config(self, update_dict: Dict[str, Any]) -> None:
        """Merge ``update_dict`` into ``config`` (unknown keys are dropped with a
        ``UserWarning``)."""
        self.config = merge_config(self.config, update_dict, "MetalModel")

    # ------------------------------------------------------------- forward
    def forward(self, X: Dict[str, Any], task_names) -> Dict[str, Any]:
        """``{task name: head output}`` (a stage dict whose ``"data"`` holds
        the logits ``[B, k]`` for wrapped heads)."""
        task_names = list(task_names)
        outputs = self._run_ops(X, task_names)
        return {name: self._task_output(outputs, name) for name in task_names}

    def calculate_loss(
        self,
        X: Dict[str, Any],
        Ys: Dict[str, torch.Tensor],
        payload_name: str,
        labels_to_tasks: Dict[str, str],
    ) -> Tuple[Dict[str, torch.Tensor], Dict[str, int]]:
        """Losses (times each task's ``loss_multiplier``) and labelled-row
        counts keyed ``"<task>/<payload>/<label set>/loss"``; counts are given
        for every label set, losses only where some row is labelled."""
        loss_dict, count_dict = self._label_losses(X, Ys, labels_to_tasks)
        names = {
            label: f"{task}/{payload_name}/{label}/loss"
            for label, task in labels_to_tasks.items()
        }
        return (
            {names[label]: loss for label, loss in loss_dict.items()},
            {names[label]: count for label, count in count_dict.items()},
        )

    @torch.no_grad()
    def calculate_probs(
        self, X: Dict[str, Any], task_names
    ) -> Dict[str, List[np.ndarray]]:
        """``{task: [probabilities per example]}`` (``[k]`` arrays, or
        ``[seq_len, k]`` for token tasks)."""
        batch_probs = self._calculate_probs(X, task_names)
        return {task: list(probs) for task, probs in batch_probs.items()}

    # ---------------------------------------------------------- prediction
    @torch.no_grad()
    def predict_with_gold(
        self,
        payload: Payload,
        target_tasks: Optional[Union[str, Sequence[str]]] = None,
        target_labels: Optional[Union[str, Sequence[str]]] = None,
        return_preds: bool = False,
        max_examples: int = 0,
        **kwargs: Any,
    ):
        """Gold labels (by label set) and probabilities (by task) over a payload.

        Returns:
            ``(Ys, Ys_probs)`` or, with ``return_preds``, ``(Ys, Ys_probs,
            Ys_preds)``: dicts of per-example numpy arrays (instance labels
            come out as shape-``(1,)`` arrays; predictions are ``argmax + 1``
            for v0.5 tasks). ``max_examples > 0`` stops after that many
            examples.
        """
        return predict_payload_with_gold(
            self, payload, target_tasks, target_labels, return_preds, max_examples
        )

    def _single_task(self, payload: Payload, task_name: Optional[str]) -> str:
        if task_name is not None:
            return task_name
        if len(payload.labels_to_tasks) != 1:
            raise ValueError(
                f"Payload {payload.name!r} has several label sets "
                f"({list(payload.labels_to_tasks)}); task_name is required."
            )
        return next(iter(payload.labels_to_tasks.values()))

    @torch.no_grad()
    def predict_probs(
        self, payload: Payload, task_name: Optional[str] = None, **kwargs: Any
    ) -> List[np.ndarray]:
        """Per-example probability arrays of one task over a payload."""
        task_name = self._single_task(payload, task_name)
        _, Ys_probs = self.predict_with_gold(payload, task_name, **kwargs)
        return Ys_probs[task_name]

    @torch.no_grad()
    def predict(
        self,
        payload: Payload,
        task_name: Optional[str] = None,
        return_probs: bool = False,
        **kwargs: Any,
    ):
        """Per-example predictions (``1..k`` for v0.5 tasks) of one task, and
        the probabilities when ``return_probs``."""
        task_name = self._single_task(payload, task_name)
        _, Ys_probs, Ys_preds = self.predict_with_gold(
            payload, task_name, return_preds=True, **kwargs
        )
        if return_probs:
            return Ys_preds[task_name], Ys_probs[task_name]
        return Ys_preds[task_name]

    @torch.no_grad()
    def score(
        self,
        payload: Payload,
        metrics: Union[str, List[str]] = [],
        verbose: bool = True,
        **kwargs: Any,
    ) -> Union[float, Dict[str, float]]:
        """Score a payload's label sets with their tasks' scorers.

        Args:
            payload: the payload.
            metrics: ``[]`` for every metric of every label set; a list of
                full names ``"<task>/<payload>/<label set>/<metric>"`` (names
                of other payloads are skipped); or one full name, whose value
                is returned as a float.
            verbose: print the scores.
            **kwargs: passed to ``predict_with_gold`` (e.g. ``max_examples``).

        Returns:
            ``{full metric name: value}`` (or a float for a single name).
        """
        return score_payload(self, payload, metrics, verbose=verbose, **kwargs)

    # --------------------------------------------------------- persistence
    def load_weights(self, model_path: str) -> None:
        """Load weights from a training checkpoint (its ``"model"`` entry) or
        a file written by ``save_weights``/``save``, safely
        (``weights_only=True``); on a key mismatch retry non-strictly, as
        MeTaL did.

        Raises:
            ValueError: naming the file, when it cannot be read, holds no state
                dict, or holds weights whose shapes do not fit the model.
        """
        state = _match_dataparallel_keys(read_state_dict(model_path), self.state_dict())
        misfits = reshaped_entries(state, self.state_dict())
        if misfits:
            raise ValueError(
                f"The weights in {model_path!r} do not fit this model: "
                f"{'; '.join(misfits[:5])}{' ...' if len(misfits) > 5 else ''}."
            )
        try:
            self.load_state_dict(state)
        except RuntimeError as exc:
            print(
                f"Weights in {model_path} do not match the model exactly ({exc}); "
                "loading the matching ones."
            )
            self.load_state_dict(state, strict=False)
        self._move_to_device()

    def save_weights(self, model_path: str) -> None:
        """Write ``{"model": state dict}`` to ``model_path`` (atomically),
        readable by ``load_weights``."""
        atomic_torch_save({"model": self.state_dict()}, model_path)


# ------------------------------------------------------------------------
# Payload prediction and scoring for any MultitaskClassifier (MetalModel's
# methods, and MultitaskTrainer whatever face of the model it is given).
def predict_payload_with_gold(
    model: MultitaskClassifier,
    payload: Payload,
    target_tasks: Optional[Union[str, Sequence[str]]] = None,
    target_labels: Optional[Union[str, Sequence[str]]] = None,
    return_preds: bool = False,
    max_examples: int = 0,
):
    """See ``MetalModel.predict_with_gold``."""
    validate_targets(payload, target_tasks, target_labels)
    model._check_routing(payload.labels_to_tasks)
    tasks = _as_list(target_tasks) or list(
        dict.fromkeys(payload.labels_to_tasks.values())
    )
    labels = _as_list(target_labels) or list(payload.labels_to_tasks)
    golds, probs = model._collect(
        payload.data_loader, payload.labels_to_tasks, labels, tasks, max_examples
    )
    Ys = {
        label: [y for batch in rows for y in batch.cpu().numpy()][
            : max_examples or None
        ]
        for label, rows in golds.items()
    }
    Ys_probs = {
        task: [p for batch in rows for p in batch][: max_examples or None]
        for task, rows in probs.items()
    }
    if not return_preds:
        return Ys, Ys_probs
    Ys_preds = {
        task: model._task_predictions(rows, task) for task, rows in Ys_probs.items()
    }
    return Ys, Ys_probs, Ys_preds


def score_payload(
    model: MultitaskClassifier,
    payload: Payload,
    metrics: Union[str, List[str]] = [],
    verbose: bool = False,
    **kwargs: Any,
) -> Union[float, Dict[str, float]]:
    """See ``MetalModel.score``."""
    single = isinstance(metrics, str)
    requested = [metrics] if single else list(metrics)
    targets: Dict[str, List[str]] = {}
    for full_name in requested:
        parts = full_name.split("/")
        if len(parts) != 4:
            raise ValueError(
                "Metric names must have the form 'task/payload/label_set/metric'; "
                f"found {full_name!r}."
            )
        _, payload_name, label, metric = parts
        if payload_name != payload.name or label not in payload.labels_to_tasks:
            continue
        targets.setdefault(label, []).append(metric)
    if requested and not targets:
        if single:
            raise ValueError(
                f"Metric {metrics!r} does not belong to payload {payload.name!r} "
                f"(labels_to_tasks={payload.labels_to_tasks})."
            )
        return {}
    labels = list(targets) if requested else list(payload.labels_to_tasks)
    tasks = list(dict.fromkeys(payload.labels_to_tasks[label] for label in labels))
    Ys, Ys_probs, Ys_preds = predict_payload_with_gold(
        model, payload, tasks, labels, return_preds=True, **kwargs
    )
    results: Dict[str, float] = {}
    for label in labels:
        task_name = payload.labels_to_tasks[label]
        if not Ys[label]:
            continue
        scores = model.scorers[task_name].score_task(
            Ys[label],
            Ys_preds[task_name],
            Ys_probs[task_name],
            model.tasks[task_name].label_convention,
            targets.get(label),
        )
        for metric, value in scores.items():
            results[f"{task_name}/{payload.name}/{label}/{metric}"] = value
    if verbose:
        for name, value in results.items():
            print(f"{name:>50}: {value:.3f}")
    if single:
        if metrics not in results:
            raise ValueError(
                f"Payload {payload.name!r} has no examples to score {metrics!r}."
            )
        return results[metrics]
    return results
