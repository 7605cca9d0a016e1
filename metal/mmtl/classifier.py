"""``MultitaskClassifier``: runs many tasks' operation paths over one shared
pool of modules.

Modules are shared between tasks by their key in the tasks' module pools (and,
for MeTaL v0.5 tasks, by object). Within one forward pass each operation is
computed once, however many tasks use it (outputs are cached by op name).

Labels follow each task's convention: ``Task`` uses ``0..k-1`` with ``-1`` =
no label, v0.5 tasks ``1..k`` with ``0`` = no label. Rows without a label are
left out of losses and scores. A dataset's label set trains/scores the task of
the same name (or the one given by ``remap_labels``).
"""

import logging
from types import MappingProxyType
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from metal._checks import is_int
from metal._data import hard_labels, leading_dim, to_numpy
from metal._io import atomic_torch_save, read_state_dict, state_mismatch
from metal.labels import break_ties
from metal.mmtl.config import ClassifierConfig
from metal.mmtl.task import INPUT_OP, Operation, Task, _core_module
from metal.mmtl.utils import metrics_dict_to_dataframe
from metal.utils import move_to_device

logger = logging.getLogger(__name__)

OutputDict = Dict[str, Any]

__all__ = ["MultitaskClassifier"]


class MultitaskClassifier(nn.Module):
    """A multi-task model built from ``Task``s.

    Args:
        tasks: the tasks (``Task`` or v0.5 ``ClassificationTask`` etc.).
        name: model name (default: the class name).
        **kwargs: ``ClassifierConfig`` fields: ``device`` (GPU id; -1 or no
            CUDA: CPU) and ``dataparallel`` (wrap pooled modules in
            ``nn.DataParallel``, default True; then pooled modules expose
            ``.module``).

    Attributes:
        module_pool: ``nn.ModuleDict`` of every module, once per key.
        tasks: read-only ``{name: Task}`` in insertion order.
        task_names: set of task names.
        op_sequences, loss_funcs, output_funcs, scorers: per task name.

    Raises:
        ValueError: "Unrecognized task type" for a non-Task, "Found duplicate
            task" for a repeated name.
    """

    def __init__(
        self, tasks: List[Task], name: Optional[str] = None, **kwargs: Any
    ) -> None:
        super().__init__()
        self.config = ClassifierConfig(**kwargs)
        self.name = name or type(self).__name__
        self._dataparallel = bool(self.config.dataparallel)
        self._device_id = self.config.device
        self._device = torch.device("cpu")
        self.module_pool = nn.ModuleDict()
        self.task_names: set = set()
        self.op_sequences: Dict[str, List[Operation]] = {}
        self.loss_funcs: Dict[str, Any] = {}
        self.output_funcs: Dict[str, Any] = {}
        self.scorers: Dict[str, Any] = {}
        self._tasks: Dict[str, Task] = {}
        self._build_network(tasks)
        self._move_to_device()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name})"

    # ------------------------------------------------------------ structure
    @property
    def tasks(self) -> Mapping[str, Task]:
        """Read-only ``{task name: Task}``, in the order tasks were added."""
        return MappingProxyType(self._tasks)

    def _build_network(self, tasks: List[Task]) -> None:
        for task in tasks:
            self.add_task(task)
        all_ops = [op.name for ops in self.op_sequences.values() for op in ops]
        used_modules = [
            op.module_name for ops in self.op_sequences.values() for op in ops
        ]
        logger.info(
            f"Built model {self.name}: {len(self._tasks)} tasks, "
            f"{len(set(all_ops))} unique ops ({len(all_ops) - len(set(all_ops))} "
            f"shared), {len(self.module_pool)} modules "
            f"({len(used_modules) - len(set(used_modules))} shared uses)."
        )

    def add_task(self, task: Task) -> None:
        """Add ``task``; pooled modules with the same key are shared (the model
        keeps its module and the task's pool entry is pointed at it).

        Raises:
            ValueError: for a non-Task, a task name already in the model, or an
                op name already used (in this task or another) for another
                module: outputs are cached by op name, so one would silently
                receive the other's output. (One op name for one module on
                different inputs is allowed, as in tasks fed by different
                datasets; running both in one forward pass raises.)
        """
        if not isinstance(task, Task):
            raise ValueError(f"Unrecognized task type {task!r}; expected a Task.")
        if task.name in self._tasks:
            raise ValueError(
                f"Found duplicate task {task.name!r}; task names must be unique."
            )
        if task.shares_modules_by_object:
            pool, ops = task.stage_graph(self._shared_key_finder(task.name))
            task.module_pool, task.op_sequence = pool, ops
        self._check_op_names(task)
        for key, module in list(task.module_pool.items()):
            if key in self.module_pool:
                task.module_pool[key] = _unwrap_dataparallel(self.module_pool[key])
            else:
                module = _unwrap_dataparallel(module)
                self.module_pool[key] = (
                    nn.DataParallel(module) if self._dataparallel else module
                )
        self._tasks[task.name] = task
        self.task_names.add(task.name)
        self.op_sequences[task.name] = task.op_sequence
        self.loss_funcs[task.name] = task.loss_func
        self.output_funcs[task.name] = task.output_func
        self.scorers[task.name] = task.scorer
        self._move_to_device()

    def _check_op_names(self, task: Task) -> None:
        """Refuse an op of ``task`` whose name is already used, in ``task`` or
        in another task of the model, for another module."""
        seen = {
            op.name: (name, op) for name, ops in self.op_sequences.items() for op in ops
        }
        for op in task.op_sequence:
            owner, other = seen.get(op.name, (None, None))
            if other is not None and other.module_name != op.module_name:
                where = (
                    f"twice in task {task.name!r}"
                    if owner == task.name
                    else f"in tasks {owner!r} and {task.name!r}"
                )
                raise ValueError(
                    f"The op name {op.name!r} is used {where} for different "
                    f"modules ({other} and {op}); outputs are cached by op "
                    "name, so one would silently get the other's output. Give the "
                    "ops distinct names (Operation(..., name=...))."
                )
            seen[op.name] = (task.name, op)

    def remove_task(self, task_name: str) -> None:
        """Remove a task, and every pooled module no other task uses.

        Raises:
            ValueError: if the model has no such task.
        """
        if task_name not in self._tasks:
            raise ValueError(
                f"Cannot remove task {task_name!r}: the model has tasks "
                f"{list(self._tasks)}."
            )
        del self._tasks[task_name]
        self.task_names.discard(task_name)
        for table in (self.op_sequences, self.loss_funcs, self.output_funcs):
            table.pop(task_name, None)
        self.scorers.pop(task_name, None)
        used = {op.module_name for ops in self.op_sequences.values() for op in ops}
        for key in [key for key in self.module_pool if key not in used]:
            del self.module_pool[key]

    def _shared_key_finder(self, task_name: str):
        """``key_for(stage, module)`` for v0.5 tasks: the key under which the
        same module object is already pooled, else a new key."""

        def key_for(stage: str, module: nn.Module) -> str:
            core = _core_module(module)
            for key, pooled in self.module_pool.items():
                if _core_module(pooled) is core:
                    return key
            key = f"{task_name}_{stage}_module"
            while key in self.module_pool:
                key += "_"
            return key

        return key_for

    def _move_to_device(self) -> None:
        device = self._device_id
        if is_int(device) and device >= 0 and torch.cuda.is_available():
            self._device = torch.device(f"cuda:{device}")
            self.to(self._device)
        else:
            self._device = torch.device("cpu")

    # -------------------------------------------------------------- forward
    def forward(self, X_dict: Dict[str, Any], task_names: Iterable[str]) -> OutputDict:
        """Run the ops of ``task_names`` on ``X_dict``; each op once.

        Returns:
            ``{op name: output}`` for every op run, plus ``"_input_"``: X_dict.

        Raises:
            ValueError: "Unsuccessful operation ..." naming the op that failed
                (e.g. an input key missing from ``X_dict``), or for an unknown
                task name.
        """
        return self._run_ops(X_dict, task_names)

    def _run_ops(self, X_dict: Dict[str, Any], task_names: Iterable[str]) -> OutputDict:
        if self._device.type != "cpu":
            X_dict = move_to_device(X_dict, self._device)
        outputs: OutputDict = {INPUT_OP: X_dict}
        producers: Dict[str, Tuple[str, Operation]] = {}
        pool = self.module_pool
        for task_name in task_names:
            try:
                ops = self.op_sequences[task_name]
            except KeyError:
                raise ValueError(
                    f"Unknown task {task_name!r}; the model has tasks "
                    f"{list(self._tasks)}."
                ) from None
            for op in ops:
                if op.name in outputs:
                    _check_same_op(producers.get(op.name), task_name, op)
                    continue
                producers[op.name] = (task_name, op)
                module = pool[op.module_name]
                if type(module) is nn.DataParallel and not module.device_ids:
                    # Without GPUs DataParallel only calls its module; skip
                    # the wrapper's per-call overhead.
                    module = module.module
                try:
                    if op.inputs:
                        outputs[op.name] = module(
                            *[_gather(outputs, spec) for spec in op.inputs]
                        )
                    else:
                        outputs[op.name] = module(outputs)
                except Exception as exc:
                    raise ValueError(f"Unsuccessful operation {op}: {exc!r}.") from exc
        return outputs

    def _task_output(self, outputs: OutputDict, task_name: str) -> Any:
        return outputs[self.op_sequences[task_name][-1].name]

    # ----------------------------------------------------------------- loss
    def _get_labels_to_tasks(
        self, label_names: Iterable[str], remap_labels: Dict[str, Optional[str]] = {}
    ) -> Dict[str, str]:
        """``{label name: task name}``: remapped labels go to the given task
        (``None`` drops them); a label named like a task goes to it; others are
        left out."""
        labels_to_tasks = {}
        for label in label_names:
            if label in remap_labels:
                task_name = remap_labels[label]
                if task_name is None:
                    continue
                if task_name not in self._tasks:
                    raise ValueError(
                        f"remap_labels maps {label!r} to {task_name!r}, which is not "
                        f"a task of the model ({list(self._tasks)})."
                    )
                labels_to_tasks[label] = task_name
            elif label in self._tasks:
                labels_to_tasks[label] = label
        return labels_to_tasks

    def _label_losses(
        self,
        X_dict: Dict[str, Any],
        Y_dict: Mapping[str, torch.Tensor],
        labels_to_tasks: Mapping[str, str],
    ) -> Tuple[Dict[str, torch.Tensor], Dict[str, int]]:
        """Per label set: the task's loss over the labelled rows and their
        number (counts are given for every label set, 0 included; losses only
        where some row is labelled). One forward pass serves all tasks."""
        task_names = list(dict.fromkeys(labels_to_tasks.values()))
        self._check_routing(labels_to_tasks)
        outputs = self._run_ops(X_dict, task_names)
        loss_dict: Dict[str, torch.Tensor] = {}
        count_dict: Dict[str, int] = {}
        on_cpu = self._device.type == "cpu"
        n_inputs = _batch_rows(X_dict)
        for label, task_name in labels_to_tasks.items():
            task = self._tasks[task_name]
            Y = Y_dict[label]
            if n_inputs is not None and Y.shape[0] != n_inputs:
                raise ValueError(
                    f"Label set {label!r} has {Y.shape[0]} rows but the inputs "
                    f"have {n_inputs}."
                )
            if not on_cpu:
                Y = Y.to(self._device)
            n_rows = Y.shape[0]
            active = _labelled_rows(Y, task.ignore_label)
            n_active = n_rows if active is None else int(active.sum())
            count_dict[label] = n_active
            if n_active == 0:
                continue
            output = self._task_output(outputs, task_name)
            if n_active < n_rows:
                output = _select_rows(output, active, n_rows)
                Y = Y[active]
            loss = self.loss_funcs[task_name](output, Y)
            if task.loss_multiplier != 1.0:
                loss = loss * task.loss_multiplier
            loss_dict[label] = loss
        return loss_dict, count_dict

    def _check_routing(self, labels_to_tasks: Mapping[str, str]) -> None:
        for label, task_name in labels_to_tasks.items():
            if task_name not in self._tasks:
                raise ValueError(
                    f"Label set {label!r} is routed to task {task_name!r}, which "
                    f"is not in the model (tasks: {list(self._tasks)})."
                )

    def calculate_loss(
        self, X_dict: Dict[str, Any], Y_dict: Mapping[str, torch.Tensor]
    ) -> Tuple[Dict[str, torch.Tensor], Dict[str, float]]:
        """Mean loss and labelled-row count per label set of ``Y_dict`` whose
        name is a task (other label sets are ignored). Label sets without
        labelled rows (all ``-1`` for a ``Task``) get no entries."""
        labels_to_tasks = self._get_labels_to_tasks(Y_dict.keys())
        loss_dict, count_dict = self._label_losses(X_dict, Y_dict, labels_to_tasks)
        return loss_dict, {label: count_dict[label] for label in loss_dict}

    # ----------------------------------------------------------- prediction
    @torch.no_grad()
    def _calculate_probs(
        self, X_dict: Dict[str, Any], task_names: Iterable[str]
    ) -> Dict[str, Iterable[torch.Tensor]]:
        """``{task: output_func(last op output)}`` as numpy (``[B, k]``, or a
        list of per-example arrays for sequence tasks)."""
        self.eval()
        task_names = list(dict.fromkeys(task_names))
        outputs = self._run_ops(X_dict, task_names)
        return {
            task_name: _output_numpy(
                self.output_funcs[task_name](self._task_output(outputs, task_name))
            )
            for task_name in task_names
        }

    @torch.no_grad()
    def predict(
        self,
        dataloader,
        return_preds: bool = False,
        remap_labels: Dict[str, Optional[str]] = {},
    ) -> Dict[str, Dict[str, torch.Tensor]]:
        """Probabilities and gold labels for every label set of the loader's
        dataset that maps to a task, keyed by label name.

        Returns:
            ``{"golds": {label: [n] or [n, ...]}, "probs": {label: [n, k]}}``
            plus ``"preds": {label: [n]}`` when ``return_preds``. Predictions
            are in the task's convention: ``argmax`` with ties broken by a
            hash of the row index for ``Task``; ``argmax + 1`` (first maximum)
            for v0.5 tasks. Sequence tasks give lists of per-example arrays.
        """
        return self._predict_dataloader(dataloader, return_preds, remap_labels)

    def _collect(
        self,
        dataloader: Any,
        labels_to_tasks: Mapping[str, str],
        labels: Optional[List[str]] = None,
        tasks: Optional[List[str]] = None,
        max_examples: int = 0,
    ) -> Tuple[Dict[str, List[Any]], Dict[str, List[Any]]]:
        """The one prediction pass over a loader (for ``predict``, ``score`` and
        the v0.5 payload methods): per batch, the probabilities of each task in
        ``tasks`` and the gold labels of each label set in ``labels`` (both
        default to all of ``labels_to_tasks``). ``max_examples > 0`` stops once
        that many examples were seen."""
        self.eval()
        tasks = tasks or list(dict.fromkeys(labels_to_tasks.values()))
        labels = list(labels_to_tasks) if labels is None else labels
        golds: Dict[str, List[Any]] = {label: [] for label in labels}
        probs: Dict[str, List[Any]] = {task: [] for task in tasks}
        seen = 0
        for X_batch, Y_batch in dataloader:
            batch_probs = self._calculate_probs(X_batch, tasks)
            for task_name in tasks:
                probs[task_name].append(batch_probs[task_name])
            for label in labels:
                golds[label].append(Y_batch[label])
            if max_examples:
                seen += leading_dim(Y_batch) or 0
                if seen >= max_examples:
                    break
        return golds, probs

    def _predict_dataloader(
        self, dataloader, return_preds: bool, remap_labels: Dict[str, Optional[str]]
    ) -> Dict[str, Dict[str, Any]]:
        labels_to_tasks = self._get_labels_to_tasks(
            dataloader.dataset.Y_dict.keys(), remap_labels
        )
        golds, probs = self._collect(dataloader, labels_to_tasks)
        task_probs = {task: _concat_probs(rows) for task, rows in probs.items()}
        results: Dict[str, Dict[str, Any]] = {
            "golds": {label: _concat_tensors(rows) for label, rows in golds.items()},
            "probs": {
                label: task_probs[task] for label, task in labels_to_tasks.items()
            },
        }
        if return_preds:
            task_preds = {
                task: self._task_predictions(task_probs[task], task)
                for task in task_probs
            }
            results["preds"] = {
                label: task_preds[task] for label, task in labels_to_tasks.items()
            }
        return results

    def _task_predictions(self, probs: Any, task_name: str) -> Any:
        """The one way this model turns a task's probabilities into labels
        (``metal.labels.break_ties`` with the task's tie policy, in its label
        convention): ``[n, k]`` probabilities (tensor or array) give ``[n]``
        labels of the same kind; per-item arrays give per-item labels (a
        scalar for a ``[k]`` item, ``[seq_len]`` for a ``[seq_len, k]`` one)."""
        task = self._tasks[task_name]
        policy, convention = task.tie_break_policy, task.label_convention
        if isinstance(probs, torch.Tensor) and probs.dim() == 2:
            return torch.from_numpy(break_ties(probs.numpy(), policy, convention))
        if isinstance(probs, np.ndarray) and probs.ndim == 2:
            return break_ties(probs, policy, convention)
        items = [np.asarray(p) for p in probs]
        if items and all(p.ndim == 1 and p.shape == items[0].shape for p in items):
            return list(break_ties(np.stack(items), policy, convention))
        return [
            (
                break_ties(p, policy, convention)
                if p.ndim == 2
                else break_ties(p[None], policy, convention)[0]
            )
            for p in items
        ]

    @torch.no_grad()
    def score(
        self,
        dataloaders: List[Any],
        remap_labels: Dict[str, Optional[str]] = {},
        as_dataframe: bool = False,
    ) -> Union[Dict[str, float], pd.DataFrame]:
        """Score every loader's label sets with their tasks' scorers.

        Returns:
            ``{"<label>/<dataset name>/<split>/<metric>": value}`` (in loader,
            label and metric order), or a DataFrame with columns ``label,
            dataset, split, metric, score`` when ``as_dataframe``.
        """
        metrics = self._score_dataloaders(dataloaders, remap_labels)
        if as_dataframe:
            return metrics_dict_to_dataframe(metrics)
        return metrics

    def _score_dataloaders(
        self, dataloaders: List[Any], remap_labels: Dict[str, Optional[str]] = {}
    ) -> Dict[str, float]:
        self.eval()
        metrics: Dict[str, float] = {}
        for dataloader in dataloaders:
            dataset = dataloader.dataset
            labels_to_tasks = self._get_labels_to_tasks(
                dataset.Y_dict.keys(), remap_labels
            )
            ignored = [
                label for label in dataset.Y_dict if label not in labels_to_tasks
            ]
            if ignored:
                logger.info(
                    f"Ignoring label set(s) {ignored} of dataset {dataset.name!r} "
                    f"({dataset.split}): no task of that name."
                )
            if not labels_to_tasks or len(dataset) == 0:
                continue
            results = self._predict_dataloader(dataloader, True, remap_labels)
            for label, task_name in labels_to_tasks.items():
                probs = results["probs"][label]
                convention = self._tasks[task_name].label_convention
                scores = self.scorers[task_name].score_task(
                    _hard_golds(results["golds"][label], probs, convention.first_class),
                    results["preds"][label],
                    probs,
                    convention,
                )
                for metric, value in scores.items():
                    key = "/".join([label, dataset.name, dataset.split, metric])
                    metrics[key] = value
        return metrics

    # ---------------------------------------------------------- persistence
    def save(self, model_path: str) -> None:
        """Write the state dict to ``model_path`` (atomically; folders are
        created). Load it with ``load``."""
        atomic_torch_save(self.state_dict(), model_path)
        logger.info(f"Saved model {self.name} to {model_path}.")

    def load(self, model_path: str) -> None:
        """Load weights saved by ``save`` (or a training checkpoint) with
        ``torch.load(..., weights_only=True)``, then move to the device.

        Nothing is loaded unless the file's weights fit this model (the same
        names and shapes).

        Raises:
            FileNotFoundError: if there is no such file.
            ValueError: naming the file, when it is damaged, holds no state
                dict or does not fit this model.
        """
        try:
            state = read_state_dict(model_path)
            own = self.state_dict()
            state = _match_dataparallel_keys(state, own)
            mismatch = state_mismatch(state, own)
            if mismatch:
                raise ValueError(
                    f"{model_path!r} does not fit the model {self.name!r}: "
                    f"{mismatch}."
                )
        except Exception:
            logger.error(f"Could not load a model from {model_path}.")
            raise
        self.load_state_dict(state)
        self._move_to_device()


# ------------------------------------------------------------------ helpers
def _check_same_op(
    producer: Optional[Tuple[str, Operation]], task_name: str, op: Operation
) -> None:
    """Refuse to reuse a cached op output computed by another op of the same
    name (other inputs) for another task in this forward pass."""
    if producer is None:
        return
    first_task, first = producer
    if first.module_name != op.module_name or first.inputs != op.inputs:
        raise ValueError(
            f"Tasks {first_task!r} and {task_name!r} both run an op named "
            f"{op.name!r} in one forward pass, on different inputs ({first} and "
            f"{op}); its cached output would be wrong for one of them. Give the "
            "ops distinct names (Operation(..., name=...))."
        )


def _unwrap_dataparallel(module: nn.Module) -> nn.Module:
    while isinstance(module, nn.DataParallel):
        module = module.module
    return module


def _gather(outputs: OutputDict, spec) -> Any:
    if isinstance(spec, str):
        return outputs[spec]
    source, key = spec
    value = outputs[source]
    try:
        return value[key]
    except (KeyError, IndexError, TypeError):
        available = list(value) if isinstance(value, dict) else type(value).__name__
        raise KeyError(
            f"{key!r} is not in the output of {source!r} (found {available})"
        ) from None


def _batch_rows(X_dict: Dict[str, Any]) -> Optional[int]:
    """Rows of the first tensor field of a batch (None if it has none)."""
    for value in X_dict.values():
        if isinstance(value, torch.Tensor) and value.dim():
            return value.shape[0]
    return None


def _labelled_rows(Y: torch.Tensor, ignore_label: int) -> Optional[torch.Tensor]:
    """Bool ``[B]``: rows with at least one entry other than ``ignore_label``;
    None when every entry differs from it (all rows labelled)."""
    # Labels never lie below the "no label" value, so a minimum above it
    # answers the common all-labelled case with one cheap reduction.
    if Y.numel() and Y.min().item() > ignore_label:
        return None
    active = Y != ignore_label
    if active.dim() > 1:
        active = active.reshape(active.shape[0], -1).any(dim=1)
    return active


def _select_rows(output: Any, active: torch.Tensor, n: int) -> Any:
    """Keep the ``active`` rows of a batch output: tensors (by first dim),
    per-example lists, and the entries of dicts/tuples."""
    if isinstance(output, torch.Tensor):
        return output[active] if output.dim() and output.shape[0] == n else output
    if isinstance(output, dict):
        return {key: _select_rows(value, active, n) for key, value in output.items()}
    if isinstance(output, tuple):
        return tuple(_select_rows(value, active, n) for value in output)
    if isinstance(output, list) and len(output) == n:
        keep = active.tolist()
        return [value for value, flag in zip(output, keep) if flag]
    return output


def _output_numpy(values: Any) -> Any:
    """An output function's result as NumPy: one array, or a list of per-item
    arrays (sequence tasks)."""
    if isinstance(values, (list, tuple)):
        return [np.asarray(to_numpy(v)) for v in values]
    return np.asarray(to_numpy(values) if isinstance(values, torch.Tensor) else values)


def _concat_tensors(rows: List[torch.Tensor]) -> Any:
    """Batches of labels as one tensor, or a list of per-example tensors when
    batches differ in width (padded sequences)."""
    rows = [
        r.cpu() if isinstance(r, torch.Tensor) else torch.as_tensor(r) for r in rows
    ]
    if not rows:
        return torch.zeros(0)
    if all(r.shape[1:] == rows[0].shape[1:] for r in rows):
        return torch.cat(rows)
    return [example for r in rows for example in r]


def _concat_probs(batches: List[Any]) -> Any:
    """Per-batch numpy probabilities as one float tensor ``[n, k]``, or a list
    of per-example arrays for sequence tasks."""
    if not batches:
        return torch.zeros(0)
    if all(isinstance(b, np.ndarray) for b in batches) and all(
        b.shape[1:] == batches[0].shape[1:] for b in batches
    ):
        return torch.from_numpy(np.concatenate(batches))
    return [np.asarray(example) for b in batches for example in b]


def _hard_golds(golds: Any, probs: Any, first_class: int) -> Any:
    """Probabilistic gold rows ``[n, k]`` become hard labels for scoring."""
    if (
        isinstance(golds, torch.Tensor)
        and golds.is_floating_point()
        and golds.dim() == 2
        and golds.shape[1] > 1
        and isinstance(probs, torch.Tensor)
        and probs.dim() == 2
        and probs.shape[1] == golds.shape[1]
    ):
        return hard_labels(golds, first_class)
    return golds


def _match_dataparallel_keys(
    state: Dict[str, torch.Tensor], own: Dict[str, torch.Tensor]
) -> Dict[str, torch.Tensor]:
    """Weights saved with ``dataparallel`` (keys ``module_pool.<key>.module.<p>``)
    load into a model without it and vice versa: the ``module`` level is
    added to or removed from every pooled key when that makes the key sets
    equal; otherwise ``state`` is returned unchanged."""
    if set(state) == set(own):
        return state
    pooled = [name.split(".") for name in state if name.startswith("module_pool.")]
    others = {
        name: value
        for name, value in state.items()
        if not name.startswith("module_pool.")
    }
    candidates = [
        {".".join(p[:2] + ["module"] + p[2:]): state[".".join(p)] for p in pooled}
    ]
    if pooled and all(p[2:3] == ["module"] for p in pooled):
        candidates.append({".".join(p[:2] + p[3:]): state[".".join(p)] for p in pooled})
    for candidate in candidates:
        candidate.update(others)
        if set(candidate) == set(own):
            return candidate
    return state
