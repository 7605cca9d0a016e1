"""Training multi-task models: two front doors onto ``metal.engine.Engine``.

* ``Trainer(**config).fit(model, dataloaders)`` — the Operation API's trainer
  (``TrainerConfig`` vocabulary; ``DictDataLoader``s; metric names
  ``task/dataset/split/metric``, ``model/all/train/loss``).
* ``MultitaskTrainer(**config).train_model(model, payloads, **config)`` —
  MeTaL v0.5's trainer (``trainer_defaults`` vocabulary; ``Payload``s; metric
  names ``task/payload/label_set/metric``, ``model/train/all/loss``).

Both are thin translations: ``metal.run`` turns their config into a run
description and assembles the run (writer, checkpointer, and the front door's
logger: ``LogManager`` for ``Trainer``, the v0.5 ``Logger`` for
``MultitaskTrainer``); the trainers add a batch scheduler (a function ``epoch
-> batches``) and a step that sums the per-label-set mean losses of one
batch, and the engine does the rest (optimizer, warmup, lr schedule, gradient
clipping, logging, checkpointing, progress bar, restoring the best model).

Under a ``torch.distributed`` process group of several processes both train
data-parallel (``metal.distributed``): each rank reads its shard of every
train loader (or train payload), gradients are averaged over the ranks, rank 0
alone scores, prints, writes the run log and checkpoints, and every rank ends
with rank 0's (best) weights.
"""

import logging
import random
from typing import Any, Dict, List, Optional, Sequence, Tuple

from metal._checks import check_choice
from metal._data import leading_dim
from metal._io import (
    atomic_torch_save,
    check_entries,
    plain_number,
    safe_torch_load,
)
from metal.distributed import DataParallel, data_parallel, is_main_process
from metal.engine import build_optimizer
from metal.logging import LogManager
from metal.mmtl.classifier import MultitaskClassifier
from metal.mmtl.config import TrainerConfig, config_to_dict, merge_config
from metal.mmtl.metal_model import score_payload
from metal.mmtl.mmtl_logger import Logger
from metal.mmtl.schedulers import batch_schedulers
from metal.mmtl.task_scheduler import ProportionalScheduler
from metal.run import (
    Run,
    from_trainer_config,
    from_trainer_defaults,
    optimizer_config_defaults,
)
from metal.utils import merge_config as merge_metal_config
from metal.utils import set_seed

logger = logging.getLogger(__name__)

__all__ = ["MultitaskTrainer", "Trainer", "trainer_defaults"]


def _label_rows(item: Any) -> int:
    """Examples in a multi-task batch item: rows of its first label set."""
    (_, Y_dict), *_ = item
    return leading_dim(Y_dict) or 0


def _data_parallel(model: MultitaskClassifier) -> Optional[DataParallel]:
    """The run's ``DataParallel`` (None without a process group); a model on
    CUDA moves to this rank's device."""
    parallel = data_parallel(find_unused_parameters=True)
    if parallel is not None:
        device = parallel.device(model._device)
        if device != model._device:
            model._device_id = device.index
            model._move_to_device()
    return parallel


# ============================================================ Operation API
class Trainer:
    """Trains a ``MultitaskClassifier`` on ``DictDataLoader``s.

    Args:
        name: trainer name (default: the class name).
        **kwargs: ``TrainerConfig`` fields, nested settings as dicts (e.g.
            ``lr_scheduler_config={"warmup_steps": 2}``). ``seed`` seeds all
            RNGs at the start of ``fit``.

    Attributes after ``fit``: ``optimizer``, ``lr_scheduler`` (torch's or
    None), ``warmup_steps`` (in batches), ``metrics`` (latest value of every
    logged metric), ``log_manager``, ``log_writer`` and ``checkpointer`` (or
    None).

    With ``checkpointing``, snapshots ``checkpoint_<n>.pth`` are written to
    ``checkpoint_dir`` every ``evaluation_freq * checkpoint_factor`` units and
    the best model of each tracked metric to ``best_model_<metric>.pth``; at
    the end the snapshots are cleared (``checkpoint_clear``) and the best
    model of ``checkpoint_metric`` is loaded. With ``logging``, the writer
    gets every logged metric (step: points seen) and, for ``"json"``, writes
    them to ``<log_dir>/<run_name>/log.json`` at the end.
    """

    def __init__(self, name: Optional[str] = None, **kwargs: Any) -> None:
        self.config: TrainerConfig = merge_config(TrainerConfig(), kwargs)
        self.name = name if name is not None else type(self).__name__

    # ------------------------------------------------------------------ fit
    def fit(self, model: MultitaskClassifier, dataloaders: List[Any]) -> None:
        """Train ``model`` on the loaders whose split is ``train_split``,
        scoring those of ``valid_split`` at every evaluation.

        Labels: each train loader's label sets must be named after tasks of
        the model (``0..k-1``, ``-1`` = no label, or ``[n, k]`` probabilities
        for tasks with ``cross_entropy_with_probs``).

        Raises:
            ValueError: for loaders of other splits ("Dataloader splits must
                be one of ..."), no train loader ("Cannot find any dataloaders
                ..."), a train label set with no task of that name, or an
                unknown writer / optimizer / lr scheduler / batch scheduler.
        """
        cfg = self.config
        self._check_dataloaders(dataloaders)
        train_loaders = [
            dl for dl in dataloaders if dl.dataset.split == cfg.train_split
        ]
        valid_loaders = [
            dl for dl in dataloaders if dl.dataset.split == cfg.valid_split
        ]
        self._train_routes(model, train_loaders)
        if cfg.seed is not None:
            set_seed(cfg.seed)
        parallel = _data_parallel(model)
        if parallel is not None:
            train_loaders = [parallel.shard(loader) for loader in train_loaders]
        routes = self._train_routes(model, train_loaders)
        n_batches_per_epoch = sum(len(dl) for dl in train_loaders)
        self.log_manager = LogManager(
            n_batches_per_epoch, **cfg.log_manager_config._asdict()
        )
        spec = from_trainer_config(cfg, model._device)
        batch_scheduler = self._set_batch_scheduler()
        run = Run(spec, self.log_manager, parallel=parallel)
        self.log_writer = self.log_manager.log_writer = run.writer
        self.checkpointer = self.log_manager.checkpointer = run.checkpointer

        def step(item):
            (X_dict, Y_dict), loader = item
            labels_to_tasks, names = routes[id(loader)]
            loss_dict, count_dict = model._label_losses(X_dict, Y_dict, labels_to_tasks)
            return (
                {names[label]: loss for label, loss in loss_dict.items()},
                {names[label]: count_dict[label] for label in loss_dict},
            )

        def evaluate(trained_model):
            return trained_model._score_dataloaders(valid_loaders)

        model.train()
        result = run.fit(
            model,
            lambda epoch: batch_scheduler.get_batches(train_loaders),
            step,
            evaluate=evaluate if valid_loaders else None,
            batch_size_fn=_label_rows,
            batches_per_epoch=n_batches_per_epoch,
        )
        self.optimizer = run.engine.optimizer
        self.lr_scheduler = run.engine.lr_scheduler
        self.warmup_steps = run.engine.lr_schedule.warmup_batches
        self.metrics = dict(result.metrics_hist)
        run.finish()

    def _check_dataloaders(self, dataloaders: List[Any]) -> None:
        cfg = self.config
        all_splits = [cfg.train_split, cfg.valid_split, cfg.test_split]
        if not all(dl.dataset.split in all_splits for dl in dataloaders):
            raise ValueError(f"Dataloader splits must be one of {all_splits}")
        if not any(dl.dataset.split == cfg.train_split for dl in dataloaders):
            raise ValueError(
                "Cannot find any dataloaders with split matching train split: "
                f"{cfg.train_split}."
            )

    @staticmethod
    def _train_routes(model, train_loaders) -> Dict[int, Tuple[dict, dict]]:
        """Per train loader: ``labels_to_tasks`` and loss names
        ``<task>/<dataset>/<split>/loss`` (a label set without a task of its
        name is an error: its labels would silently train nothing)."""
        routes = {}
        for loader in train_loaders:
            dataset = loader.dataset
            unknown = [label for label in dataset.Y_dict if label not in model.tasks]
            if unknown:
                raise ValueError(
                    f"Train dataset {dataset.name!r} has label set(s) {unknown} that "
                    f"match no task of the model (tasks: {list(model.tasks)}); name "
                    "each label set after the task it trains."
                )
            labels_to_tasks = {label: label for label in dataset.Y_dict}
            names = {
                label: f"{label}/{dataset.name}/{dataset.split}/loss"
                for label in labels_to_tasks
            }
            routes[id(loader)] = (labels_to_tasks, names)
        return routes

    # ---------------------------------------------------------------- setup
    def _set_batch_scheduler(self):
        name = self.config.batch_scheduler
        check_choice(name, batch_schedulers, "batch scheduler")
        return batch_schedulers[name]()

    # ---------------------------------------------------------- persistence
    def save(self, trainer_path: str) -> None:
        """Write the config and the optimizer state to ``trainer_path``."""
        atomic_torch_save(
            {
                "trainer_config": config_to_dict(self.config),
                "optimizer_state_dict": self.optimizer.state_dict(),
            },
            trainer_path,
        )
        logger.info(f"Saved trainer config and optimizer state to {trainer_path}.")

    def load(self, trainer_path: str, model: Optional[MultitaskClassifier]) -> None:
        """Restore the config (and, given ``model``, a fresh optimizer over its
        parameters holding the saved state) from ``trainer_path``; read with
        ``weights_only=True``."""
        try:
            saved = safe_torch_load(trainer_path, "trainer file")
            check_entries(saved, trainer_path, {"trainer_config": dict}, "trainer file")
        except Exception:
            logger.error(f"Could not load a trainer from {trainer_path}.")
            raise
        self.config = merge_config(TrainerConfig(), dict(saved["trainer_config"]))
        if model is None:
            return
        try:
            engine = from_trainer_config(self.config, "cpu").engine
            self.optimizer = build_optimizer(
                engine.optimizer, model.parameters(), engine.optimizer_kwargs, engine.l2
            )
            self.optimizer.load_state_dict(saved["optimizer_state_dict"])
        except Exception as exc:
            logger.error(f"Could not restore the optimizer state: {exc!r}")


# ================================================================ MeTaL v0.5
trainer_defaults = {
    "verbose": True,
    "seed": None,
    "commit_hash": None,
    "ami": None,
    "progress_bar": False,
    "n_epochs": 1,
    "l2": 0.0,
    "grad_clip": 1.0,
    "optimizer_config": optimizer_config_defaults("adam"),
    "lr_scheduler": None,
    "lr_scheduler_config": {
        "warmup_steps": 0.0,
        "warmup_unit": "batches",
        "min_lr": 0.0,
        "exponential_config": {"gamma": 0.999},
        "plateau_config": {"factor": 0.5, "patience": 10, "threshold": 0.0001},
    },
    "metrics_config": {
        "task_metrics": [],
        "aggregate_metric_fns": [],
        "max_valid_examples": 0,
        "valid_split": "valid",
        "test_split": None,
    },
    "task_scheduler": "proportional",
    "logger": True,
    "logger_config": {
        "log_unit": "epochs",
        "log_every": 1.0,
        "score_every": -1.0,
        "log_lr": True,
    },
    "writer": None,
    "writer_config": {
        "log_dir": "logs",
        "run_dir": None,
        "run_name": None,
        "writer_metrics": [],
    },
    "checkpoint": True,
    "checkpoint_cleanup": True,
    "checkpoint_config": {
        "checkpoint_every": 0,
        "checkpoint_best": False,
        "checkpoint_metric": "model/train/all/loss",
        "checkpoint_metric_mode": "min",
        "checkpoint_dir": None,
        "checkpoint_runway": 0,
    },
}


class MultitaskTrainer(object):
    """Trains a ``MetalModel`` (or any ``MultitaskClassifier``) on ``Payload``s.

    Args:
        **kwargs: ``trainer_defaults`` keys; flat keys reach nested ones (e.g.
            ``lr=0.02`` sets ``optimizer_config.optimizer_common.lr``,
            ``log_every=2`` sets ``logger_config.log_every``). An unknown key is
            kept, as MeTaL kept it, with a ``UserWarning`` that it has no
            effect. ``seed`` seeds all RNGs when given.

    Labels are those of the tasks (``1..k`` with 0 = no label for v0.5 tasks);
    each payload's ``labels_to_tasks`` routes its label sets to tasks. Train
    payloads are those with split ``"train"``. The loss of a batch is the sum of
    its label sets' mean losses (each times its task's ``loss_multiplier``).
    """

    def __init__(self, **kwargs: Any) -> None:
        self.config = merge_metal_config(
            trainer_defaults, kwargs, "MultitaskTrainer", insert=True
        )
        self._seed(self.config["seed"])

    def _seed(self, seed) -> None:
        if seed is None:
            self.config["seed"] = random.SystemRandom().randrange(1_000_000)
        else:
            set_seed(seed)

    # ---------------------------------------------------------------- train
    def train_model(
        self, model: MultitaskClassifier, payloads: Sequence[Any], **kwargs: Any
    ) -> Dict[str, float]:
        """Train, then score every payload of ``test_split`` (all payloads when
        it is None).

        Returns:
            ``{"task/payload/label_set/metric": value}`` of that final scoring,
            plus the aggregate metrics.

        Raises:
            ValueError: without train payloads, for a label set routed to a
                task the model lacks, or for bad option values (unknown keys
                only warn).
        """
        self.config = merge_metal_config(
            self.config, kwargs, "MultitaskTrainer", insert=True
        )
        if kwargs.get("seed") is not None:
            set_seed(kwargs["seed"])
        cfg = self.config
        verbose = bool(cfg["verbose"]) and is_main_process()
        self.task_names = list(model.tasks)
        self.payload_names = [payload.name for payload in payloads]
        train_payloads = [p for p in payloads if p.split == "train"]
        if not train_payloads:
            raise ValueError(
                "Cannot find any payloads with split 'train'; MultitaskTrainer "
                "trains on those."
            )
        self._check_routing(model, payloads)
        parallel = _data_parallel(model)
        train_payloads, train_source = self._shard_payloads(parallel, payloads)
        batches_per_epoch = sum(len(p.data_loader) for p in train_payloads)
        examples_per_epoch = sum(
            len(p.data_loader) * (p.data_loader.batch_size or 1) for p in train_payloads
        )
        if verbose:
            print("Beginning train loop.")
            print(
                f"Expecting a total of _approximately_ {examples_per_epoch} examples "
                f"and {batches_per_epoch} batches per epoch from "
                f"{len(train_payloads)} payload(s) in the train split."
            )
        self._check_metrics()
        spec = from_trainer_defaults(cfg, model._device)
        if spec.checkpoint.kind is not None:
            self._validate_checkpoint_metric(model, payloads)
        self.logger = Logger(cfg["logger_config"], batches_per_epoch, None, verbose)
        run = Run(spec, self.logger, parallel=parallel)
        self.writer = self.logger.writer = run.writer
        self.checkpointer = run.checkpointer
        self.task_scheduler = self._set_task_scheduler(model, payloads)
        metrics_config = cfg["metrics_config"]
        self.metrics_hist: Dict[str, Any] = {}
        loss_names: Dict[Tuple[str, str], str] = {}

        def step(item):
            (X, Ys), payload_name, labels_to_tasks = item
            loss_dict, count_dict = model._label_losses(X, Ys, labels_to_tasks)
            named_losses, named_counts = {}, {}
            for label, loss in loss_dict.items():
                key = (payload_name, label)
                name = loss_names.get(key)
                if name is None:
                    name = f"{labels_to_tasks[label]}/{payload_name}/{label}/loss"
                    loss_names[key] = name
                named_losses[name] = loss
                named_counts[name] = count_dict[label]
            return named_losses, named_counts

        def evaluate(trained_model):
            # Aggregate metrics read the run's history as it is being logged.
            self.metrics_hist = run.engine.metrics_hist
            return self.calculate_metrics(
                trained_model, payloads, split=metrics_config["valid_split"]
            )

        model.train()
        run.fit(
            model,
            lambda epoch: self.task_scheduler.get_batches(train_source, "train"),
            step,
            evaluate=evaluate,
            batch_size_fn=_label_rows,
            batches_per_epoch=batches_per_epoch,
        )
        self.metrics_hist = run.engine.metrics_hist
        self.optimizer = run.engine.optimizer
        self.lr_scheduler = run.engine.lr_scheduler
        model.eval()
        return self._finish(model, payloads, run)

    @staticmethod
    def _shard_payloads(
        parallel: Optional[DataParallel], payloads: Sequence[Any]
    ) -> Tuple[List[Any], List[Any]]:
        """``(train payloads, payloads to schedule batches from)``: in a
        data-parallel run, the train payloads read this rank's shard."""
        source = list(payloads)
        if parallel is not None:
            source = [
                parallel.shard_payload(p) if p.split == "train" else p for p in payloads
            ]
        return [p for p in source if p.split == "train"], source

    def _finish(self, model, payloads, run: Run) -> Dict[str, float]:
        """Score the test split, then end the run (checkpoint clean-up, run
        log, the model's weights beside it)."""
        verbose = bool(self.config["verbose"]) and is_main_process()
        if verbose:
            print("Finished training")
        metrics_dict = self.calculate_metrics(
            model, payloads, split=self.config["metrics_config"]["test_split"]
        )
        if verbose:
            for name, value in metrics_dict.items():
                print(f"{name:>50}: {plain_number(value):.3f}")
        run.finish(
            model=model,
            metrics={name: plain_number(v) for name, v in metrics_dict.items()},
        )
        return metrics_dict

    # -------------------------------------------------------------- metrics
    def aggregate_losses(self) -> Dict[str, float]:
        """The latest logged losses and learning rate (names ending in
        ``/loss`` or ``/lr``)."""
        return {
            name: value
            for name, value in getattr(self, "metrics_hist", {}).items()
            if name.endswith("/loss") or name.endswith("/lr")
        }

    def calculate_metrics(self, model, payloads, split: Optional[str] = None):
        """Task metrics of the payloads of ``split`` (all if falsy), then the
        aggregate metrics computed from the history; both are recorded in
        ``metrics_hist``."""
        metrics_dict = self.calculate_task_metrics(model, payloads, split)
        self.metrics_hist.update(metrics_dict)
        aggregate = self.calculate_aggregate_metrics()
        self.metrics_hist.update(aggregate)
        metrics_dict.update(aggregate)
        return metrics_dict

    def calculate_task_metrics(self, model, payloads, split: Optional[str] = None):
        """``{"task/payload/label_set/metric": value}`` over the payloads of
        ``split`` (all if falsy), restricted to ``task_metrics`` when set."""
        mc = self.config["metrics_config"]
        targets = [m for m in mc["task_metrics"] if "/loss" not in m]
        metrics_dict: Dict[str, float] = {}
        for payload in payloads:
            if split and payload.split != split:
                continue
            metrics_dict.update(
                score_payload(
                    model,
                    payload,
                    targets,
                    verbose=False,
                    max_examples=mc["max_valid_examples"],
                )
            )
        return metrics_dict

    def calculate_aggregate_metrics(self) -> Dict[str, float]:
        """Each ``aggregate_metric_fns`` function applied to ``metrics_hist``."""
        aggregate: Dict[str, float] = {}
        for func in self.config["metrics_config"]["aggregate_metric_fns"]:
            aggregate.update(func(self.metrics_hist))
        return aggregate

    # ---------------------------------------------------------------- setup
    def _check_routing(self, model, payloads) -> None:
        for payload in payloads:
            for label, task_name in payload.labels_to_tasks.items():
                if task_name not in model.tasks:
                    raise ValueError(
                        f"Payload {payload.name!r} routes label set {label!r} to task "
                        f"{task_name!r}, which is not in the model (tasks: "
                        f"{list(model.tasks)})."
                    )

    def _check_metrics(self) -> None:
        mc = self.config["metrics_config"]
        for key in ("task_metrics", "aggregate_metric_fns"):
            if not isinstance(mc[key], list):
                raise ValueError(
                    f"metrics_config.{key} must be a list; found {mc[key]!r}."
                )

    def _validate_checkpoint_metric(self, model, payloads) -> None:
        cfg = self.config
        metric = cfg["checkpoint_config"]["checkpoint_metric"]
        parts = metric.split("/")
        if metric.startswith("model"):
            aggregate_names = [
                getattr(f, "__name__", "")
                for f in cfg["metrics_config"]["aggregate_metric_fns"]
            ]
            if parts[-1] not in ["loss"] + aggregate_names:
                raise ValueError(
                    f"Model-level checkpoint metric {metric!r} must end in 'loss' or "
                    "the name of an aggregate metric function."
                )
        else:
            if len(parts) != 4:
                raise ValueError(
                    "checkpoint_metric must have the form "
                    f"'task/payload/label_set/metric'; found {metric!r}."
                )
            task_name, payload_name, _, metric_name = parts
            if task_name not in model.tasks:
                raise ValueError(
                    f"checkpoint_metric {metric!r} names task {task_name!r}, which is "
                    f"not in the model ({list(model.tasks)})."
                )
            if payload_name not in [p.name for p in payloads]:
                raise ValueError(
                    f"checkpoint_metric {metric!r} names payload {payload_name!r}, "
                    "which is not among the payloads."
                )
            if (
                metric_name != "loss"
                and metric_name not in model.tasks[task_name].scorer.metrics
            ):
                raise ValueError(
                    f"checkpoint_metric {metric!r}: task {task_name!r}'s scorer does "
                    f"not compute {metric_name!r}."
                )
        task_metrics = cfg["metrics_config"]["task_metrics"]
        if (
            task_metrics
            and metric not in task_metrics
            and not metric.startswith("model")
        ):
            raise ValueError(
                f"checkpoint_metric {metric!r} must be one of task_metrics when "
                "task_metrics is set."
            )

    def _set_task_scheduler(self, model, payloads):
        name = self.config["task_scheduler"]
        if name == "proportional":
            return ProportionalScheduler(model, payloads, "train")
        raise NotImplementedError(
            f"Unrecognized task_scheduler {name!r}; only 'proportional' exists."
        )
