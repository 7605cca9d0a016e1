"""The estimator base of every model in ``metal``: ``predict_proba`` ->
``predict`` -> ``score``, config and seed, saving and loading.

Models trained by gradient descent add ``metal.training.TrainingMixin``;
data conversion lives in ``metal._data`` and file I/O in ``metal._io``.

Label conventions (``metal.labels.ONE_BASED``): ``predict_proba`` returns
``[n, k]`` probabilities whose column ``c`` is ``P(Y = c + 1)``; ``predict``
returns int64 labels in ``1..k`` (or 0 for a tie resolved by abstaining); gold
labels equal to 0 are ignored by ``score``.
"""

import copy
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from metal._dask import compute, is_dask_array, lazy_break_ties
from metal._data import (
    hard_labels,
    is_pair,
    make_data_loader,
    stack_batches,
    to_numpy,
    to_torch,
    unpack_pair,
)
from metal._io import (
    atomic_torch_save,
    check_entries,
    find_class,
    is_plain,
    is_state_dict,
    safe_torch_load,
    to_plain,
)
from metal.analysis import confusion_matrix
from metal.labels import ONE_BASED, TIE_TOLERANCE
from metal.labels import break_ties as resolve_ties
from metal.metrics import METRICS, metric_score
from metal.utils import _resolve_device, check_seed, merge_config, set_seed

_SAVE_FORMAT = "snorkel-metal/1"
# The entries every saved model file holds, and their types.
_BUNDLE_TYPES = {
    "format": str,
    "class": str,
    "init_kwargs": (dict, type(None)),
    "config": dict,
    "state_dict": dict,
    "extra_state": dict,
}
# What a model file's structure cannot survive while being restored into a
# model (a constructor refusing the recorded arguments, a state dict that does
# not fit); such failures become a ValueError naming the file.
_RESTORE_ERRORS = (TypeError, ValueError, KeyError, IndexError, AttributeError)

__all__ = ["Classifier", "TIE_TOLERANCE"]


class Classifier(nn.Module):
    """Abstract base: subclasses implement ``predict_proba`` (and, when they
    learn by gradient, mix in ``metal.training.TrainingMixin``).

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

    # The label vocabulary of the model's predictions and gold labels.
    label_convention = ONE_BASED

    @classmethod
    def default_config(cls) -> Dict[str, Any]:
        """A fresh copy of the class's complete default config: every key that
        ``__init__``, ``train_model`` and ``update_config`` accept, flat or
        nested (the model tuners route search keys with it)."""
        return copy.deepcopy(cls._config_defaults)

    def __init__(self, k: Optional[int], config: Dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        self.multitask = False
        self.k = k
        self._init_kwargs: Optional[Dict[str, Any]] = None
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
    def _set_seed(self, seed: Any) -> None:
        self.seed = check_seed(seed)
        set_seed(self.seed)
        if self._device().type == "cuda":
            torch.backends.cudnn.enabled = True

    def _device(self) -> torch.device:
        return _resolve_device(self.config.get("device", "cpu"))

    def update_config(self, update_dict: Dict[str, Any]) -> None:
        """Merge ``update_dict`` (nested, or flat leaf names) into the config.

        A key that is not part of the config has no effect: it is dropped with
        a ``UserWarning`` naming it (MeTaL printed a notice).
        """
        self.config = merge_config(self.config, update_dict, type(self).__name__)

    def _record_init_kwargs(self, **kwargs: Any) -> None:
        """Remember constructor arguments so ``load`` can rebuild the model.

        Arguments that are not plain data (e.g. custom ``nn.Module`` objects)
        make the model non-rebuildable; ``load`` then needs ``model=``.
        """
        self._init_kwargs = kwargs if all(map(is_plain, kwargs.values())) else None

    # -------------------------------------------------------------- prediction
    def predict_proba(self, X: Any, **kwargs: Any) -> np.ndarray:
        """Return an ``[n, k]`` array of class probabilities for the items ``X``."""
        raise NotImplementedError

    def predict(
        self,
        X: Any,
        break_ties: Union[str, int] = "random",
        return_probs: bool = False,
        **kwargs: Any,
    ) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
        """Predict hard labels in ``1..k`` from ``predict_proba``.

        Args:
            X: the items (whatever ``predict_proba`` accepts).
            break_ties: how rows whose maximum is shared (within 1e-5) are
                resolved: ``"random"`` (uniform among the tied classes, NumPy's
                global RNG), ``"abstain"`` (label 0), an int label, or
                ``"hash"``/``"first"`` (see ``metal.labels.break_ties``).
            return_probs: also return the probabilities.

        Returns:
            ``Y_p`` (int64 ``[n]``), or ``(Y_p, Y_s)`` with ``Y_s`` ``[n, k]``
            (multi-task models: lists of them, one per task). When
            ``predict_proba`` returns a lazy dask array (a dask ``X``), so
            does ``predict``, with the same row chunks.
        """
        Y_p, Y_s = self._resolve(self.predict_proba(X, **kwargs), break_ties)
        return (Y_p, Y_s) if return_probs else Y_p

    def _resolve(
        self, Y_s: Any, break_ties: Union[str, int]
    ) -> Tuple[np.ndarray, np.ndarray]:
        """``(labels, probabilities)`` from ``predict_proba``'s output; lazy
        labels of lazy (dask) probabilities (see
        ``metal._dask.lazy_break_ties``)."""
        if is_dask_array(Y_s):
            return lazy_break_ties(Y_s, break_ties, self.label_convention), Y_s
        Y_s = self._to_numpy(Y_s)
        return self._break_ties(Y_s, break_ties).astype(np.int64), Y_s

    def _break_ties(self, Y_s: Any, break_ties: Union[str, int] = "random"):
        """Resolve each row of ``Y_s [n, k]`` to a label (float array ``[n]``)."""
        labels = resolve_ties(Y_s, break_ties, self.label_convention)
        return labels.astype(np.float64)

    # ----------------------------------------------------------------- scoring
    def score(
        self,
        data: Any,
        metric: Union[str, Sequence[str]] = "accuracy",
        break_ties: Union[str, int] = "random",
        verbose: bool = True,
        print_confusion_matrix: bool = True,
        **kwargs: Any,
    ) -> Union[float, List[float]]:
        """Score predictions on labelled data.

        Args:
            data: ``(X, Y)`` (a tuple or list), a ``Dataset`` or a ``DataLoader``
                yielding ``(X, Y)`` batches; ``Y`` holds gold labels in 1..k
                (0 = no gold label, ignored), or probabilistic labels ``[n, k]``
                (scored by their most likely class).
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
            confusion_matrix(Y, Y_p, pretty_print=True)
        return scores[0] if isinstance(metric, str) else scores

    def _get_predictions(
        self,
        data: Any,
        break_ties: Union[str, int] = "random",
        return_probs: bool = False,
        **kwargs: Any,
    ):
        """Predict on ``data`` and return ``(Y_p, Y)`` or ``(Y_p, Y, Y_s)``.

        A ``(X, Y)`` tuple is predicted in one call (the model batches
        internally); Datasets and DataLoaders are iterated batch by batch.
        Gold labels come back as a 1-D array (probabilistic rows as their most
        likely class).
        """
        if is_pair(data):
            X, Y = unpack_pair(data, "data")
            Y = self._gold_labels(Y)
            Y_p, Y_s = self.predict(
                X, break_ties=break_ties, return_probs=True, **kwargs
            )
            if is_dask_array(Y_p):  # lazy predictions of a dask X: one pass
                Y_p, Y_s = compute(Y_p, Y_s)
        else:
            loader = self._create_data_loader(data, shuffle=False)
            Y_ps, Ys, Y_ss = [], [], []
            for batch in loader:
                Xb, Yb = batch[0], batch[1]
                Y_pb, Y_sb = self.predict(
                    Xb, break_ties=break_ties, return_probs=True, **kwargs
                )
                Y_ps.append(Y_pb)
                Ys.append(self._gold_labels(Yb))
                Y_ss.append(Y_sb)
            Y_p = self._stack_batches(Y_ps)
            Y = self._stack_batches(Ys)
            Y_s = self._stack_batches(Y_ss)
        self._check_gold_lengths(Y, Y_p)
        return (Y_p, Y, Y_s) if return_probs else (Y_p, Y)

    def _gold_labels(self, Y: Any) -> np.ndarray:
        """Gold labels as a 1-D array (probabilistic rows as their most likely
        class); a dask array is computed."""
        if is_dask_array(Y):
            (Y,) = compute(Y)
        return hard_labels(self._to_numpy(Y))

    @staticmethod
    def _check_gold_lengths(Y: np.ndarray, Y_p: np.ndarray) -> None:
        if len(Y) != len(Y_p):
            raise ValueError(
                f"X and Y must have the same number of items; found {len(Y_p)} and "
                f"{len(Y)}."
            )

    # -------------------------------------------------------------------- data
    def _create_data_loader(self, data: Any, **kwargs: Any) -> Optional[DataLoader]:
        """Wrap ``data`` in a DataLoader configured by ``data_loader_config``.

        ``None`` -> ``None``; a DataLoader is returned unchanged; a Dataset or
        an ``(X, Y)`` tuple/list is wrapped.
        """
        loader_config = self.config.get("train_config", {}).get(
            "data_loader_config", {}
        )
        return make_data_loader(
            data,
            loader_config,
            self._create_dataset,
            pin_memory=self._device().type == "cuda",
            **kwargs,
        )

    def _create_dataset(self, *data: Any) -> TensorDataset:
        """Base dataset: every element converted to a float32 tensor."""
        return TensorDataset(*[self._to_torch(d, dtype=torch.float32) for d in data])

    @staticmethod
    def _stack_batches(X: Sequence[Any]) -> np.ndarray:
        """Concatenate per-batch arrays: 1-D end to end, 2-D by rows."""
        return stack_batches(X)

    @staticmethod
    def _to_numpy(Z: Any) -> Optional[np.ndarray]:
        """Convert sparse, list, ndarray or tensor (any device) to a NumPy array."""
        return to_numpy(Z)

    @staticmethod
    def _to_torch(Z: Any, dtype: Optional[torch.dtype] = None):
        """Convert sparse, list, ndarray or tensor to a torch tensor (of ``dtype``)."""
        return to_torch(Z, dtype=dtype)

    def reset(self) -> None:
        """Re-initialise every submodule's parameters."""
        self.apply(self._reset_module)

    @staticmethod
    def _reset_module(m: nn.Module) -> None:
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

    def save(self, destination: Any, **kwargs: Any) -> None:
        """Save the model to ``destination``: class name, plain config, constructor
        arguments, state dict and plain attributes. The write is atomic."""
        bundle = {
            "format": _SAVE_FORMAT,
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "init_kwargs": to_plain(self._init_kwargs),
            "config": to_plain(self.config),
            "state_dict": self.state_dict(),
            "extra_state": to_plain(self._get_extra_state_dict()),
        }
        atomic_torch_save(bundle, destination, **kwargs)

    @classmethod
    def load(
        cls,
        source: Any,
        model: Optional["Classifier"] = None,
        map_location: Any = "cpu",
        **kwargs: Any,
    ) -> "Classifier":
        """Load a model saved with ``save``.

        The file is read with ``torch.load(..., weights_only=True)``, so it can
        never execute code. The model is rebuilt from its recorded class and
        constructor arguments; for models built from custom modules pass a
        freshly constructed ``model`` of the same architecture to load into.

        Raises:
            FileNotFoundError: if there is no such file.
            ValueError: naming the file, when it is damaged (unreadable, or an
                entry is missing or of the wrong type), is not a model file
                written by ``save`` (a checkpoint, a bare state dict), holds a
                model of another kind than ``cls`` or does not fit ``model``.
        """
        path = os.fspath(source)
        bundle = safe_torch_load(path, "model file", map_location=map_location)
        if not isinstance(bundle, dict) or bundle.get("format") != _SAVE_FORMAT:
            raise ValueError(_not_a_model_file(path, bundle, cls))
        check_entries(bundle, path, _BUNDLE_TYPES, "model file")
        if not is_state_dict(bundle["state_dict"]):
            raise ValueError(
                f"{path!r} is damaged: the model file's 'state_dict' entry is not "
                "a state dict (tensors under string keys)."
            )
        given = model is not None
        if not given:
            model_cls = cls._saved_class(path, bundle)
            try:
                model = model_cls._rebuild(bundle["init_kwargs"], bundle["config"])
            except _RESTORE_ERRORS as exc:
                raise ValueError(
                    f"{path!r} is damaged: its {model_cls.__name__} cannot be "
                    f"rebuilt from the recorded arguments ({_reason(exc)})."
                ) from exc
        before = _snapshot(model) if given else None
        try:
            model.config = bundle["config"]
            model._set_extra_state_dict(bundle["extra_state"])
            model._prepare_for_state_dict(bundle["state_dict"])
            model.load_state_dict(bundle["state_dict"])
        except _RESTORE_ERRORS + (RuntimeError,) as exc:
            if before is not None:  # the given model is left as it was
                _restore(model, before)
            problem = (
                f"does not fit the given {type(model).__name__}"
                if given
                else f"is damaged: its {type(model).__name__} cannot be restored"
            )
            raise ValueError(f"{path!r} {problem} ({_reason(exc)}).") from exc
        model.eval()
        return model

    @classmethod
    def _saved_class(cls, path: str, bundle: Dict[str, Any]) -> type:
        """The model class recorded in a model file: ``cls`` or a subclass."""
        try:
            model_cls = find_class(bundle["class"], Classifier, "Model class")
        except ValueError as exc:
            raise ValueError(f"Cannot load {path!r}: {exc}") from None
        if not issubclass(model_cls, cls):
            raise ValueError(
                f"{path!r} holds a model of class {model_cls.__name__}, not "
                f"{cls.__name__}; load it with {model_cls.__name__}.load."
            )
        if bundle["init_kwargs"] is None:
            raise ValueError(
                f"The model in {path!r} was built from custom modules and cannot "
                "be rebuilt from the file alone; construct the same architecture "
                "and pass it as load(source, model=...)."
            )
        return model_cls

    @classmethod
    def _rebuild(cls, init_kwargs: dict, config: dict) -> "Classifier":
        """Construct an untrained instance with the saved architecture."""
        kwargs = dict(init_kwargs)
        kwargs["seed"] = None
        kwargs["verbose"] = False
        return cls(**kwargs)


def _snapshot(model: "Classifier") -> Tuple[Any, Dict[str, Any], Dict[str, Any]]:
    """What ``load`` may change on a given model: its config, plain attributes
    and tensors (copied)."""
    state = {name: value.detach().clone() for name, value in model.state_dict().items()}
    extra = copy.deepcopy(model._get_extra_state_dict())
    return copy.deepcopy(model.config), extra, state


def _restore(model: "Classifier", snapshot: Tuple[Any, Dict, Dict]) -> None:
    config, extra, state = snapshot
    model.config = config
    model._set_extra_state_dict(extra)
    model._prepare_for_state_dict(state)
    model.load_state_dict(state)


def _given_modules(**modules: Any) -> Dict[str, Any]:
    """The keyword arguments that are not None (constructor modules to record)."""
    return {name: module for name, module in modules.items() if module is not None}


def _not_a_model_file(path: str, content: Any, cls: type) -> str:
    """Why a file that is readable is not a model file written by ``save``."""
    if isinstance(content, dict) and "model" in content:
        return (
            f"{path!r} is a training checkpoint, not a model file written by "
            f"{cls.__name__}.save; resume training from it with "
            "resume_training, or read its weights with "
            "metal.logging.checkpointer.load_checkpoint(path)['model']."
        )
    if is_state_dict(content) and content:
        return (
            f"{path!r} holds a bare state dict, not a model file written by "
            f"{cls.__name__}.save; load it into a constructed model with "
            "model.load_state_dict."
        )
    return f"{path!r} is not a model file written by {cls.__name__}.save."


def _reason(exc: Exception) -> str:
    """An exception's message for a parenthesis inside a sentence."""
    return str(exc).strip().rstrip(".") or type(exc).__name__
