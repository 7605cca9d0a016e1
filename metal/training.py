"""``TrainingMixin``: the MeTaL front door of the training engine, for models
learned by gradient descent (``EndModel``, ``LogisticRegression``,
``MTEndModel`` and user subclasses).

``train_model`` merges its keyword arguments into the model's
``train_config``, ``metal.run.from_train_config`` translates that config into
a run description, and ``metal.run.Run`` trains through ``metal.engine`` with
the model's ``Logger``, run-log writer and ``Checkpointer`` as callbacks.
Label models are fitted from statistics and do not use it.
"""

import copy
from typing import Any, Callable, Dict, Optional

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from metal._data import (
    TensorBatches,
    as_model_tensor,
    is_array_like,
    is_pair,
    n_examples,
    unpack_pair,
)
from metal._io import is_plain, to_plain
from metal.distributed import data_parallel, is_main_process
from metal.engine import TrainingResult
from metal.logging import Checkpointer, Logger
from metal.logging.checkpointer import load_checkpoint
from metal.metrics import METRICS, custom_metrics, standard_metrics
from metal.run import Run, from_train_config
from metal.utils import _length_or_none

__all__ = ["TrainingMixin"]

# data_loader_config keys that in-memory tensor batches honour themselves.
_FAST_LOADER_KEYS = {"batch_size", "shuffle", "drop_last", "num_workers", "pin_memory"}
# Settings a resumed run keeps from the current config, not the checkpoint's.
_KEEP_CURRENT_ON_RESUME = ("device", "verbose")


class TrainingMixin:
    """Training by gradient descent through the engine (mix in before
    ``metal.classifier.Classifier``).

    Subclasses implement ``train_model`` (usually: merge kwargs with
    ``_update_train_config``, check data with ``_prepare_train_data`` /
    ``_prepare_valid_data``, then ``_train_model``) and ``_get_loss_fn``.

    After training: ``logger``, ``writer``, ``checkpointer`` (or None),
    ``optimizer`` and ``lr_scheduler``.

    When a ``torch.distributed`` process group of several processes exists,
    ``train_model`` trains data-parallel (see ``metal.distributed``): each
    rank trains on its shard of ``train_data`` (``batch_size`` is per rank),
    gradients are averaged, rank 0 alone prints, writes the run log and
    checkpoints, and every rank ends with rank 0's (best) weights. On other
    ranks ``writer`` and ``checkpointer`` are None.
    """

    # Set True in a subclass whose loss may leave some trainable parameters
    # without a gradient (DistributedDataParallel must then look for them).
    ddp_find_unused_parameters: bool = False

    # ---------------------------------------------------------------- verbs
    def train_model(self, *args: Any, **kwargs: Any) -> None:
        """Train the model (implemented by subclasses)."""
        raise NotImplementedError

    def _get_loss_fn(self) -> Callable[..., torch.Tensor]:
        """Return ``loss_fn(*batch) -> scalar tensor`` (implemented by subclasses)."""
        raise NotImplementedError

    def resume_training(
        self, train_data: Any, model_path: Any, valid_data: Any = None
    ) -> None:
        """Continue an interrupted ``train_model`` run from a checkpoint file.

        The checkpoint (a ``model_checkpoint_<N>.pth`` or ``best_model.pth``
        written during training) restores the weights, optimizer and scheduler
        state, the epoch position, the logger's counters, the best-so-far info,
        the RNG states and the run's config (except ``device``, ``verbose`` and
        callables, which keep their current values). It is read with
        ``weights_only=True``. Pass the same ``train_data``/``valid_data`` as
        the interrupted run.
        """
        bundle = load_checkpoint(model_path)
        state = bundle.get("training_state")
        if not isinstance(state, dict):
            raise ValueError(
                f"{model_path!r} holds no training state, so training cannot be "
                "resumed from it."
            )
        saved_config = (state.get("extra") or {}).get("config")
        if isinstance(saved_config, dict):
            self.config = _restore_saved_config(self.config, saved_config)
        train_data = self._prepare_train_data(train_data)
        valid_data = self._prepare_valid_data(valid_data)
        loss_fn = self._get_loss_fn()
        self._train_model(train_data, loss_fn, valid_data, restore_state=bundle)

    # --------------------------------------------------------------- config
    def _update_train_config(self, update_dict: Dict[str, Any]) -> None:
        """Merge ``train_model``'s kwargs into the config and validate the
        training settings; on a ``ValueError`` the config is left unchanged."""
        previous = self.config
        self.update_config(update_dict)
        try:
            self._validate_train_config()
        except ValueError:
            self.config = previous
            raise

    def _validate_train_config(self) -> None:
        """Raise ``ValueError`` for unknown optimizer, scheduler, metric, log
        unit or writer names and inconsistent logging/checkpoint settings."""
        tc = self.config["train_config"]
        _check_metric_names(tc)
        from_train_config(copy.deepcopy(tc), False, "cpu", self.implements_l2)
        Logger(tc.get("logger_config") or {}, None, verbose=False)
        if tc.get("checkpoint"):
            Checkpointer(tc.get("checkpoint_config"), verbose=False)

    # ----------------------------------------------------------------- data
    def _prepare_train_data(self, train_data: Any) -> Any:
        """Validate/convert training data before training (subclasses refine)."""
        return train_data

    def _prepare_valid_data(self, valid_data: Any) -> Any:
        """Validate/convert validation data before training (subclasses refine)."""
        return valid_data

    def _float_dtype(self) -> torch.dtype:
        for param in self.parameters():
            if param.is_floating_point():
                return param.dtype
        return torch.get_default_dtype()

    def _as_model_tensor(self, Z: Any) -> Any:
        """A tensor (floats in the model's dtype) or CSR matrix, else None."""
        return as_model_tensor(Z, self._float_dtype())

    def _as_model_data(self, Z: Any) -> Any:
        """``_as_model_tensor(Z)``, or a list of them for a multitask model's
        per-task list."""
        if (
            self.multitask
            and isinstance(Z, (list, tuple))
            and Z
            and all(map(is_array_like, Z))
        ):
            parts = [self._as_model_tensor(z) for z in Z]
            return None if any(p is None for p in parts) else parts
        return self._as_model_tensor(Z)

    def _train_batches(self, train_data: Any) -> Any:
        """Fast tensor batches for in-memory ``(X, Y)``, else a DataLoader."""
        if is_pair(train_data):
            batches = self._tensor_batches(train_data)
            if batches is not None:
                return batches
        return self._create_data_loader(train_data, shuffle=self._loader_shuffle())

    def _loader_config(self) -> Dict[str, Any]:
        return dict(self.config["train_config"].get("data_loader_config") or {})

    def _loader_shuffle(self) -> bool:
        return bool(self._loader_config().get("shuffle", True))

    def _tensor_batches(self, data: Any) -> Optional[TensorBatches]:
        """``TensorBatches`` over ``data`` if every leaf converts to a tensor (or
        CSR matrix) and the loader config needs no DataLoader features."""
        loader_config = self._loader_config()
        if set(loader_config) - _FAST_LOADER_KEYS:
            return None
        parts = [self._as_model_data(d) for d in data]
        if any(p is None for p in parts):
            return None
        try:
            return TensorBatches(
                type(data)(parts),
                batch_size=loader_config.get("batch_size", 32),
                shuffle=loader_config.get("shuffle", True),
                drop_last=loader_config.get("drop_last", False),
            )
        except ValueError:
            return None

    def _as_eval_data(self, data: Any) -> Any:
        """Labelled data in a form cheap to score repeatedly: ``(X, Y)`` with X
        converted once; Datasets/DataLoaders unchanged."""
        if data is None:
            return None
        if is_pair(data):
            X, Y = unpack_pair(data, "valid_data")
            X_t = self._as_model_data(X)
            return (X if X_t is None else X_t, Y)
        return data

    # ------------------------------------------------------------- training
    def _train_model(
        self,
        train_data: Any,
        loss_fn: Callable[..., torch.Tensor],
        valid_data: Any = None,
        log_writer: Any = None,
        restore_state: Dict[str, Any] = {},
    ) -> TrainingResult:
        """Train through the engine with ``train_config``.

        Args:
            train_data: ``(X, Y)`` (tensors, arrays, scipy.sparse), a Dataset or a
                DataLoader yielding batches that ``loss_fn(*batch)`` accepts.
            loss_fn: ``loss_fn(*batch) -> scalar tensor`` (mean loss per example).
            valid_data: labelled data scored when validation is due, or None.
            log_writer: a ``LogWriter`` instance to use instead of
                ``train_config["writer"]``.
            restore_state: a checkpoint dict to resume from (see
                ``resume_training``).

        Returns:
            the engine's ``TrainingResult``.
        """
        tc = self.config["train_config"]
        _check_metric_names(tc)
        verbose = bool(self.config.get("verbose")) and is_main_process()
        parallel = data_parallel(self.ddp_find_unused_parameters)
        device = self._device()
        if parallel is not None:
            device = parallel.device(device)
            if device != self._device():
                # One CUDA device per rank: the model predicts there, too.
                self.config["device"] = str(device)
        if verbose and device.type == "cuda":
            print(f"Using GPU {device}...")
        self.to(device)
        train_batches = self._train_batches(train_data)
        # Examples per epoch, of all ranks together.
        examples = n_examples(train_batches)
        if parallel is not None:
            train_batches = parallel.shard(train_batches)
        valid_eval = self._as_eval_data(valid_data)
        spec = from_train_config(
            tc, verbose, device, self.implements_l2, valid_eval is not None
        )
        n_batches = _length_or_none(train_batches)
        self.logger = Logger(
            tc.get("logger_config") or {},
            log_writer,
            epoch_size=examples,
            verbose=verbose,
            batches_per_epoch=n_batches,
        )
        run = Run(spec, self.logger, writer=log_writer, parallel=parallel)
        self.writer, self.checkpointer = run.writer, run.checkpointer
        self.logger.writer = self.writer
        result = run.fit(
            self,
            train_batches,
            lambda batch: loss_fn(*batch),
            evaluate=self._evaluation_fn(valid_data, valid_eval),
            train_metrics=self._train_metrics_fn(train_batches, train_data),
            extra_state={"config": to_plain(self.config)},
            batches_per_epoch=n_batches,
            examples_per_epoch=examples,
            restore_state=restore_state or None,
        )
        self.optimizer = run.engine.optimizer
        self.lr_scheduler = run.engine.lr_scheduler
        self.eval()
        run.finish(config=self.config, metrics=result.metrics)
        if verbose:
            print("Finished Training")
            if valid_eval is not None:
                self.score(
                    valid_eval,
                    metric=tc.get("validation_metric", "accuracy"),
                    verbose=True,
                    print_confusion_matrix=True,
                )
        return result

    def _evaluation_fn(
        self, valid_data: Any, valid_eval: Any
    ) -> Optional[Callable[[nn.Module], Dict[str, Any]]]:
        """``f(model) -> {"valid/<metric>": value}`` for the engine, or None."""
        if valid_eval is None:
            return None
        logger = self.logger
        loaders: Dict[str, DataLoader] = {}

        def valid_loader() -> DataLoader:
            if "valid" not in loaders:
                loaders["valid"] = self._create_data_loader(valid_data, shuffle=False)
            return loaders["valid"]

        def evaluate(model: nn.Module) -> Dict[str, Any]:
            metrics: Dict[str, Any] = {}
            if logger.valid_funcs:
                metrics.update(
                    custom_metrics(model, valid_loader(), "valid", logger.valid_funcs)
                )
            metrics.update(
                standard_metrics(model, valid_eval, logger.log_valid_metrics, "valid")
            )
            return metrics

        return evaluate

    def _train_metrics_fn(
        self, train_batches: Any, train_data: Any
    ) -> Optional[Callable[[nn.Module], Dict[str, Any]]]:
        """``f(model) -> {"train/<metric>": value}`` when any train metric beyond
        the loss is configured, else None."""
        logger = self.logger
        funcs = logger.train_funcs
        names = [m for m in logger.log_train_metrics if m.split("/")[-1] in METRICS]
        if not funcs and not names:
            return None
        train_eval = self._as_eval_data(train_data) if names else None
        names_data = train_eval if isinstance(train_eval, tuple) else train_batches

        def train_metrics(model: nn.Module) -> Dict[str, Any]:
            metrics = custom_metrics(model, train_batches, "train", funcs)
            metrics.update(standard_metrics(model, names_data, names, "train"))
            return metrics

        return train_metrics


# -------------------------------------------------------------------- helpers
def _check_metric_names(tc: Dict[str, Any]) -> None:
    """Raise ``ValueError`` for metric names that are not in ``METRICS``."""
    logger_config = tc.get("logger_config") or {}
    for key, extra in (("log_train_metrics", {"loss"}), ("log_valid_metrics", set())):
        for name in logger_config.get(key) or []:
            short = str(name).split("/")[-1]
            if short not in METRICS and short not in extra:
                allowed = sorted(set(METRICS) | extra)
                raise ValueError(
                    f"Unknown metric {name!r} in {key}; choose from {allowed}."
                )
    metric = tc.get("validation_metric", "accuracy")
    if metric not in METRICS:
        raise ValueError(
            f"Unknown validation_metric {metric!r}; choose from {sorted(METRICS)}."
        )


def _restore_saved_config(
    current: Dict[str, Any], saved: Dict[str, Any], top: bool = True
) -> Dict[str, Any]:
    """``current`` with the leaves of ``saved`` (a checkpointed plain config)
    written over it, except device/verbose and values that are not plain data
    (callables were saved as None)."""
    merged = dict(current)
    for key, value in saved.items():
        if top and key in _KEEP_CURRENT_ON_RESUME:
            continue
        existing = current.get(key)
        if isinstance(value, dict) and isinstance(existing, dict):
            merged[key] = _restore_saved_config(existing, value, top=False)
        elif key in current and (not is_plain(existing) or key.endswith("_func")):
            continue
        else:
            merged[key] = value
    return merged
