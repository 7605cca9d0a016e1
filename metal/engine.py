"""The one training loop of ``metal``.

Every trainable model trains through ``Engine.fit``. The front doors
(``train_model`` of EndModel and MTEndModel, the mmtl ``Trainer.fit`` and
``MultitaskTrainer.train_model``) are thin translations: ``metal.run`` turns
their config vocabulary into an ``EngineConfig`` (the typed run description
this loop knows) and builds the run's callbacks; the engine is handed:

* ``batches``: anything iterable once per epoch (a DataLoader, ``TensorBatches``,
  a list), or a function ``epoch -> iterable`` (e.g. a multitask batch
  scheduler). A batch may be any nesting of tuples/lists/dicts of tensors; it
  is moved to the configured device before the step.
* ``step(batch)``: computes the loss. It returns a scalar tensor (the batch's
  mean loss) or ``(loss_dict, count_dict)``: per-name mean losses (e.g. per
  task) whose plain sum is optimised, with the number of examples behind each;
  an empty ``loss_dict`` skips the batch.
* ``callbacks`` (``metal.callbacks.Callback``): the logger, the run-log
  writer, the checkpointer; and two functions ``evaluate(model) -> {name:
  value}`` (run when validation is due) and ``train_metrics(model) -> {name:
  value}`` (run at every log).

The engine owns the loop and its state (``LoopState``): the optimizer, the
learning-rate schedule (warmup, a floor), gradient clipping, the NaN check,
running losses, when to log and to validate, the progress bar and the state a
checkpoint needs to resume exactly. It returns a ``TrainingResult``.

Given a ``metal.distributed.DataParallel`` (``parallel``; the front doors make
one when a process group of several processes exists, and shard their
training data with it), the same loop trains data-parallel: the step runs
through DistributedDataParallel (gradients averaged over the ranks), shards
are reshuffled every epoch, progress counts the examples of all ranks, logged
losses are averaged over the ranks, rank 0 computes the train and validation
metrics for all, and at the end every rank takes rank 0's weights.
"""

import math
import random
import warnings
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import numpy as np
import torch
import torch.nn as nn

from metal._checks import check_choice, check_int, is_number
from metal._data import first_dim_size
from metal._io import plain_number
from metal.callbacks import Callback, Progress, check_log_unit, valid_every_logs
from metal.distributed import DataParallel
from metal.utils import _length_or_none, _resolve_device, move_to_device

OPTIMIZERS = ("sgd", "adam", "adamax", "rmsprop", "sparseadam")
LR_SCHEDULERS = (None, "constant", "exponential", "reduce_on_plateau", "linear", "step")
WARMUP_UNITS = ("batches", "epochs", "fraction")
LR_STEP_UNITS = ("epochs", "batches")


@dataclass
class EngineConfig:
    """The typed description of a training run: everything ``Engine.fit``
    needs to know besides data, loss and callbacks.

    Attributes:
        n_epochs: passes over the training batches.
        optimizer: one of ``OPTIMIZERS``.
        optimizer_kwargs: keyword arguments of the torch optimizer (``lr``,
            ``momentum``, ``betas``, ...), without ``weight_decay``.
        l2: weight decay (must be 0 for ``sparseadam``).
        grad_clip: clip the total gradient norm to this; falsy disables.
        lr_scheduler: one of ``LR_SCHEDULERS``.
        lr_scheduler_kwargs: keyword arguments of the torch scheduler
            (``gamma``; ``factor``/``patience``/...; ``step_size``).
        lr_step_unit: step the scheduler after every ``"epochs"`` or
            ``"batches"`` (``"linear"`` always steps per batch).
        warmup_steps: linear warmup length (0 = none), in ``warmup_unit``.
        warmup_unit: ``"batches"``, ``"epochs"`` or ``"fraction"`` (of all
            the run's batches).
        min_lr: floor on the learning rate after each scheduler step.
        lr_freeze: the scheduler does not step during the first
            ``lr_freeze - 1`` epochs.
        plateau_metric / plateau_mode: the logged metric ``reduce_on_plateau``
            follows and whether lower (``"min"``) or higher (``"max"``) is
            better; it steps only with a value computed since its last step.
        log_unit: the unit of ``log_every``/``valid_every``: ``"seconds"``,
            ``"examples"``, ``"batches"`` or ``"epochs"``.
        log_every: log (the running loss, the lr, train metrics) every this
            many units.
        valid_every: validate every this many units: a positive multiple of
            ``log_every``, or 0 never to validate during training.
        loss_metric: name under which the running training loss is logged.
        lr_metric: name under which the learning rate is logged (None: not).
        evaluate_at_end: validate once more after the last batch unless the
            last log already did.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, an int or a torch.device.
        progress_bar: show a tqdm bar per epoch (only when ``verbose``).
        verbose: print progress notices.
    """

    n_epochs: int = 1
    optimizer: str = "adam"
    optimizer_kwargs: Dict[str, Any] = field(default_factory=lambda: {"lr": 0.01})
    l2: float = 0.0
    grad_clip: Optional[float] = None
    lr_scheduler: Optional[str] = None
    lr_scheduler_kwargs: Dict[str, Any] = field(default_factory=dict)
    lr_step_unit: str = "epochs"
    warmup_steps: float = 0
    warmup_unit: str = "batches"
    min_lr: float = 0.0
    lr_freeze: int = 0
    plateau_metric: Optional[str] = None
    plateau_mode: str = "min"
    log_unit: str = "epochs"
    log_every: float = 1
    valid_every: float = 0
    loss_metric: str = "train/loss"
    lr_metric: Optional[str] = None
    evaluate_at_end: bool = False
    device: Any = "cpu"
    progress_bar: bool = False
    verbose: bool = False

    def __post_init__(self) -> None:
        check_int(self.n_epochs, "n_epochs", minimum=0)
        check_choice(self.optimizer, OPTIMIZERS, "optimizer")
        check_choice(self.lr_scheduler, LR_SCHEDULERS, "lr scheduler")
        check_choice(self.lr_step_unit, LR_STEP_UNITS, "lr_step_unit")
        check_choice(self.warmup_unit, WARMUP_UNITS, "warmup_unit")
        check_choice(self.plateau_mode, ("min", "max"), "plateau_mode")
        if self.warmup_steps and self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0; found {self.warmup_steps}.")
        if self.grad_clip and self.grad_clip < 0:
            raise ValueError(f"grad_clip must be >= 0; found {self.grad_clip}.")
        if self.optimizer == "sparseadam" and self.l2:
            raise ValueError(
                "The sparseadam optimizer does not support l2 (weight decay); set "
                "l2=0 or choose another optimizer."
            )
        self.log_unit = check_log_unit(self.log_unit)
        valid_every_logs(self.log_every, self.valid_every)

    @property
    def valid_every_logs(self) -> int:
        """Validate at every this many log events (0 = never)."""
        return valid_every_logs(self.log_every, self.valid_every)


@dataclass
class TrainingResult:
    """What ``Engine.fit`` hands back.

    Attributes:
        metrics: the last logged metrics dict.
        metrics_hist: the latest value of every metric logged during the run.
        epochs_completed: epochs finished (counting resumed ones).
        best_iteration / best_score: the checkpointer's best, if any.
        best_restored: whether the best model's weights were loaded at the end.
    """

    metrics: Dict[str, Any]
    metrics_hist: Dict[str, Any]
    epochs_completed: int
    best_iteration: Any = None
    best_score: Optional[float] = None
    best_restored: bool = False


# ------------------------------------------------------------------ optimizers
_TORCH_OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamax": torch.optim.Adamax,
    "rmsprop": torch.optim.RMSprop,
}


def build_optimizer(
    name: str, parameters: Iterable[nn.Parameter], optimizer_kwargs: dict, l2=0.0
) -> torch.optim.Optimizer:
    """The torch optimizer ``name`` over the trainable ``parameters``.

    ``optimizer_kwargs`` are the torch optimizer's keyword arguments; a
    non-zero ``l2`` becomes its ``weight_decay`` (``sparseadam`` has none:
    non-zero ``l2`` raises ``ValueError``).
    """
    check_choice(name, OPTIMIZERS, "optimizer")
    params = [p for p in parameters if p.requires_grad]
    kwargs = dict(optimizer_kwargs)
    if name == "sparseadam":
        if l2:
            raise ValueError(
                "The sparseadam optimizer does not support l2 (weight decay); set "
                "l2=0 or choose another optimizer."
            )
        return torch.optim.SparseAdam(params, **kwargs)
    if l2 or "weight_decay" not in kwargs:
        kwargs["weight_decay"] = l2
    lr = kwargs.get("lr", 0.0)
    finite = is_number(lr) and math.isfinite(lr) and lr >= 0
    if not (finite or isinstance(lr, torch.Tensor)):
        raise ValueError(f"lr must be a finite number >= 0; found {lr!r}.")
    try:
        return _TORCH_OPTIMIZERS[name](params, **kwargs)
    except (TypeError, ValueError) as exc:
        # torch's own checks (e.g. "Invalid beta parameter"), with the settings.
        raise ValueError(
            f"The {name} optimizer rejects the settings {kwargs}: {exc}"
        ) from None


def _check_sparse_gradients_only(model: nn.Module) -> None:
    """SparseAdam can only update parameters with sparse gradients (embeddings
    built with ``sparse=True``); name any other trainable parameter."""
    sparse_params = {
        id(module.weight)
        for module in model.modules()
        if isinstance(module, (nn.Embedding, nn.EmbeddingBag)) and module.sparse
    }
    dense = [
        name
        for name, param in model.named_parameters()
        if param.requires_grad and id(param) not in sparse_params
    ]
    if dense:
        shown = ", ".join(dense[:5]) + (" ..." if len(dense) > 5 else "")
        raise ValueError(
            "The sparseadam optimizer only updates parameters with sparse "
            "gradients (embeddings with sparse=True), but these parameters are "
            f"dense: {shown}. Use optimizer='sgd', which handles both."
        )


def warmup_batches(
    warmup_steps: float,
    warmup_unit: str,
    batches_per_epoch: Optional[int],
    total_batches: Optional[int] = None,
) -> int:
    """Warmup length in batches: ``int(warmup_steps)`` batches,
    ``int(warmup_steps * batches_per_epoch)`` for ``"epochs"``, or
    ``int(warmup_steps * total_batches)`` for ``"fraction"`` (of the whole run);
    0 when ``warmup_steps`` is falsy."""
    if not warmup_steps:
        return 0
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0; found {warmup_steps}.")
    if warmup_unit == "batches":
        return int(warmup_steps)
    if warmup_unit == "epochs":
        if not batches_per_epoch:
            raise ValueError(
                "warmup_unit='epochs' needs the number of batches per epoch; use "
                "warmup_unit='batches' with batches whose length is unknown."
            )
        return int(warmup_steps * batches_per_epoch)
    if warmup_unit == "fraction":
        if not total_batches:
            raise ValueError(
                "A warmup given as a fraction of the run needs the total number of "
                "batches; the training batches must have a length."
            )
        return int(warmup_steps * total_batches)
    raise ValueError(
        f"warmup_unit must be one of {list(WARMUP_UNITS)}; found {warmup_unit!r}."
    )


# ---------------------------------------------------------------- lr schedule
class LRSchedule:
    """Warmup, then a torch scheduler stepped per epoch or per batch, then a floor.

    Warmup scales every group's learning rate by ``b / warmup_batches`` after
    ``b`` batches (so the first batch trains at 0, as in MeTaL's trainers); the
    main scheduler steps once warmup is over, never before epoch
    ``lr_freeze - 1``, and ``reduce_on_plateau`` only with a fresh metric value.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        name: Optional[str] = None,
        scheduler_kwargs: Optional[dict] = None,
        step_unit: str = "epochs",
        warmup_batches: int = 0,
        total_batches: Optional[int] = None,
        min_lr: float = 0.0,
        lr_freeze: int = 0,
        plateau_metric: Optional[str] = None,
        plateau_mode: str = "min",
    ):
        self.optimizer = optimizer
        self.name = name
        self.step_unit = "batches" if name == "linear" else step_unit
        self.warmup_batches = warmup_batches
        self.min_lr = min_lr or 0.0
        self.lr_freeze = lr_freeze or 0
        self.plateau_metric = plateau_metric
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.scheduler = self._build(
            name, dict(scheduler_kwargs or {}), total_batches, plateau_mode
        )
        self.batches_seen = 0
        self._pending_metric = None
        if self.warmup_batches:
            self._scale_lrs(0.0)

    def _build(self, name, kwargs, total_batches, plateau_mode):
        check_choice(name, LR_SCHEDULERS, "lr scheduler")
        opt = self.optimizer
        if name in (None, "constant"):
            return None
        if name == "exponential":
            return torch.optim.lr_scheduler.ExponentialLR(opt, **kwargs)
        if name == "step":
            return torch.optim.lr_scheduler.StepLR(opt, **kwargs)
        if name == "reduce_on_plateau":
            kwargs.setdefault("mode", plateau_mode)
            return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
        # "linear"
        if not total_batches:
            raise ValueError(
                "lr_scheduler='linear' needs the total number of batches; the "
                "training batches must have a length."
            )
        decay = max(1, total_batches - self.warmup_batches)
        return torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: max(0.0, (decay - step) / decay)
        )

    @property
    def steps_per_batch(self) -> bool:
        """Whether ``on_batch_end`` has anything to do (warmup or per-batch
        stepping); otherwise callers may skip it."""
        return bool(self.warmup_batches) or (
            self.step_unit == "batches" and self.scheduler is not None
        )

    @property
    def in_warmup(self) -> bool:
        return self.batches_seen < self.warmup_batches

    def observe(self, metrics: Dict[str, Any]) -> None:
        """Note freshly logged metrics (the plateau scheduler's input)."""
        if self.plateau_metric is not None and self.plateau_metric in metrics:
            self._pending_metric = float(metrics[self.plateau_metric])

    def on_batch_end(self, epoch: int) -> None:
        self.batches_seen += 1
        if self.batches_seen <= self.warmup_batches:
            self._scale_lrs(self.batches_seen / self.warmup_batches)
            return
        if self.step_unit == "batches":
            self._step(epoch)

    def on_epoch_end(self, epoch: int) -> None:
        if self.step_unit == "epochs" and not self.in_warmup:
            self._step(epoch)

    def _step(self, epoch: int) -> None:
        if self.scheduler is None or epoch + 1 < self.lr_freeze:
            return
        if self.name == "reduce_on_plateau":
            if self._pending_metric is None:
                return
            self.scheduler.step(self._pending_metric)
            self._pending_metric = None
        else:
            self.scheduler.step()
        if self.min_lr:
            for group in self.optimizer.param_groups:
                group["lr"] = max(group["lr"], self.min_lr)

    def _scale_lrs(self, factor: float) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor

    def state_dict(self) -> Dict[str, Any]:
        return {
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "batches_seen": self.batches_seen,
            "pending_metric": self._pending_metric,
        }

    def load_state_dict(self, state: Optional[Dict[str, Any]]) -> None:
        if not state:
            return
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.batches_seen = state.get("batches_seen", 0)
        self._pending_metric = state.get("pending_metric")


# --------------------------------------------------------------------- state
class RunningLoss:
    """Example-weighted running means of the losses since the last log."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total = 0.0
        self.examples = 0
        self.parts: Dict[str, list] = {}

    def add(self, value: float, count: int, parts=None) -> None:
        if parts:
            for name, (part_value, part_count) in parts.items():
                if part_count > 0:
                    acc = self.parts.setdefault(name, [0.0, 0])
                    acc[0] += part_value * part_count
                    acc[1] += part_count
                    self.total += part_value * part_count
                    self.examples += part_count
        elif count > 0:
            self.total += value * count
            self.examples += count

    def means(self, total_name: str) -> Dict[str, float]:
        metrics = {name: s / c for name, (s, c) in self.parts.items()}
        if self.examples:
            metrics[total_name] = self.total / self.examples
        return metrics

    def state_dict(self) -> Dict[str, Any]:
        return {"total": self.total, "examples": self.examples, "parts": self.parts}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.total = state["total"]
        self.examples = state["examples"]
        self.parts = {name: list(acc) for name, acc in state["parts"].items()}


@dataclass
class LoopState:
    """Where the loop stands: everything a checkpoint stores to resume exactly.

    Attributes:
        progress: the run's ``Progress`` (examples, batches, epochs, log units).
        running: the running losses since the last log.
        epoch: the current epoch (0-based).
        batches_done: batches of the current epoch done.
        epochs_completed: epochs finished.
        metrics_hist: the latest value of every metric logged.
        last_metrics: the metrics of the last log event.
        validated: whether validation ever ran.
        last_log_validated: whether the last log event validated.
        batches_seen: batches trained in this process (not stored).
        epoch_start_rng: RNG states at the start of the current epoch (a
            resumed epoch replays its batch order from them).
        resume_rng: RNG states of the checkpoint being resumed.
    """

    progress: Progress
    running: RunningLoss = field(default_factory=RunningLoss)
    epoch: int = 0
    batches_done: int = 0
    epochs_completed: int = 0
    metrics_hist: Dict[str, Any] = field(default_factory=dict)
    last_metrics: Dict[str, Any] = field(default_factory=dict)
    validated: bool = False
    last_log_validated: bool = False
    batches_seen: int = 0
    epoch_start_rng: Optional[Dict[str, Any]] = None
    resume_rng: Optional[Dict[str, Any]] = None

    def state_dict(self, epoch_finished: bool, device=None) -> Dict[str, Any]:
        """Plain data (tensors and Python values) for a checkpoint."""
        return {
            "epoch": self.epoch,
            "batches_done": self.batches_done,
            "epoch_finished": bool(epoch_finished),
            "epochs_completed": self.epochs_completed,
            "logger": self.progress.state_dict(),
            "running": self.running.state_dict(),
            "metrics_hist": _plain_metrics(self.metrics_hist),
            "validated": self.validated,
            "rng": capture_rng_state(device),
            "epoch_start_rng": self.epoch_start_rng,
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.epoch = state["epoch"]
        self.batches_done = state["batches_done"]
        self.epochs_completed = state["epochs_completed"]
        self.progress.load_state_dict(state["logger"])
        self.running.load_state_dict(state["running"])
        self.metrics_hist = dict(state["metrics_hist"])
        self.validated = state.get("validated", False)
        self.epoch_start_rng = state["epoch_start_rng"]
        self.resume_rng = state["rng"]


# --------------------------------------------------------------------- engine
class Engine:
    """Trains ``model`` by the settings in ``config`` (see the module docstring).

    Args:
        model: the ``nn.Module`` whose parameters are optimised.
        config: an ``EngineConfig``.
        callbacks: ``metal.callbacks.Callback``s (logger, writer, checkpointer),
            called in this order.
        evaluate: ``f(model) -> {metric name: value}``, run (in eval mode, under
            ``torch.no_grad``) whenever validation is due.
        train_metrics: ``f(model) -> {metric name: value}`` run at every log.
        batch_size_fn: ``f(batch) -> int`` examples in a batch (default: the
            first dimension of the first tensor found in it).
        extra_state: plain data stored in every checkpoint (e.g. the front
            door's config), under ``bundle["training_state"]["extra"]``.
        parallel: a ``metal.distributed.DataParallel`` to train data-parallel
            (the batches must be this rank's shard, see
            ``DataParallel.shard``), or None for a single process.

    During and after ``fit``: ``state`` (a ``LoopState``), ``progress``,
    ``optimizer``, ``lr_schedule`` (and ``lr_scheduler``, the torch scheduler
    or None), ``metrics_hist``.
    """

    def __init__(
        self,
        model: nn.Module,
        config: EngineConfig,
        callbacks: Sequence[Callback] = (),
        evaluate: Optional[Callable[[nn.Module], Dict[str, Any]]] = None,
        train_metrics: Optional[Callable[[nn.Module], Dict[str, Any]]] = None,
        batch_size_fn: Optional[Callable[[Any], int]] = None,
        extra_state: Optional[Dict[str, Any]] = None,
        parallel: Optional[DataParallel] = None,
    ) -> None:
        self.model = model
        self.config = config
        self.callbacks = list(callbacks)
        self.evaluate = evaluate
        self.train_metrics = train_metrics
        self.batch_size_fn = batch_size_fn or first_dim_size
        self.extra_state = extra_state
        self.parallel = parallel
        self.device = _resolve_device(config.device)
        # Progress counts the examples of all ranks; logs timed by the clock
        # happen when rank 0's clock says (clocks differ between ranks).
        self._world_size = 1
        self._agree_on_clock = False
        if parallel is not None:
            self.device = parallel.device(config.device)
            self._world_size = parallel.world_size
            self._agree_on_clock = config.log_unit == "seconds"
        self.optimizer: Optional[torch.optim.Optimizer] = None
        self.lr_schedule: Optional[LRSchedule] = None
        self.state = LoopState(Progress(config.log_unit))
        self._valid_every_logs = config.valid_every_logs
        self._move_batches = False
        self._per_batch_schedule = True
        self._clip_params: list = []

    @property
    def progress(self) -> Progress:
        return self.state.progress

    @property
    def metrics_hist(self) -> Dict[str, Any]:
        return self.state.metrics_hist

    @property
    def lr_scheduler(self):
        return self.lr_schedule.scheduler if self.lr_schedule is not None else None

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        batches: Union[Iterable, Callable[[int], Iterable]],
        step: Callable[[Any], Any],
        batches_per_epoch: Optional[int] = None,
        examples_per_epoch: Optional[int] = None,
        restore_state: Optional[Dict[str, Any]] = None,
    ) -> TrainingResult:
        """Train for ``config.n_epochs`` epochs (from a checkpoint when
        ``restore_state``, a dict read from a checkpoint file, is given)."""
        cfg = self.config
        if batches_per_epoch is None and not _is_epoch_factory(batches):
            batches_per_epoch = _length_or_none(batches)
        progress = self.progress
        progress.batches_per_epoch = batches_per_epoch
        progress.epoch_size = examples_per_epoch
        self.model.to(self.device)
        if self.parallel is not None:
            step = self.parallel.start(self.model, step, self.device)
        self._build_optimization(batches_per_epoch)
        for callback in self.callbacks:
            callback.on_fit_start(self)
        start_epoch, skip = 0, 0
        if restore_state:
            start_epoch, skip = self._restore(restore_state)
        self.model.train()
        for epoch in range(start_epoch, cfg.n_epochs):
            self._run_epoch(epoch, batches, step, skip, batches_per_epoch)
            skip = 0
            self._end_epoch(epoch)
        if cfg.evaluate_at_end and self.evaluate is not None:
            self._final_evaluation()
        self.model.eval()
        result = TrainingResult(
            metrics=dict(self.state.last_metrics),
            metrics_hist=dict(self.state.metrics_hist),
            epochs_completed=self.state.epochs_completed,
        )
        for callback in self.callbacks:
            callback.on_fit_end(self, result)
        if self.parallel is not None:
            self.parallel.finish(self.model, result)
        return result

    def _build_optimization(self, batches_per_epoch: Optional[int]) -> None:
        cfg = self.config
        if cfg.optimizer == "sparseadam":
            _check_sparse_gradients_only(self.model)
        self.optimizer = build_optimizer(
            cfg.optimizer, self.model.parameters(), cfg.optimizer_kwargs, cfg.l2
        )
        total = (batches_per_epoch or 0) * cfg.n_epochs
        warmup = warmup_batches(
            cfg.warmup_steps, cfg.warmup_unit, batches_per_epoch, total
        )
        self.lr_schedule = LRSchedule(
            self.optimizer,
            cfg.lr_scheduler,
            cfg.lr_scheduler_kwargs,
            step_unit=cfg.lr_step_unit,
            warmup_batches=warmup,
            total_batches=total,
            min_lr=cfg.min_lr,
            lr_freeze=cfg.lr_freeze,
            plateau_metric=cfg.plateau_metric,
            plateau_mode=cfg.plateau_mode,
        )
        self._move_batches = self.device.type != "cpu"
        self._per_batch_schedule = self.lr_schedule.steps_per_batch
        # Listed once: walking the module tree for every batch costs more than
        # the clipping itself for small models.
        self._clip_params = list(self.model.parameters())

    # ---------------------------------------------------------------- epochs
    def _run_epoch(self, epoch, batches, step, skip, batches_per_epoch) -> None:
        state = self.state
        state.epoch = epoch
        if skip:
            set_rng_state(state.epoch_start_rng)
        else:
            state.epoch_start_rng = capture_rng_state(self.device)
        if self.parallel is not None:
            self.parallel.set_epoch(epoch)
        iterable = batches(epoch) if _is_epoch_factory(batches) else batches
        iterator = iter(iterable)
        for _ in range(skip):
            next(iterator)
        if skip:
            set_rng_state(state.resume_rng)
        state.batches_done = skip
        bar = self._progress_bar(batches_per_epoch, skip)
        closed = False
        try:
            for batch, is_last in _flag_last(iterator, batches_per_epoch, skip):
                loss = self._train_on_batch(batch, step, is_last)
                closed = is_last
                if bar is not None:
                    bar.update(1)
                    if loss is not None:
                        bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        finally:
            if bar is not None:
                bar.close()
        if not closed:
            self._close_short_epoch()

    def _progress_bar(self, batches_per_epoch: Optional[int], skip: int):
        """The epoch's tqdm bar (notebook-aware), or None unless ``progress_bar``
        and ``verbose``."""
        if not (self.config.progress_bar and self.config.verbose):
            return None
        with warnings.catch_warnings():
            # Without ipywidgets tqdm warns, then falls back to the text bar.
            warnings.simplefilter("ignore")
            from tqdm.auto import tqdm
        return tqdm(
            total=batches_per_epoch,
            initial=skip,
            desc=f"Epoch {self.state.epoch + 1}/{self.config.n_epochs}",
            leave=False,
        )

    def _close_short_epoch(self) -> None:
        """The batches ended before their announced length: count the epoch end."""
        progress = self.progress
        progress.end_epoch()
        metrics = None
        if self._log_due():
            metrics = self._log_metrics(validate=None)
        self._batch_end(metrics, is_last=True)

    def _end_epoch(self, epoch: int) -> None:
        self.lr_schedule.on_epoch_end(epoch)
        self.state.epochs_completed = epoch + 1

    # --------------------------------------------------------------- batches
    def _train_on_batch(self, batch, step, is_last: bool) -> Optional[float]:
        # The hot path: keep Python work per batch to a minimum.
        if self._move_batches:
            batch = move_to_device(batch, self.device)
        batch_size = self.batch_size_fn(batch)
        self.optimizer.zero_grad(set_to_none=True)
        out = step(batch)
        state = self.state
        state.batches_seen += 1
        if type(out) is torch.Tensor:
            loss, parts = out, None
        else:
            loss, parts = _total_loss(out, batch_size)
        value = None
        if loss is None and self.parallel is not None:
            # Every rank joins every gradient all-reduce, steps and counts the
            # batch alike (so that all ranks agree when to log).
            self.parallel.zero_loss(self.model).backward()
            self._optimizer_step()
        elif loss is not None:
            value = loss.item()
            if value != value:  # NaN
                raise FloatingPointError(
                    "The training loss is NaN; try a smaller learning rate."
                )
            loss.backward()
            if self.config.grad_clip:
                nn.utils.clip_grad_norm_(self._clip_params, self.config.grad_clip)
            self.optimizer.step()
            state.running.add(value, batch_size, parts)
        elif not is_last:
            return None
        else:
            batch_size = 0
        state.batches_done += 1
        progress = state.progress
        progress.increment(batch_size * self._world_size, is_last)
        metrics = None
        due = progress.unit_count >= self.config.log_every
        if self._agree_on_clock:
            due = self.parallel.agree(due)
        if due:
            metrics = self._log_metrics(validate=None)
        if self._per_batch_schedule:
            self.lr_schedule.on_batch_end(state.epoch)
        self._batch_end(metrics, is_last)
        return value

    def _optimizer_step(self) -> None:
        if self.config.grad_clip:
            nn.utils.clip_grad_norm_(self._clip_params, self.config.grad_clip)
        self.optimizer.step()

    def _log_due(self) -> bool:
        due = self.state.progress.unit_count >= self.config.log_every
        if self._agree_on_clock:
            due = self.parallel.agree(due)
        return due

    def _batch_end(self, metrics: Optional[Dict[str, Any]], is_last: bool) -> None:
        for callback in self.callbacks:
            callback.on_batch_end(self, metrics, is_last)

    def _log_metrics(self, validate: Optional[bool]) -> Dict[str, Any]:
        """Collect the metrics of one log event and hand them to the callbacks."""
        state = self.state
        running = state.running
        if self.parallel is not None:
            running = _merged_running(self.parallel.gather(running.state_dict()))
        metrics = running.means(self.config.loss_metric)
        state.running.reset()
        if self.config.lr_metric:
            metrics[self.config.lr_metric] = self.optimizer.param_groups[0]["lr"]
        progress = state.progress
        progress.log_count += 1
        if validate is None:
            every = self._valid_every_logs
            validate = bool(every) and progress.log_count % every == 0
        validate = validate and self.evaluate is not None
        if self.train_metrics is not None or validate:
            metrics.update(self._computed_metrics(validate))
        state.last_log_validated = validate
        state.validated = state.validated or validate
        for callback in self.callbacks:
            callback.on_log(self, metrics)
        progress.reset()
        state.metrics_hist.update(metrics)
        state.last_metrics = metrics
        self.lr_schedule.observe(metrics)
        return metrics

    def _computed_metrics(self, validate: bool) -> Dict[str, Any]:
        """Train metrics and (when ``validate``) validation metrics; in a
        data-parallel run rank 0 computes them and every rank gets its values,
        so all ranks take the same checkpoint and schedule decisions."""
        computed: Dict[str, Any] = {}
        if self.parallel is None or self.parallel.is_main:
            self.model.eval()
            with torch.no_grad():
                if self.train_metrics is not None:
                    computed.update(self.train_metrics(self.model))
                if validate:
                    computed.update(self.evaluate(self.model))
            self.model.train()
        if self.parallel is not None:
            computed = self.parallel.from_main(computed)
        return computed

    def _final_evaluation(self) -> None:
        if self.state.last_log_validated:
            return
        metrics = self._log_metrics(validate=True)
        self._batch_end(metrics, is_last=True)

    # ----------------------------------------------------------- checkpoints
    def training_state(self, epoch_finished: bool) -> Dict[str, Any]:
        """The loop's state for a checkpoint (``bundle["training_state"]``)."""
        state = self.state.state_dict(epoch_finished, self.device)
        state["extra"] = self.extra_state
        return state

    def _restore(self, bundle: Dict[str, Any]) -> Tuple[int, int]:
        """Load a checkpoint's state; return ``(epoch, batches to skip)``."""
        saved = bundle.get("training_state")
        if saved is None:
            raise ValueError(
                "This checkpoint holds no training state (epoch, counters, RNG), so "
                "training cannot be resumed from it."
            )
        self.model.load_state_dict(bundle["model"])
        if bundle.get("optimizer") is not None:
            self.optimizer.load_state_dict(bundle["optimizer"])
        self.lr_schedule.load_state_dict(bundle.get("lr_scheduler"))
        state = self.state
        state.load_state_dict(saved)
        for callback in self.callbacks:
            callback.on_resume(self, bundle)
        epoch, done = state.epoch, state.batches_done
        if self.config.verbose:
            print(f"Resuming training at epoch {epoch + 1}, after {done} batches.")
        if saved["epoch_finished"]:
            set_rng_state(state.resume_rng)
            self._end_epoch(epoch)
            return epoch + 1, 0
        return epoch, done


# -------------------------------------------------------------------- helpers
def _total_loss(out, batch_size: int):
    """``(loss tensor or None, per-name (value, count) or None)`` from a step."""
    if isinstance(out, torch.Tensor):
        return out, None
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], dict):
        loss_dict, count_dict = out
    elif isinstance(out, dict):
        loss_dict, count_dict = out, {}
    else:
        raise TypeError(
            "The training step must return a scalar loss tensor or (loss_dict, "
            f"count_dict); it returned {type(out).__name__}."
        )
    if not loss_dict:
        return None, None
    count_dict = count_dict or {}
    if len(loss_dict) == 1:
        # One part (e.g. a multi-task batch from a single dataset): the sum is
        # the part itself.
        ((name, total),) = loss_dict.items()
        return total, {name: (total.item(), int(count_dict.get(name, batch_size)))}
    total = torch.stack([loss for loss in loss_dict.values()]).sum()
    parts = {
        name: (loss.item(), int(count_dict.get(name, batch_size)))
        for name, loss in loss_dict.items()
    }
    return total, parts


def _merged_running(states: Sequence[Dict[str, Any]]) -> RunningLoss:
    """One ``RunningLoss`` summing the states of several ranks."""
    merged = RunningLoss()
    for state in states:
        merged.total += state["total"]
        merged.examples += state["examples"]
        for name, (total, count) in state["parts"].items():
            acc = merged.parts.setdefault(name, [0.0, 0])
            acc[0] += total
            acc[1] += count
    return merged


def _flag_last(iterator: Iterator, length: Optional[int] = None, start: int = 0):
    """Yield ``(item, is_last)``: by position when the length is known (a
    lookahead would fetch the next batch before the step, evicting caches),
    else with one item of lookahead."""
    if length:
        last = length - 1
        for position, item in enumerate(iterator, start):
            yield item, position >= last
        return
    try:
        current = next(iterator)
    except StopIteration:
        return
    for upcoming in iterator:
        yield current, False
        current = upcoming
    yield current, True


def _is_epoch_factory(batches) -> bool:
    return callable(batches) and not hasattr(batches, "__iter__")


def _plain_metrics(metrics: Dict[str, Any]) -> Dict[str, Any]:
    plain = {}
    for name, value in metrics.items():
        value = plain_number(value)
        if isinstance(value, (int, float, str, bool, type(None))):
            plain[name] = value
    return plain


# ------------------------------------------------------------------------ RNG
def capture_rng_state(device=None) -> Dict[str, Any]:
    """Python, NumPy and torch RNG states as tensors and plain values (safe and
    quick to store in checkpoints)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, torch.tensor(internal, dtype=torch.int64), gauss],
        "numpy": [
            name,
            torch.from_numpy(keys.astype(np.int64)),
            int(pos),
            int(has_gauss),
            float(cached),
        ],
        "torch": torch.get_rng_state(),
        "cuda": None,
    }
    if device is not None and torch.device(device).type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Optional[Dict[str, Any]]) -> None:
    """Restore states captured by ``capture_rng_state``."""
    if not state:
        return
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal.tolist()), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    keys = np.asarray(keys.tolist(), dtype=np.uint32)
    np.random.set_state((name, keys, pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
