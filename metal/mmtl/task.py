"""Tasks: a path of operations through a pool of modules, plus a loss, an
output function and a scorer.

``Task`` (Operation API) is the general structure: ``module_pool`` (modules by
name) and ``op_sequence`` (``Operation``s, each calling one pooled module on
the model input ``"_input_"`` or on earlier operations' outputs). The last
operation's output feeds ``loss_func(output, Y)`` and ``output_func(output)``.
Its labels are ``0..k-1`` with ``-1`` = no label (``first_class = 0``).

MeTaL v0.5's tasks are the special case of a three-operation path input →
middle → head over stage dicts (see ``metal.mmtl.modules``): ``StageTask`` and
its subclasses ``ClassificationTask`` and ``RegressionTask`` (and
``TokenClassificationTask`` in ``metal.mmtl.token_task``) keep v0.5's
constructors and its labels ``1..k`` with ``0`` = no label (``first_class =
1``). Modules passed as the same object to several v0.5 tasks are shared (and,
on the same input, computed once per forward).
"""

import functools
import logging
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from metal.end_model.identity_module import IdentityModule
from metal.labels import ONE_BASED, ZERO_BASED, LabelConvention
from metal.mmtl.modules import MetalModule, MetalModuleWrapper
from metal.mmtl.scorer import Scorer

INPUT_OP = "_input_"

logger = logging.getLogger(__name__)

__all__ = [
    "ClassificationTask",
    "Operation",
    "RegressionTask",
    "StageTask",
    "Task",
]


class Operation:
    """One module call in a task's path.

    Args:
        module_name: key of the module in the task's ``module_pool``.
        inputs: the module's positional arguments, each an op name (that op's
            whole output; ``"_input_"`` is the model's input dict) or a pair
            ``(op_name, key)`` (one entry of that op's dict output). An empty
            list calls the module with the dict of all outputs so far.
        name: the op's name (default: ``module_name``). Outputs are cached by
            op name within a forward pass, across tasks.
    """

    def __init__(
        self,
        module_name: str,
        inputs: Sequence[Union[str, Tuple[str, str]]],
        name: Optional[str] = None,
    ) -> None:
        if isinstance(inputs, (str, bytes)) or not hasattr(inputs, "__iter__"):
            raise ValueError(
                f"Operation {name or module_name!r}: inputs must be a list of op "
                f"names or (op_name, key) pairs; found {inputs!r}."
            )
        self.name = name or module_name
        self.module_name = module_name
        self.inputs = list(inputs)

    def __repr__(self) -> str:
        return (
            f"Operation(name={self.name}, module_name={self.module_name}, "
            f"inputs={self.inputs})"
        )


def _input_op_name(op: Operation, task_name: str, spec) -> str:
    if isinstance(spec, str):
        return spec
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        return spec[0]
    raise ValueError(
        f"Task {task_name!r}, operation {op.name!r}: each input must be an op name "
        f"or an (op_name, key) pair; found {spec!r}."
    )


def _check_op_sequence(
    task_name: str, module_pool: nn.ModuleDict, op_sequence: List[Operation]
) -> None:
    """Ops must be Operations naming pooled modules and earlier ops' outputs."""
    if not op_sequence:
        raise ValueError(f"Task {task_name!r} needs at least one Operation.")
    seen = {INPUT_OP}
    for op in op_sequence:
        if not isinstance(op, Operation):
            raise ValueError(
                f"Task {task_name!r}: op_sequence must hold Operations; found "
                f"{type(op).__name__}."
            )
        if op.name in seen:
            reason = "is reserved" if op.name == INPUT_OP else "is used twice"
            raise ValueError(
                f"Task {task_name!r}: the op name {op.name!r} {reason}; give "
                "each Operation a unique name."
            )
        if op.module_name not in module_pool:
            raise ValueError(
                f"Task {task_name!r}, operation {op.name!r}: module "
                f"{op.module_name!r} is not in the task's module_pool (which has "
                f"{list(module_pool)})."
            )
        for spec in op.inputs:
            source = _input_op_name(op, task_name, spec)
            if source not in seen:
                raise ValueError(
                    f"Task {task_name!r}, operation {op.name!r}: input {spec!r} "
                    f"names no earlier operation (available: {sorted(seen)})."
                )
        seen.add(op.name)


class Task:
    """A path through a module pool, with its loss, output function and scorer
    (Operation API; labels ``0..k-1``, ``-1`` = no label).

    Args:
        name: the task's name; it is also the key of its labels in a
            ``DictDataset``'s ``Y_dict`` and the first part of metric names.
        module_pool: ``nn.ModuleDict`` (or dict) of the modules the ops use.
            Models share modules between tasks by key.
        op_sequence: the ``Operation``s, in execution order.
        scorer: computes the task's metrics.
        loss_func: ``f(last op output, Y) -> scalar`` (default
            ``F.cross_entropy``; use ``cross_entropy_with_probs`` for ``[B, k]``
            probabilistic labels).
        output_func: ``f(last op output) -> probabilities [B, k]`` (default
            softmax over dim 1).

    Raises:
        ValueError: for an op naming a module missing from ``module_pool``,
            an input that no earlier op produces, or duplicate op names.
    """

    #: The task's label vocabulary: classes ``0..k-1``, ``-1`` = no label.
    label_convention: LabelConvention = ZERO_BASED
    #: How predictions break ties (``metal.labels.break_ties``): a hash of the
    #: row index picks among the tied classes, as the Operation API does.
    tie_break_policy = "hash"
    #: Factor applied to this task's loss.
    loss_multiplier = 1.0
    #: v0.5 tasks share modules passed as the same object (not only by key).
    shares_modules_by_object = False

    def __init__(
        self,
        name: str,
        module_pool: nn.ModuleDict,
        op_sequence: Sequence[Operation],
        scorer: Scorer = Scorer(metrics=["accuracy"]),
        loss_func: Optional[Callable[..., torch.Tensor]] = None,
        output_func: Optional[Callable[..., torch.Tensor]] = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"A task name must be a non-empty string; found {name!r}.")
        if isinstance(module_pool, dict):
            module_pool = nn.ModuleDict(module_pool)
        if not isinstance(module_pool, nn.ModuleDict):
            raise ValueError(
                f"Task {name!r}: module_pool must be an nn.ModuleDict; found "
                f"{type(module_pool).__name__}."
            )
        op_sequence = list(op_sequence)
        _check_op_sequence(name, module_pool, op_sequence)
        if not isinstance(scorer, Scorer):
            raise ValueError(
                f"Task {name!r}: scorer must be a metal.mmtl.Scorer; found "
                f"{type(scorer).__name__}."
            )
        self.name = name
        self.module_pool = module_pool
        self.op_sequence = op_sequence
        self.scorer = scorer
        self.loss_func = loss_func if loss_func is not None else F.cross_entropy
        self.output_func = (
            output_func
            if output_func is not None
            else functools.partial(F.softmax, dim=1)
        )
        logger.info(f"Created task: {self.name}")

    @property
    def first_class(self) -> int:
        """The smallest class label (0 here, 1 for v0.5 tasks)."""
        return self.label_convention.first_class

    @property
    def ignore_label(self) -> int:
        """The label value meaning "no label" (``first_class - 1``)."""
        return self.label_convention.no_label

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name})"


# ------------------------------------------------------------------ v0.5
def _softmax_of_data(X: Dict[str, Any]) -> torch.Tensor:
    return F.softmax(X["data"], dim=1)


def _cross_entropy_of_data(X: Dict[str, Any], Y: torch.Tensor) -> torch.Tensor:
    # Labels are 1..k; cross-entropy wants 0..k-1.
    return F.cross_entropy(X["data"], Y.view(-1) - 1)


def _data(X: Dict[str, Any]) -> torch.Tensor:
    return X["data"]


def _mse_of_data(X: Dict[str, Any], Y: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(X["data"].view(-1), Y.view(-1))


def _core_module(module: nn.Module) -> nn.Module:
    """The module doing the work inside DataParallel / MetalModuleWrapper."""
    while isinstance(module, (nn.DataParallel, MetalModuleWrapper)):
        module = module.module
    return module


STAGES = ("input", "middle", "head")


class StageTask(Task):
    """MeTaL v0.5's task: input → middle → head over stage dicts (labels
    ``1..k``, ``0`` = no label). This is v0.5's ``Task`` base class.

    Each stage module is kept as is when it is a ``MetalModule`` and wrapped in
    a ``MetalModuleWrapper`` otherwise, so data flows as dicts with a
    ``"data"`` entry. ``output_hat_func(head output)`` gives probabilities (or
    regression values), ``loss_hat_func(head output, Y [B, ?])`` a scalar
    loss, which is multiplied by ``loss_multiplier``.
    """

    label_convention = ONE_BASED
    #: v0.5 predicts ``argmax + 1`` (the first of tied classes).
    tie_break_policy = "first"
    shares_modules_by_object = True

    def __init__(
        self,
        name: str,
        input_module: nn.Module,
        middle_module: nn.Module,
        head_module: nn.Module,
        output_hat_func: Callable,
        loss_hat_func: Callable,
        loss_multiplier: float,
        scorer: Scorer,
    ) -> None:
        for stage, module in zip(STAGES, (input_module, middle_module, head_module)):
            if not isinstance(module, nn.Module):
                raise ValueError(
                    f"Task {name!r}: {stage}_module must be an nn.Module; found "
                    f"{type(module).__name__}."
                )
        self.input_module = self._wrap_module(input_module)
        self.middle_module = self._wrap_module(middle_module)
        self.head_module = self._wrap_module(head_module)
        self.output_hat_func = output_hat_func
        self.loss_hat_func = loss_hat_func
        self.loss_multiplier = loss_multiplier
        pool, ops = self.stage_graph(lambda stage, module: f"{name}_{stage}_module")
        super().__init__(
            name,
            pool,
            ops,
            scorer=scorer,
            loss_func=loss_hat_func,
            output_func=output_hat_func,
        )

    @staticmethod
    def _wrap_module(module: nn.Module) -> nn.Module:
        if isinstance(module, MetalModule):
            return module
        return MetalModuleWrapper(module)

    @property
    def stage_modules(self) -> List[Tuple[str, nn.Module]]:
        """``[("input", module), ("middle", module), ("head", module)]``."""
        return list(
            zip(STAGES, (self.input_module, self.middle_module, self.head_module))
        )

    def stage_graph(
        self, key_for: Callable[[str, nn.Module], str]
    ) -> Tuple[nn.ModuleDict, List[Operation]]:
        """The module pool and three-op path, with pool keys from
        ``key_for(stage, module)``. An op's name spells out its whole path of
        keys, so two tasks share an op (and its cached output) exactly when
        they run the same modules on the same input."""
        pool = nn.ModuleDict()
        ops = []
        previous = INPUT_OP
        for stage, module in self.stage_modules:
            key = key_for(stage, module)
            pool[key] = module
            name = key if previous == INPUT_OP else f"{previous}|{key}"
            ops.append(Operation(key, [previous], name=name))
            previous = name
        return pool, ops

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name}, "
            f"loss_multiplier={self.loss_multiplier})"
        )


class ClassificationTask(StageTask):
    """A v0.5 classification task: softmax outputs, cross-entropy against
    labels ``1..k`` (``[B, 1]``; 0 = no label), accuracy by default."""

    def __init__(
        self,
        name: str,
        input_module: nn.Module = IdentityModule(),
        middle_module: nn.Module = IdentityModule(),
        head_module: nn.Module = IdentityModule(),
        output_hat_func: Callable = _softmax_of_data,
        loss_hat_func: Callable = _cross_entropy_of_data,
        loss_multiplier: float = 1.0,
        scorer: Scorer = Scorer(standard_metrics=["accuracy"]),
    ) -> None:
        super().__init__(
            name,
            input_module,
            middle_module,
            head_module,
            output_hat_func,
            loss_hat_func,
            loss_multiplier,
            scorer,
        )


class RegressionTask(StageTask):
    """A v0.5 regression task: raw outputs, mean squared error against
    targets ``[B, 1]`` (rows that are exactly 0 count as unlabelled)."""

    def __init__(
        self,
        name: str,
        input_module: nn.Module = IdentityModule(),
        middle_module: nn.Module = IdentityModule(),
        head_module: nn.Module = IdentityModule(),
        output_hat_func: Callable = _data,
        loss_hat_func: Callable = _mse_of_data,
        loss_multiplier: float = 1.0,
        scorer: Scorer = Scorer(standard_metrics=[]),
    ) -> None:
        super().__init__(
            name,
            input_module,
            middle_module,
            head_module,
            output_hat_func,
            loss_hat_func,
            loss_multiplier,
            scorer,
        )
