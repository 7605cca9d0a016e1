"""Run setup: every front door's vocabulary becomes one typed run description,
which one build step assembles and one finish step closes.

Three front doors start training runs, in two vocabularies:

* MeTaL v0.5's nested config dicts: a model's ``train_config``
  (``EndModel.train_model``, ``MTEndModel.train_model``) and
  ``MultitaskTrainer``'s ``trainer_defaults``;
* the Operation API's typed ``TrainerConfig`` (``Trainer.fit``).

Each is translated here (``from_train_config``, ``from_trainer_defaults``,
``from_trainer_config``) into a ``RunSpec``: the engine's ``EngineConfig``
plus how the run log is written (``WriterSpec``) and how checkpoints are kept
(``CheckpointSpec``). ``build_writer`` and ``build_checkpointer`` make the
objects a spec names, ``Run`` wires them as engine callbacks around the
front door's logger, trains (``Run.fit``) and ends the run (``Run.finish``).
The engine itself knows only ``EngineConfig``.
"""

import glob
import inspect
import os
import shutil
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn

from metal._checks import check_choice
from metal._io import atomic_torch_save
from metal.callbacks import Callback
from metal.distributed import DataParallel
from metal.engine import (
    LR_SCHEDULERS,
    OPTIMIZERS,
    Engine,
    EngineConfig,
    TrainingResult,
)
from metal.logging import (
    Checkpointer,
    LogWriter,
    OperationLogWriter,
    OperationTensorBoardWriter,
    TaskMetricCheckpointer,
    TensorBoardWriter,
)

WRITER_KINDS = (None, "json", "tensorboard")
# Which sub-dict of a MeTaL ``optimizer_config`` holds each optimizer's kwargs.
OPTIMIZER_SUBCONFIGS = {
    "sgd": "sgd_config",
    "adam": "adam_config",
    "adamax": "adam_config",
    "sparseadam": "adam_config",
    "rmsprop": "rmsprop_config",
}
_TORCH_OPTIMIZER_CLASSES = {
    "adamax": torch.optim.Adamax,
    "sparseadam": torch.optim.SparseAdam,
}
# Which sub-dict of a MeTaL ``lr_scheduler_config`` holds each scheduler's kwargs.
_V05_SCHEDULER_SUBCONFIG = {
    "exponential": "exponential_config",
    "reduce_on_plateau": "plateau_config",
    "step": "step_config",
}
# The schedulers each vocabulary offers.
MULTITASK_TRAINER_SCHEDULERS = (None, "linear", "exponential", "reduce_on_plateau")
TRAINER_SCHEDULERS = ("constant", "linear", "exponential", "step")
TRAINER_OPTIMIZERS = ("sgd", "adam", "adamax")

__all__ = [
    "CheckpointSpec",
    "Run",
    "RunSpec",
    "WriterSpec",
    "build_checkpointer",
    "build_writer",
    "finish_writer",
    "from_train_config",
    "from_trainer_config",
    "from_trainer_defaults",
    "optimizer_config_defaults",
    "optimizer_settings",
    "scheduler_kwargs",
]


# =========================================================== the description
@dataclass
class WriterSpec:
    """How a run's scalars and files are written.

    Attributes:
        kind: None (no run log), ``"json"`` or ``"tensorboard"``.
        face: ``"metal"`` (``LogWriter``: ``log_dir/run_dir/<run_name>_<time>``,
            ends with ``close``) or ``"operation"`` (``OperationLogWriter``:
            ``log_dir/run_name``, ends with ``cleanup``).
        kwargs: the writer's constructor arguments.
        step: the progress count each scalar is written at: ``"units"`` (log
            units), ``"examples"`` or ``"batches"``.
        config_at_start: a config written to ``config.json`` when the run
            starts (None: none).
    """

    kind: Optional[str] = None
    face: str = "metal"
    kwargs: Dict[str, Any] = field(default_factory=dict)
    step: str = "units"
    config_at_start: Any = None

    def __post_init__(self) -> None:
        check_choice(self.kind, WRITER_KINDS, "writer")


@dataclass
class CheckpointSpec:
    """How a run keeps checkpoints.

    Attributes:
        kind: None (no checkpointer), ``"metal"`` (``Checkpointer`` over a
            ``checkpoint_config`` dict) or ``"task_metrics"``
            (``TaskMetricCheckpointer`` over ``CheckpointerConfig`` fields).
        config: the checkpointer's settings (for ``"task_metrics"``, also
            ``counter_unit`` and ``evaluation_freq``).
        dir_under_writer: put the checkpoints in ``<run log
            folder>/checkpoints`` unless ``checkpoint_dir`` is given (MeTaL's
            multi-task trainer).
        cleanup: at the end of the run keep every file (``"keep"``), delete
            the periodic snapshots (``"snapshots"``, when the checkpointer's
            ``checkpoint_clear`` says so) or delete the checkpoints altogether
            (``"all"``; a folder the run created is removed).
        copy_best_to_writer: copy the best model into the run log folder.
        verbose: print checkpointing notices.
    """

    kind: Optional[str] = None
    config: Dict[str, Any] = field(default_factory=dict)
    dir_under_writer: bool = False
    cleanup: str = "keep"
    copy_best_to_writer: bool = False
    verbose: bool = False


@dataclass
class RunSpec:
    """A whole training run: the loop's ``EngineConfig``, the run log and the
    checkpoints."""

    engine: EngineConfig
    writer: WriterSpec = field(default_factory=WriterSpec)
    checkpoint: CheckpointSpec = field(default_factory=CheckpointSpec)


# ================================================== MeTaL's sub-vocabularies
def optimizer_config_defaults(optimizer: str) -> Dict[str, Any]:
    """MeTaL's default ``optimizer_config`` tree with ``optimizer`` chosen: lr
    0.01 (``optimizer_common``), SGD momentum 0.9, Adam betas (0.9, 0.999)
    (also read by adamax and sparseadam), no RMSprop settings."""
    return {
        "optimizer": optimizer,
        "optimizer_common": {"lr": 0.01},
        "sgd_config": {"momentum": 0.9},
        "adam_config": {"betas": (0.9, 0.999)},
        "rmsprop_config": {},
    }


def optimizer_settings(optimizer_config: dict) -> Tuple[str, dict]:
    """``(name, kwargs)`` from a MeTaL ``optimizer_config`` dict
    (``optimizer``, ``optimizer_common`` and the per-optimizer sub-dicts).

    Adamax and SparseAdam read ``adam_config``, as in MeTaL; the Adam settings
    they do not take (e.g. ``amsgrad``) are left out."""
    name = check_choice(optimizer_config.get("optimizer"), OPTIMIZERS, "optimizer")
    kwargs = dict(optimizer_config.get("optimizer_common") or {})
    settings = dict(optimizer_config.get(OPTIMIZER_SUBCONFIGS[name]) or {})
    if name in ("adamax", "sparseadam"):
        accepted = inspect.signature(_TORCH_OPTIMIZER_CLASSES[name]).parameters
        settings = {key: value for key, value in settings.items() if key in accepted}
    kwargs.update(settings)
    return name, kwargs


def scheduler_kwargs(name: Optional[str], lr_scheduler_config: dict) -> dict:
    """The torch scheduler kwargs for ``name`` from a MeTaL
    ``lr_scheduler_config``."""
    check_choice(name, LR_SCHEDULERS, "lr scheduler")
    key = _V05_SCHEDULER_SUBCONFIG.get(name)
    return dict((lr_scheduler_config or {}).get(key) or {}) if key else {}


def _valid_prefixed(metric: str) -> str:
    return metric if "/" in metric else f"valid/{metric}"


# ============================================================ translations
def from_train_config(
    train_config: dict,
    verbose: bool,
    device: Any,
    implements_l2: bool = False,
    has_validation: bool = True,
) -> RunSpec:
    """The run of a model's MeTaL ``train_config`` (EndModel, MTEndModel).

    As in MeTaL, a ``checkpoint_metric`` without ``/`` is rewritten in
    ``train_config`` to ``valid/<metric>``. The checkpointer is left out when
    its metric needs validation data that the run does not have (and no
    periodic snapshots are asked for).
    """
    tc = train_config
    name, optimizer_kwargs = optimizer_settings(tc["optimizer_config"])
    scheduler = tc.get("lr_scheduler")
    sched_config = tc.get("lr_scheduler_config") or {}
    logger_config = tc.get("logger_config") or {}
    cc = tc.get("checkpoint_config") or {}
    metric = _valid_prefixed(cc.get("checkpoint_metric") or "accuracy")
    engine = EngineConfig(
        n_epochs=tc["n_epochs"],
        optimizer=name,
        optimizer_kwargs=optimizer_kwargs,
        l2=0.0 if implements_l2 else (tc.get("l2") or 0.0),
        grad_clip=tc.get("grad_clip"),
        lr_scheduler=scheduler,
        lr_scheduler_kwargs=scheduler_kwargs(scheduler, sched_config),
        lr_step_unit="epochs",
        warmup_steps=sched_config.get("warmup_steps") or 0,
        warmup_unit=sched_config.get("warmup_unit") or "batches",
        min_lr=sched_config.get("min_lr") or 0.0,
        lr_freeze=sched_config.get("lr_freeze") or 0,
        plateau_metric=metric,
        plateau_mode=cc.get("checkpoint_metric_mode") or "max",
        log_unit=logger_config.get("log_unit", "epochs"),
        log_every=logger_config.get("log_train_every", 1),
        valid_every=logger_config.get("log_valid_every", 1),
        device=device,
        progress_bar=bool(tc.get("progress_bar")),
        verbose=verbose,
    )
    writer_kwargs = dict(tc.get("writer_config") or {})
    writer_kwargs.setdefault("verbose", verbose)
    writer = WriterSpec(kind=tc.get("writer"), kwargs=writer_kwargs)
    checkpoint = CheckpointSpec(verbose=verbose)
    if tc.get("checkpoint"):
        tc["checkpoint_config"]["checkpoint_metric"] = metric
        needs_validation = metric.split("/")[-2] == "valid"
        if has_validation or not needs_validation or cc.get("checkpoint_every"):
            checkpoint = CheckpointSpec(
                "metal", tc["checkpoint_config"], verbose=verbose
            )
    return RunSpec(engine, writer, checkpoint)


def from_trainer_defaults(config: dict, device: Any) -> RunSpec:
    """The run of MeTaL's ``MultitaskTrainer`` config (``trainer_defaults``).

    ``logger_config.score_every`` below 0 means "every ``log_every``" and is
    rewritten so in ``config``, as MeTaL does.
    """
    cfg = config
    verbose = bool(cfg["verbose"])
    name, optimizer_kwargs = optimizer_settings(cfg["optimizer_config"])
    scheduler = check_choice(
        cfg["lr_scheduler"], MULTITASK_TRAINER_SCHEDULERS, "lr scheduler"
    )
    sc = cfg["lr_scheduler_config"]
    cc = cfg["checkpoint_config"]
    lc = cfg["logger_config"]
    if lc["score_every"] < 0:
        lc["score_every"] = lc["log_every"]
    engine = EngineConfig(
        n_epochs=cfg["n_epochs"],
        optimizer=name,
        optimizer_kwargs=optimizer_kwargs,
        l2=cfg["l2"],
        grad_clip=cfg["grad_clip"],
        lr_scheduler=scheduler,
        lr_scheduler_kwargs=scheduler_kwargs(scheduler, sc),
        lr_step_unit="batches",
        warmup_steps=sc["warmup_steps"] or 0,
        warmup_unit=sc["warmup_unit"],
        min_lr=sc["min_lr"] or 0.0,
        plateau_metric=cc["checkpoint_metric"],
        plateau_mode=cc["checkpoint_metric_mode"],
        log_unit=lc["log_unit"],
        log_every=lc["log_every"],
        valid_every=lc["score_every"],
        loss_metric="model/train/all/loss",
        lr_metric="model/train/all/lr" if lc["log_lr"] else None,
        evaluate_at_end=bool(cfg["checkpoint"]) and bool(cc["checkpoint_best"]),
        device=device,
        progress_bar=bool(cfg["progress_bar"]),
        verbose=verbose,
    )
    writer = WriterSpec(
        kind=cfg["writer"],
        kwargs=dict(cfg["writer_config"], verbose=verbose),
        step="batches" if engine.log_unit == "epochs" else "units",
        config_at_start=cfg,
    )
    checkpoint = CheckpointSpec(verbose=verbose)
    if cfg["checkpoint"] or scheduler == "reduce_on_plateau":
        checkpoint = CheckpointSpec(
            "metal",
            dict(cc, checkpoint_every=cc["checkpoint_every"] or None),
            dir_under_writer=True,
            cleanup="all" if cfg["checkpoint_cleanup"] else "keep",
            copy_best_to_writer=True,
            verbose=verbose,
        )
    return RunSpec(engine, writer, checkpoint)


def from_trainer_config(config: Any, device: Any) -> RunSpec:
    """The run of the Operation API's ``TrainerConfig`` (``Trainer.fit``)."""
    cfg = config
    check_choice(cfg.optimizer, TRAINER_OPTIMIZERS, "optimizer")
    sub_config = getattr(cfg.optimizer_config, f"{cfg.optimizer}_config")
    check_choice(cfg.lr_scheduler, TRAINER_SCHEDULERS, "lr scheduler")
    sc = cfg.lr_scheduler_config
    sched_sub = {"exponential": sc.exponential_config, "step": sc.step_config}
    if sc.warmup_steps:
        warmup = (sc.warmup_steps, sc.warmup_unit)
        check_choice(sc.warmup_unit, ("batches", "epochs"), "warmup_unit")
    else:
        warmup = (sc.warmup_percentage or 0, "fraction")
    lc = cfg.log_manager_config
    engine = EngineConfig(
        n_epochs=cfg.n_epochs,
        optimizer=cfg.optimizer,
        optimizer_kwargs={"lr": cfg.lr, **sub_config._asdict()},
        l2=cfg.l2,
        grad_clip=cfg.grad_clip,
        lr_scheduler=None if cfg.lr_scheduler == "constant" else cfg.lr_scheduler,
        lr_scheduler_kwargs=(
            sched_sub[cfg.lr_scheduler]._asdict()
            if cfg.lr_scheduler in sched_sub
            else {}
        ),
        lr_step_unit="batches",
        warmup_steps=warmup[0],
        warmup_unit=warmup[1],
        min_lr=sc.min_lr,
        log_unit=lc.counter_unit,
        log_every=lc.evaluation_freq,
        valid_every=lc.evaluation_freq,
        loss_metric="model/all/train/loss",
        lr_metric="model/all/train/lr",
        device=device,
        progress_bar=cfg.progress_bar,
        verbose=cfg.progress_bar,
    )
    writer = WriterSpec(step="examples")
    if cfg.logging:
        writer = WriterSpec(
            kind=cfg.log_writer,
            face="operation",
            kwargs=cfg.log_writer_config._asdict(),
            step="examples",
            config_at_start=cfg,
        )
    checkpoint = CheckpointSpec()
    if cfg.checkpointing:
        checkpoint = CheckpointSpec(
            "task_metrics",
            dict(
                cfg.checkpointer_config._asdict(),
                counter_unit=lc.counter_unit,
                evaluation_freq=lc.evaluation_freq,
            ),
            cleanup="snapshots",
        )
    return RunSpec(engine, writer, checkpoint)


# ===================================================================== build
_WRITERS = {
    ("metal", "json"): LogWriter,
    ("metal", "tensorboard"): TensorBoardWriter,
    ("operation", "json"): OperationLogWriter,
    ("operation", "tensorboard"): OperationTensorBoardWriter,
}


def build_writer(spec: WriterSpec) -> Optional[LogWriter]:
    """The run-log writer a ``WriterSpec`` names (None for no run log)."""
    if spec.kind is None:
        return None
    return _WRITERS[(spec.face, spec.kind)](**spec.kwargs)


def build_checkpointer(
    spec: CheckpointSpec, writer: Optional[Any] = None
) -> Optional[Checkpointer]:
    """The checkpointer a ``CheckpointSpec`` names (None for none)."""
    if spec.kind is None:
        return None
    config = dict(spec.config)
    if spec.kind == "task_metrics":
        counter_unit = config.pop("counter_unit")
        evaluation_freq = config.pop("evaluation_freq")
        return TaskMetricCheckpointer(counter_unit, evaluation_freq, **config)
    if spec.dir_under_writer:
        given = config.get("checkpoint_dir")
        if writer is not None and hasattr(writer, "log_subdir"):
            default_dir = os.path.join(writer.log_subdir, "checkpoints")
            if given and given != default_dir:
                print(f"Using checkpoint_dir {given} given in config.")
            config["checkpoint_dir"] = given or default_dir
        else:
            config["checkpoint_dir"] = given or "checkpoints"
    return Checkpointer(config, verbose=spec.verbose)


class ScalarLog(Callback):
    """The engine callback writing each logged metric to a run-log writer
    (anything with ``add_scalar(name, value, step)``), at the progress count
    ``step`` (``"units"``, ``"examples"`` or ``"batches"``)."""

    def __init__(self, writer: Any, step: str = "units") -> None:
        self.writer = writer
        self.step = step

    def on_log(self, engine: Engine, metrics: Dict[str, Any]) -> None:
        step = engine.progress.step(self.step)
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, step)


class Run:
    """An assembled training run: its spec, the front door's logger (a
    ``metal.logging.Logger``), the run-log writer and the checkpointer, wired
    as the engine's callbacks (writer, logger, checkpointer, in that order).

    Args:
        spec: the ``RunSpec``.
        logger: the front door's logger (it prints the metric lines).
        writer: a writer to use instead of the one ``spec.writer`` names.
        parallel: the run's ``metal.distributed.DataParallel`` (from
            ``metal.distributed.data_parallel()``), or None for a
            single-process run. In a data-parallel run only rank 0 has a
            writer and a checkpointer and prints; the other ranks train
            quietly, and take rank 0's weights at the end.
    """

    def __init__(
        self,
        spec: RunSpec,
        logger: Any,
        writer: Optional[Any] = None,
        parallel: Optional[DataParallel] = None,
    ):
        self.parallel = parallel
        if parallel is not None and not parallel.is_main:
            spec, writer = _quiet(spec), None
            if hasattr(logger, "verbose"):
                logger.verbose = False
        self.spec = spec
        self.logger = logger
        self.writer = writer if writer is not None else build_writer(spec.writer)
        self._checkpoint_dir_existed = False
        self.checkpointer = build_checkpointer(spec.checkpoint, self.writer)
        if self.checkpointer is not None:
            self._checkpoint_dir_existed = os.path.isdir(
                self.checkpointer.checkpoint_dir
            )
        self.engine: Optional[Engine] = None

    @property
    def callbacks(self) -> List[Callback]:
        callbacks: List[Callback] = []
        if self.writer is not None:
            callbacks.append(ScalarLog(self.writer, self.spec.writer.step))
        callbacks.append(self.logger)
        if self.checkpointer is not None:
            callbacks.append(self.checkpointer)
        return callbacks

    def fit(
        self,
        model: nn.Module,
        batches: Any,
        step: Callable[[Any], Any],
        evaluate: Optional[Callable[[nn.Module], Dict[str, Any]]] = None,
        train_metrics: Optional[Callable[[nn.Module], Dict[str, Any]]] = None,
        batch_size_fn: Optional[Callable[[Any], int]] = None,
        extra_state: Optional[Dict[str, Any]] = None,
        batches_per_epoch: Optional[int] = None,
        examples_per_epoch: Optional[int] = None,
        restore_state: Optional[Dict[str, Any]] = None,
    ) -> TrainingResult:
        """Train ``model`` through the engine (see ``Engine.fit``)."""
        config_at_start = self.spec.writer.config_at_start
        if self.writer is not None and config_at_start is not None:
            self.writer.write_config(config_at_start)
        self.engine = Engine(
            model,
            self.spec.engine,
            self.callbacks,
            evaluate=evaluate,
            train_metrics=train_metrics,
            batch_size_fn=batch_size_fn,
            extra_state=extra_state,
            parallel=self.parallel,
        )
        return self.engine.fit(
            batches,
            step,
            batches_per_epoch=batches_per_epoch,
            examples_per_epoch=examples_per_epoch,
            restore_state=restore_state,
        )

    def finish(
        self,
        model: Optional[nn.Module] = None,
        config: Any = None,
        metrics: Optional[Dict[str, Any]] = None,
    ) -> None:
        """End the run: copy the best model to the run log folder (when the
        spec says so), clean up checkpoints as the spec says, end the run log
        (writing ``config`` and ``metrics`` when given) and, for a MeTaL
        multi-task run, save ``model``'s weights as ``model.pth`` beside it."""
        ckpt, writer, spec = self.checkpointer, self.writer, self.spec.checkpoint
        log_dir = getattr(writer, "log_subdir", None)
        if (
            spec.copy_best_to_writer
            and ckpt is not None
            and log_dir is not None
            and ckpt.best_model_found
            and os.path.exists(ckpt.best_model_path)
        ):
            shutil.copy(ckpt.best_model_path, log_dir)
        if ckpt is not None:
            self._clean_up_checkpoints(ckpt, spec.cleanup, spec.verbose)
        if writer is not None:
            finish_writer(writer, config, metrics)
            if spec.copy_best_to_writer and model is not None and log_dir is not None:
                path = os.path.join(log_dir, "model.pth")
                atomic_torch_save({"model": model.state_dict()}, path)
                if spec.verbose:
                    print(f"Saving model weights to {path}")

    def _clean_up_checkpoints(self, ckpt: Checkpointer, how: str, verbose: bool):
        if how == "snapshots":
            ckpt.clear()
        elif how == "all":
            if verbose:
                print(f"Cleaning up checkpoints in {ckpt.checkpoint_dir}")
            if self._checkpoint_dir_existed:
                _remove_checkpoint_files(ckpt)
            else:
                ckpt.clean_up()


def _quiet(spec: RunSpec) -> RunSpec:
    """``spec`` for a rank other than 0: no run log, no checkpoints, no
    printing (rank 0 does all three)."""
    return RunSpec(
        replace(spec.engine, verbose=False, progress_bar=False),
        WriterSpec(step=spec.writer.step),
        CheckpointSpec(),
    )


def finish_writer(writer: Any, config: Any, metrics: Optional[Dict[str, Any]]):
    """End a writer's run, writing ``config`` and ``metrics`` when given;
    duck-typed writers get what they support."""
    finish = getattr(writer, "finish", None)
    if callable(finish):
        finish(config=config, metrics=metrics)
        return
    if metrics is not None and hasattr(writer, "write_metrics"):
        writer.write_metrics(metrics)
    if hasattr(writer, "close"):
        writer.close()


def _remove_checkpoint_files(checkpointer: Checkpointer) -> None:
    """Delete the files this run's checkpointer writes (snapshots and best
    model) from a folder that existed before; remove it if that empties it."""
    folder = checkpointer.checkpoint_dir
    if not os.path.isdir(folder):
        return
    for path in glob.glob(os.path.join(folder, "model_checkpoint_*.pth")):
        os.remove(path)
    if os.path.exists(checkpointer.best_model_path):
        os.remove(checkpointer.best_model_path)
    if not os.listdir(folder):
        os.rmdir(folder)
