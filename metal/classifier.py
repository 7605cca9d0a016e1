"""The base class of every model in ``metal``: ``predict_proba`` -> ``predict`` ->
``score``, config handling, persistence and the door to the shared training loop.

Label conventions: ``predict_proba`` returns ``[n, k]`` probabilities whose column
``c`` is ``P(Y = c + 1)``; ``predict`` returns int64 labels in ``1..k`` (or 0 for a
tie resolved by abstaining); gold labels equal to 0 are ignored by ``score``.
"""

import copy
import importlib
import os
import tempfile
from typing import Any, Dict, Optional

import numpy as np
import scipy.sparse as sparse
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from metal.metrics import METRICS, metric_score
from metal.utils import (
    _length_or_none,
    _resolve_device,
    recursive_merge_dicts,
    set_seed,
)

# Probabilities within this distance of a row's maximum count as tied.
TIE_TOLERANCE = 1e-5

_SAVE_FORMAT = "snorkel-metal/1"


class Classifier(nn.Module):
    """Abstract base: subclasses implement ``predict_proba`` and ``train_model``.

    Args:
        k: the number of classes (labels are 1..k).
        config: the model's complete nested config dict.

    Seeding: when ``config["seed"]`` is set, Python's ``random``, NumPy's global
    RNG and torch are seeded with it (so weight initialisation is reproducible).
    Without a seed nothing global is re-seeded.
    """

    # True when the subclass applies its own L2 penalty (optimizer weight_decay=0).
    implements_l2 = False

    # The complete default config tree of the model class: every key its config
    # merge accepts (subclasses set it).
    _config_defaults: Dict[str, Any] = {}

    @classmethod
    def default_config(cls) -> Dict[str, Any]:
        """A fresh copy of the class's complete default config: every key that
        ``__init__``, ``train_model`` and ``update_config`` accept, flat or
        nested (the model tuners route search keys with it)."""
        return copy.deepcopy(cls._config_defaults)

    def __init__(self, k, config):
        super().__init__()
        self.config = config
        self.multitask = False
        self.k = k
        self._init_kwargs = None
        seed = config.get("seed")
        if seed is None:
            self.seed = None
        else:
            self._set_seed(seed)
        device = self._device()
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device={config.get('device')!r} was requested but CUDA is not "
                "available; use device='cpu'."
            )
        self.eval()

    # ------------------------------------------------------------------ config
    def _set_seed(self, seed) -> None:
        try:
            self.seed = int(seed)
        except (TypeError, ValueError):
            raise ValueError(
                f"seed must be an integer or None; found {seed!r}."
            ) from None
        set_seed(self.seed)
        if self._device().type == "cuda":
            torch.backends.cudnn.enabled = True

    def _device(self) -> torch.device:
        return _resolve_device(self.config.get("device", "cpu"))

    def update_config(self, update_dict: dict) -> None:
        """Merge ``update_dict`` (nested, or flat leaf names) into the config.

        Raises ``ValueError`` naming any key that is not part of the config.
        """
        self.config = recursive_merge_dicts(
            self.config, update_dict, misses="exception", verbose=False
        )

    def _record_init_kwargs(self, **kwargs) -> None:
        """Remember constructor arguments so ``load`` can rebuild the model.

        Arguments that are not plain data (e.g. custom ``nn.Module`` objects)
        make the model non-rebuildable; ``load`` then needs ``model=``.
        """
        self._init_kwargs = kwargs if all(map(_is_plain, kwargs.values())) else None

    # -------------------------------------------------------------- prediction
    def predict_proba(self, X, **kwargs) -> np.ndarray:
        """Return an ``[n, k]`` array of class probabilities for the items ``X``."""
        raise NotImplementedError

    def predict(self, X, break_ties="random", return_probs=False, **kwargs):
        """Predict hard labels in ``1..k`` from ``predict_proba``.

        Args:
            X: the items (whatever ``predict_proba`` accepts).
            break_ties: how rows whose maximum is shared (within 1e-5) are
                resolved: ``"random"`` (uniform among the tied classes, NumPy's
                global RNG), ``"abstain"`` (label 0) or an int label.
            return_probs: also return the probabilities.

        Returns:
            ``Y_p`` (int64 ``[n]``), or ``(Y_p, Y_s)`` with ``Y_s`` ``[n, k]``.
        """
        Y_s = self._to_numpy(self.predict_proba(X, **kwargs))
        Y_p = self._break_ties(Y_s, break_ties).astype(np.int64)
        return (Y_p, Y_s) if return_probs else Y_p

    def _break_ties(self, Y_s, break_ties="random") -> np.ndarray:
        """Resolve each row of ``Y_s [n, k]`` to a label (float array ``[n]``)."""
        _check_tie_policy(break_ties)
        Y_s = np.asarray(Y_s, dtype=np.float64)
        if Y_s.ndim != 2:
            raise ValueError(
                f"Y_s must be a 2-D array of probabilities [n, k]; found shape "
                f"{Y_s.shape}."
            )
        n = Y_s.shape[0]
        if n == 0:
            return np.zeros(0)
        ties = Y_s >= Y_s.max(axis=1, keepdims=True) - TIE_TOLERANCE
        n_ties = ties.sum(axis=1)
        Y_p = (ties.argmax(axis=1) + 1).astype(np.float64)
        tied = np.flatnonzero(n_ties > 1)
        if tied.size:
            if break_ties == "random":
                # Pick the j-th tied column of each row, j uniform in the tie set.
                picks = (np.random.random(tied.size) * n_ties[tied]).astype(np.int64)
                ranks = np.cumsum(ties[tied], axis=1) - 1
                chosen = np.argmax(ties[tied] & (ranks == picks[:, None]), axis=1)
                Y_p[tied] = chosen + 1
            elif break_ties == "abstain":
                Y_p[tied] = 0
            else:
                Y_p[tied] = break_ties
        return Y_p

    # ----------------------------------------------------------------- scoring
    def score(
        self,
        data,
        metric="accuracy",
        break_ties="random",
        verbose=True,
        print_confusion_matrix=True,
        **kwargs,
    ):
        """Score predictions on labelled data.

        Args:
            data: ``(X, Y)`` (a tuple or list), a ``Dataset`` or a ``DataLoader``
                yielding ``(X, Y)`` batches; ``Y`` holds gold labels in 1..k
                (0 = no gold label, ignored).
            metric: a metric name from ``metal.metrics.METRICS`` or a list of
                names.
            break_ties: tie policy for ``predict``.
            verbose: print each score (and the confusion matrix).
            print_confusion_matrix: print the confusion matrix when verbose.

        Returns:
            a float for a single metric name, a list of floats for a list.
        """
        metrics = [metric] if isinstance(metric, str) else list(metric)
        if not metrics:
            raise ValueError("metric must be a metric name or a non-empty list.")
        for name in metrics:
            if name not in METRICS:
                raise ValueError(
                    f"Unknown metric {name!r}; choose from {sorted(METRICS)}."
                )
        Y_p, Y, Y_s = self._get_predictions(
            data, break_ties=break_ties, return_probs=True, **kwargs
        )
        scores = []
        for name in metrics:
            value = metric_score(Y, Y_p, name, probs=Y_s, ignore_in_gold=[0])
            scores.append(value)
            if verbose:
                print(f"{name.capitalize()}: {value:.3f}")
        if verbose and print_confusion_matrix:
            from metal.analysis import confusion_matrix

            confusion_matrix(Y, Y_p, pretty_print=True)
        return scores[0] if isinstance(metric, str) else scores

    def _get_predictions(self, data, break_ties="random", return_probs=False, **kwargs):
        """Predict on ``data`` and return ``(Y_p, Y)`` or ``(Y_p, Y, Y_s)``.

        A ``(X, Y)`` tuple is predicted in one call (the model batches
        internally); Datasets and DataLoaders are iterated batch by batch.
        """
        if isinstance(data, (tuple, list)) and not isinstance(data, DataLoader):
            X, Y = _unpack_pair(data, "data")
            Y = self._to_numpy(Y)
            n_x = _length_or_none(X)
            if n_x is not None and Y is not None and n_x != len(Y):
                raise ValueError(
                    f"X and Y must have the same number of items; found {n_x} and "
                    f"{len(Y)}."
                )
            Y_p, Y_s = self.predict(
                X, break_ties=break_ties, return_probs=True, **kwargs
            )
            Y_p, Y = np.asarray(Y_p), self._flatten_labels(Y)
        else:
            loader = self._create_data_loader(data, shuffle=False)
            Y_ps, Ys, Y_ss = [], [], []
            for batch in loader:
                Xb, Yb = batch[0], batch[1]
                Yb = self._to_numpy(Yb)
                Y_pb, Y_sb = self.predict(
                    Xb, break_ties=break_ties, return_probs=True, **kwargs
                )
                Y_ps.append(Y_pb)
                Ys.append(Yb)
                Y_ss.append(Y_sb)
            Y_p = self._stack_batches(Y_ps)
            Y = self._flatten_labels(self._stack_batches(Ys))
            Y_s = self._stack_batches(Y_ss)
        return (Y_p, Y, Y_s) if return_probs else (Y_p, Y)

    @staticmethod
    def _flatten_labels(Y):
        """Gold labels as a 1-D array (``[n, 1]`` is flattened)."""
        Y = np.asarray(Y)
        return Y.reshape(-1) if Y.ndim == 2 and Y.shape[1] == 1 else Y

    # -------------------------------------------------------------------- data
    def _create_data_loader(self, data, **kwargs):
        """Wrap ``data`` in a DataLoader configured by ``data_loader_config``.

        ``None`` -> ``None``; a DataLoader is returned unchanged; a Dataset or
        an ``(X, Y)`` tuple/list is wrapped.
        """
        if data is None:
            return None
        if isinstance(data, DataLoader):
            return data
        config = dict(self.config["train_config"].get("data_loader_config", {}))
        config.update(kwargs)
        config.setdefault("pin_memory", self._device().type == "cuda")
        if isinstance(data, Dataset):
            return DataLoader(data, **config)
        if isinstance(data, (tuple, list)):
            return DataLoader(self._create_dataset(*data), **config)
        raise ValueError(
            "data must be an (X, Y) tuple, a torch Dataset or a DataLoader; found "
            f"{type(data).__name__}."
        )

    def _create_dataset(self, *data):
        """Base dataset: every element converted to a float32 tensor."""
        tensors = [self._to_torch(d, dtype=torch.float32) for d in data]
        return TensorDataset(*tensors)

    @staticmethod
    def _stack_batches(X):
        """Concatenate per-batch arrays: 1-D end to end, 2-D by rows."""
        if len(X) == 0:
            return np.zeros(0)
        first = np.asarray(X[0])
        if first.ndim == 1:
            return np.hstack([np.asarray(x).reshape(-1) for x in X])
        if first.ndim == 2:
            return np.vstack([np.asarray(x) for x in X])
        raise ValueError(f"Can't stack batches of {first.ndim}-dimensional arrays.")

    @staticmethod
    def _to_numpy(Z):
        """Convert sparse, list, ndarray or tensor (any device) to a NumPy array."""
        if Z is None:
            return None
        if sparse.issparse(Z):
            return Z.toarray()
        if isinstance(Z, np.ndarray):
            return Z
        if isinstance(Z, list):
            return np.array(Z)
        if isinstance(Z, torch.Tensor):
            return Z.detach().cpu().numpy()
        raise ValueError(
            "Expected a np.ndarray, torch.Tensor, list or scipy.sparse matrix; "
            f"found {type(Z).__name__}."
        )

    @staticmethod
    def _to_torch(Z, dtype=None):
        """Convert sparse, list, ndarray or tensor to a torch tensor (of ``dtype``)."""
        if Z is None:
            return None
        if sparse.issparse(Z):
            Z = torch.from_numpy(Z.toarray())
        elif isinstance(Z, torch.Tensor):
            pass
        elif isinstance(Z, (np.ndarray, list)):
            Z = torch.from_numpy(np.asarray(Z))
        else:
            raise ValueError(
                "Expected a np.ndarray, torch.Tensor, list or scipy.sparse matrix; "
                f"found {type(Z).__name__}."
            )
        return Z.to(dtype) if dtype is not None else Z

    # ---------------------------------------------------------------- training
    def train_model(self, *args, **kwargs):
        """Train the model (implemented by subclasses)."""
        raise NotImplementedError

    def _get_loss_fn(self):
        """Return ``loss_fn(*batch) -> scalar tensor`` (implemented by subclasses)."""
        raise NotImplementedError

    def _update_train_config(self, update_dict: dict) -> None:
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
        from metal.logging import Checkpointer, Logger

        tc = self.config["train_config"]
        _check_metric_names(tc)
        self._engine_config(tc)
        Logger(tc.get("logger_config") or {}, None, verbose=False)
        if tc.get("writer") not in (None, "json", "tensorboard"):
            raise ValueError(
                f"Unrecognized writer option {tc['writer']!r}; choose None, 'json' "
                "or 'tensorboard'."
            )
        if tc.get("checkpoint"):
            Checkpointer(tc.get("checkpoint_config"), verbose=False)

    def _prepare_train_data(self, train_data):
        """Validate/convert training data before training (subclasses refine)."""
        return train_data

    def _prepare_valid_data(self, valid_data):
        """Validate/convert validation data before training (subclasses refine)."""
        return valid_data

    def _train_model(
        self, train_data, loss_fn, valid_data=None, log_writer=None, restore_state={}
    ):
        """Train through ``metal.engine.Engine`` with ``train_config``.

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
        from metal.engine import Engine
        from metal.logging import Logger

        tc = self.config["train_config"]
        _check_metric_names(tc)
        verbose = bool(self.config.get("verbose"))
        device = self._device()
        if verbose and device.type == "cuda":
            print(f"Using GPU {device}...")
        self.to(device)
        train_batches = self._train_batches(train_data)
        valid_eval = self._as_eval_data(valid_data)
        self.writer = (
            log_writer if log_writer is not None else _build_writer(tc, verbose)
        )
        n_batches = _length_or_none(train_batches)
        self.logger = Logger(
            tc.get("logger_config") or {},
            self.writer,
            epoch_size=_n_examples(train_batches),
            verbose=verbose,
            batches_per_epoch=n_batches,
        )
        self.checkpointer = self._build_checkpointer(tc, valid_eval is not None)
        engine = Engine(
            self,
            self._engine_config(tc),
            self.logger,
            checkpointer=self.checkpointer,
            evaluate=self._evaluation_fn(valid_data, valid_eval),
            train_metrics=self._train_metrics_fn(train_batches, train_data),
            extra_state={"config": _to_plain(self.config)},
        )
        result = engine.fit(
            train_batches,
            lambda batch: loss_fn(*batch),
            batches_per_epoch=n_batches,
            restore_state=restore_state or None,
        )
        self.optimizer = engine.optimizer
        self.lr_scheduler = engine.lr_scheduler
        self.eval()
        self._close_writer(result.metrics)
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

    def resume_training(self, train_data, model_path, valid_data=None):
        """Continue an interrupted ``train_model`` run from a checkpoint file.

        The checkpoint (a ``model_checkpoint_<N>.pth`` or ``best_model.pth``
        written during training) restores the weights, optimizer and scheduler
        state, the epoch position, the logger's counters, the best-so-far info,
        the RNG states and the run's config (except ``device``, ``verbose`` and
        callables, which keep their current values). It is read with
        ``weights_only=True``. Pass the same ``train_data``/``valid_data`` as
        the interrupted run.
        """
        from metal.logging.checkpointer import load_checkpoint

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

    # ----------------------------------------------------- training plumbing
    def _engine_config(self, tc: dict):
        """Translate ``train_config`` into the engine's settings."""
        from metal.engine import (
            EngineConfig,
            v05_optimizer_settings,
            v05_scheduler_kwargs,
        )

        name, optimizer_kwargs = v05_optimizer_settings(tc["optimizer_config"])
        scheduler = tc.get("lr_scheduler")
        sched_config = tc.get("lr_scheduler_config") or {}
        metric, mode = self._checkpoint_metric(tc)
        return EngineConfig(
            n_epochs=tc["n_epochs"],
            optimizer=name,
            optimizer_kwargs=optimizer_kwargs,
            l2=0.0 if self.implements_l2 else (tc.get("l2") or 0.0),
            grad_clip=tc.get("grad_clip"),
            lr_scheduler=scheduler,
            lr_scheduler_kwargs=v05_scheduler_kwargs(scheduler, sched_config),
            lr_step_unit="epochs",
            warmup_steps=sched_config.get("warmup_steps") or 0,
            warmup_unit=sched_config.get("warmup_unit") or "batches",
            min_lr=sched_config.get("min_lr") or 0.0,
            lr_freeze=sched_config.get("lr_freeze") or 0,
            plateau_metric=metric,
            plateau_mode=mode,
            device=self._device(),
            progress_bar=bool(tc.get("progress_bar")),
            verbose=bool(self.config.get("verbose")),
        )

    @staticmethod
    def _checkpoint_metric(tc: dict):
        """The checkpoint metric's full name (``valid/`` added) and its mode."""
        cc = tc.get("checkpoint_config") or {}
        metric = cc.get("checkpoint_metric") or "accuracy"
        if "/" not in metric:
            metric = f"valid/{metric}"
        return metric, cc.get("checkpoint_metric_mode") or "max"

    def _build_checkpointer(self, tc: dict, has_validation: bool):
        """A Checkpointer when ``checkpoint`` is on and something can be saved."""
        from metal.logging import Checkpointer

        if not tc.get("checkpoint"):
            return None
        cc = tc["checkpoint_config"]
        metric, _ = self._checkpoint_metric(tc)
        cc["checkpoint_metric"] = metric
        needs_validation = metric.split("/")[-2] == "valid"
        if needs_validation and not has_validation and not cc.get("checkpoint_every"):
            return None
        return Checkpointer(cc, verbose=bool(self.config.get("verbose")))

    def _train_batches(self, train_data):
        """Fast tensor batches for in-memory ``(X, Y)``, else a DataLoader."""
        if isinstance(train_data, (tuple, list)) and not isinstance(
            train_data, DataLoader
        ):
            batches = self._tensor_batches(train_data)
            if batches is not None:
                return batches
        return self._create_data_loader(train_data, shuffle=self._loader_shuffle())

    def _loader_shuffle(self) -> bool:
        loader_config = self.config["train_config"].get("data_loader_config") or {}
        return bool(loader_config.get("shuffle", True))

    def _tensor_batches(self, data):
        """``TensorBatches`` over ``data`` if every leaf converts to a tensor (or
        CSR matrix) and the loader config needs no DataLoader features."""
        from metal.engine import TensorBatches

        loader_config = dict(
            self.config["train_config"].get("data_loader_config") or {}
        )
        if set(loader_config) - _FAST_LOADER_KEYS:
            return None
        converted = self._to_batchable(data)
        if converted is None:
            return None
        try:
            return TensorBatches(
                converted,
                batch_size=loader_config.get("batch_size", 32),
                shuffle=loader_config.get("shuffle", True),
                drop_last=loader_config.get("drop_last", False),
            )
        except ValueError:
            return None

    def _to_batchable(self, data):
        """Convert each element of ``(X, Y)`` with ``_as_model_data``; ``None``
        if any cannot be converted."""
        parts = [self._as_model_data(d) for d in data]
        return None if any(p is None for p in parts) else type(data)(parts)

    def _as_model_data(self, Z):
        """``_as_model_tensor(Z)``, or a list of them for a multitask model's
        per-task list."""
        if (
            self.multitask
            and isinstance(Z, (list, tuple))
            and Z
            and all(map(_is_array_like, Z))
        ):
            parts = [self._as_model_tensor(z) for z in Z]
            return None if any(p is None for p in parts) else parts
        return self._as_model_tensor(Z)

    def _float_dtype(self) -> torch.dtype:
        for param in self.parameters():
            if param.is_floating_point():
                return param.dtype
        return torch.get_default_dtype()

    def _as_model_tensor(self, Z):
        """A tensor (floats in the model's dtype) or CSR matrix, else None."""
        float_dtype = self._float_dtype()
        if isinstance(Z, torch.Tensor):
            if Z.is_floating_point() and Z.dtype != float_dtype:
                return Z.to(float_dtype)
            return Z.to(float_dtype) if Z.dtype == torch.bool else Z
        if sparse.issparse(Z):
            return sparse.csr_matrix(Z, dtype=np.float32)
        if isinstance(Z, (list, tuple)):
            if Z and all(isinstance(z, torch.Tensor) for z in Z):
                try:
                    return self._as_model_tensor(torch.stack(list(Z)))
                except RuntimeError:
                    return None
            try:
                Z = np.asarray(Z)
            except (ValueError, TypeError):
                return None
        if isinstance(Z, np.ndarray) and Z.dtype.kind in "fbiu":
            if Z.dtype.kind in "fb":
                np_dtype = torch.empty(0, dtype=float_dtype).numpy().dtype
                return torch.from_numpy(np.ascontiguousarray(Z, dtype=np_dtype))
            return torch.from_numpy(np.ascontiguousarray(Z))
        return None

    def _as_eval_data(self, data):
        """Labelled data in a form cheap to score repeatedly: ``(X, Y)`` with X
        converted once; Datasets/DataLoaders unchanged."""
        if data is None:
            return None
        if isinstance(data, (tuple, list)) and not isinstance(data, DataLoader):
            X, Y = _unpack_pair(data, "valid_data")
            X_t = self._as_model_data(X)
            return (X if X_t is None else X_t, Y)
        return data

    def _evaluation_fn(self, valid_data, valid_eval):
        """``f(model) -> {"valid/<metric>": value}`` for the engine, or None."""
        from metal.logging.logger import custom_metrics, standard_metrics

        if valid_eval is None:
            return None
        logger = self.logger
        loaders = {}

        def valid_loader():
            if "valid" not in loaders:
                loaders["valid"] = self._create_data_loader(valid_data, shuffle=False)
            return loaders["valid"]

        def evaluate(model):
            metrics = {}
            if logger.valid_funcs:
                metrics.update(
                    custom_metrics(model, valid_loader(), "valid", logger.valid_funcs)
                )
            metrics.update(
                standard_metrics(model, valid_eval, logger.log_valid_metrics, "valid")
            )
            return metrics

        return evaluate

    def _train_metrics_fn(self, train_batches, train_data):
        """``f(model) -> {"train/<metric>": value}`` when any train metric beyond
        the loss is configured, else None."""
        from metal.logging.logger import custom_metrics, standard_metrics

        logger = self.logger
        funcs = logger.train_funcs
        names = [m for m in logger.log_train_metrics if m.split("/")[-1] in METRICS]
        if not funcs and not names:
            return None
        train_eval = self._as_eval_data(train_data) if names else None
        if train_eval is not None and isinstance(train_eval, tuple):
            names_data = train_eval
        else:
            names_data = train_batches

        def train_metrics(model):
            metrics = custom_metrics(model, train_batches, "train", funcs)
            metrics.update(standard_metrics(model, names_data, names, "train"))
            return metrics

        return train_metrics

    def _close_writer(self, final_metrics: dict) -> None:
        writer = self.writer
        if writer is None:
            return
        if getattr(writer, "include_config", False):
            writer.add_config(self.config)
            writer.write_config(self.config)
        if hasattr(writer, "write_metrics"):
            writer.write_metrics(final_metrics)
        if hasattr(writer, "close"):
            writer.close()

    def reset(self) -> None:
        """Re-initialise every submodule's parameters."""
        self.apply(self._reset_module)

    @staticmethod
    def _reset_module(m):
        if hasattr(m, "reset_parameters") and m is not None:
            m.reset_parameters()

    # ------------------------------------------------------------- persistence
    def _get_extra_state_dict(self) -> Dict[str, Any]:
        """Plain-data attributes (beyond parameters/buffers) saved with the model."""
        return {"seed": self.seed, "k": self.k}

    def _set_extra_state_dict(self, state: Dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)

    def _prepare_for_state_dict(self, state_dict: Dict[str, torch.Tensor]) -> None:
        """Create parameters/buffers whose shapes are only known after training
        (e.g. a label model's ``mu``) before ``load_state_dict`` (hook)."""

    def save(self, destination, **kwargs) -> None:
        """Save the model to ``destination``: class name, plain config, constructor
        arguments, state dict and plain attributes. The write is atomic."""
        bundle = {
            "format": _SAVE_FORMAT,
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "init_kwargs": _to_plain(self._init_kwargs),
            "config": _to_plain(self.config),
            "state_dict": self.state_dict(),
            "extra_state": _to_plain(self._get_extra_state_dict()),
        }
        atomic_torch_save(bundle, destination, **kwargs)

    @classmethod
    def load(cls, source, model=None, map_location="cpu", **kwargs):
        """Load a model saved with ``save``.

        The file is read with ``torch.load(..., weights_only=True)``, so it can
        never execute code. The model is rebuilt from its recorded class and
        constructor arguments; for models built from custom modules pass a
        freshly constructed ``model`` of the same architecture to load into.
        """
        bundle = torch.load(source, map_location=map_location, weights_only=True)
        if not isinstance(bundle, dict) or bundle.get("format") != _SAVE_FORMAT:
            raise ValueError(
                f"{source!r} is not a model file written by Classifier.save."
            )
        if model is None:
            model_cls = _find_classifier_class(bundle["class"])
            if bundle["init_kwargs"] is None:
                raise ValueError(
                    f"The model in {source!r} was built from custom modules and "
                    "cannot be rebuilt from the file alone; construct the same "
                    "architecture and pass it as load(source, model=...)."
                )
            model = model_cls._rebuild(bundle["init_kwargs"], bundle["config"])
        model.config = bundle["config"]
        model._set_extra_state_dict(bundle["extra_state"])
        model._prepare_for_state_dict(bundle["state_dict"])
        model.load_state_dict(bundle["state_dict"])
        model.eval()
        return model

    @classmethod
    def _rebuild(cls, init_kwargs: dict, config: dict):
        """Construct an untrained instance with the saved architecture."""
        kwargs = dict(init_kwargs)
        kwargs["seed"] = None
        kwargs["verbose"] = False
        return cls(**kwargs)


_FAST_LOADER_KEYS = {"batch_size", "shuffle", "drop_last", "num_workers", "pin_memory"}


def _is_array_like(value) -> bool:
    return isinstance(value, (torch.Tensor, np.ndarray)) or sparse.issparse(value)


def _n_examples(batches) -> Optional[int]:
    """Examples per epoch of a DataLoader or ``TensorBatches`` (None if unknown)."""
    if hasattr(batches, "n"):
        n = batches.n
        if getattr(batches, "drop_last", False):
            n = len(batches) * batches.batch_size
        return n
    dataset = getattr(batches, "dataset", None)
    return _length_or_none(dataset) if dataset is not None else None


def _check_metric_names(tc: dict) -> None:
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


def _build_writer(tc: dict, verbose: bool):
    """The LogWriter named by ``train_config["writer"]`` (or None)."""
    kind = tc.get("writer")
    if kind is None:
        return None
    config = dict(tc.get("writer_config") or {})
    config.setdefault("verbose", verbose)
    if kind == "json":
        from metal.logging import LogWriter

        return LogWriter(**config)
    if kind == "tensorboard":
        from metal.logging import TensorBoardWriter

        return TensorBoardWriter(**config)
    raise ValueError(
        f"Unrecognized writer option {kind!r}; choose None, 'json' or 'tensorboard'."
    )


_KEEP_CURRENT_ON_RESUME = ("device", "verbose")


def _restore_saved_config(current: dict, saved: dict, top: bool = True) -> dict:
    """``current`` with the leaves of ``saved`` (a checkpointed plain config)
    written over it, except device/verbose and values that are not plain data
    (callables were saved as strings)."""
    merged = dict(current)
    for key, value in saved.items():
        if top and key in _KEEP_CURRENT_ON_RESUME:
            continue
        existing = current.get(key)
        if isinstance(value, dict) and isinstance(existing, dict):
            merged[key] = _restore_saved_config(existing, value, top=False)
        elif key in current and (not _is_plain(existing) or key.endswith("_func")):
            continue
        else:
            merged[key] = value
    return merged


def _unpack_pair(data, name: str):
    """``(X, Y)`` from a 2-element tuple/list, else ``ValueError`` naming ``name``."""
    if not isinstance(data, (tuple, list)):
        raise ValueError(
            f"{name} must be an (X, Y) tuple, a Dataset or a DataLoader; found "
            f"{type(data).__name__}."
        )
    if len(data) != 2:
        raise ValueError(
            f"{name} must be an (X, Y) pair; found a {type(data).__name__} of "
            f"length {len(data)}."
        )
    return data


def _given_modules(**modules) -> dict:
    """The keyword arguments that are not None (constructor modules to record)."""
    return {name: module for name, module in modules.items() if module is not None}


def _check_tie_policy(break_ties) -> None:
    if break_ties in ("random", "abstain"):
        return
    if isinstance(break_ties, (int, np.integer)) and not isinstance(break_ties, bool):
        return
    raise ValueError(
        "break_ties must be 'random', 'abstain' or an int label; found "
        f"{break_ties!r}."
    )


_PLAIN_SCALARS = (str, int, float, bool, type(None))


def _is_plain(value) -> bool:
    if isinstance(value, _PLAIN_SCALARS) or isinstance(value, (np.generic, np.ndarray)):
        return True
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (list, tuple)):
        return all(map(_is_plain, value))
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


def _to_plain(value):
    """Convert to data ``torch.load(weights_only=True)`` accepts.

    NumPy arrays become lists, NumPy scalars Python scalars, callables None; other
    objects become their string form.
    """
    if isinstance(value, _PLAIN_SCALARS):
        return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_to_plain(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return sorted(_to_plain(v) for v in value)
    if callable(value):
        # Code can't be stored safely; a loaded model gets None (the default)
        # and the caller passes the function again if it is still wanted.
        return None
    return str(value)


def _find_classifier_class(qualified: str):
    """Resolve ``"module:QualName"`` to a Classifier subclass without unpickling.

    Classes already imported are found among Classifier's subclasses; modules of
    the ``metal`` package itself may be imported to find them.
    """
    module_name, _, qualname = qualified.partition(":")

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for sub in subclasses(Classifier):
        if sub.__module__ == module_name and sub.__qualname__ == qualname:
            return sub
    if module_name == "metal" or module_name.startswith("metal."):
        importlib.import_module(module_name)
        for sub in subclasses(Classifier):
            if sub.__module__ == module_name and sub.__qualname__ == qualname:
                return sub
    raise ValueError(
        f"Model class {qualified!r} is not available; import the module that "
        "defines it, or pass a constructed model as load(source, model=...)."
    )


def atomic_torch_save(obj, destination, **kwargs) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename it, so
    a crash never leaves a truncated file at ``destination``."""
    destination = os.fspath(destination)
    folder = os.path.dirname(os.path.abspath(destination))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=folder, prefix=".tmp_", suffix=".pth")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f, **kwargs)
        os.replace(tmp_path, destination)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise
