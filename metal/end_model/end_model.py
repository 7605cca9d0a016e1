"""A feed-forward classifier trained on hard or probabilistic labels.

Label conventions: classes are ``1..k``; training labels are hard labels
``[n]`` in ``1..k`` or probabilistic labels ``[n, k]`` (rows sum to 1, column
``c`` is ``P(Y = c + 1)``); gold labels for validation/scoring may contain 0
("no label"), which scoring ignores.
"""

import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sparse
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from metal._checks import (
    check_choice,
    check_features,
    check_gold_labels,
    check_train_labels,
    is_int,
    is_number,
    labels_to_tensor,
)
from metal._data import row_chunks, unpack_pair
from metal.classifier import Classifier, _given_modules
from metal.end_model.em_defaults import em_default_config
from metal.end_model.identity_module import IdentityModule
from metal.end_model.loss import (
    REDUCTIONS,
    SoftCrossEntropyLoss,
    soft_cross_entropy,
)
from metal.logging import LogWriter
from metal.training import TrainingMixin
from metal.utils import (
    MetalDataset,
    _length_or_none,
    merge_config,
    pred_to_prob,
    user_stacklevel,
)

# Rows per forward pass in predict_proba (bounds activation memory).
PREDICT_BATCH_SIZE = 4096


class EndModel(TrainingMixin, Classifier):
    """A network ``input -> middle layers -> head`` producing ``k`` logits.

    Args:
        layer_out_dims: ``[d_in, h_1, ..., h_m, k]``: the input module's output
            width (the feature count for the default identity input), the widths
            of the ``m`` middle layers, and the number of classes ``k``.
        input_module: replaces the identity input (must output ``d_in`` features).
        middle_modules: replace the default ``Linear`` middle layers (one per
            middle layer; extra entries are ignored).
        head_module: replaces the default ``Linear(h_m, k)`` head; it must emit
            ``k`` logits.
        **kwargs: config entries (see ``em_default_config``), flat or nested.

    Raises:
        ValueError: for bad config values, fewer than two layer widths (unless
            ``skip_head``), a head whose output width differs from ``k``, or
            invalid loss settings.
    """

    _config_defaults = em_default_config

    def __init__(
        self,
        layer_out_dims: Sequence[int],
        input_module: Optional[nn.Module] = None,
        middle_modules: Optional[Sequence[nn.Module]] = None,
        head_module: Optional[nn.Module] = None,
        **kwargs: Any,
    ) -> None:
        layer_out_dims, config = self._merge_config(layer_out_dims, kwargs)
        if len(layer_out_dims) < 2 and not config["skip_head"]:
            raise ValueError(
                "layer_out_dims must list at least the input width and k, e.g. "
                f"[d_in, k]; found {layer_out_dims} (or set skip_head=True)."
            )
        super().__init__(k=layer_out_dims[-1], config=config)
        self._build(input_module, middle_modules, head_module)
        modules = _given_modules(
            input_module=input_module,
            middle_modules=middle_modules,
            head_module=head_module,
        )
        self._finish_construction(layer_out_dims=layer_out_dims, **kwargs, **modules)

    # Unknown constructor keys stay in the config (with a warning), as MeTaL's
    # EndModel inserted them.
    _inserts_unknown_keys = True

    @classmethod
    def _merge_config(
        cls, layer_out_dims: Sequence[int], kwargs: Dict[str, Any]
    ) -> Tuple[List[int], Dict[str, Any]]:
        """The checked ``layer_out_dims`` and the model's config: the class's
        defaults with the constructor's keyword arguments merged in (unknown
        keys are accepted with a ``UserWarning``; see
        ``metal.utils.merge_config``)."""
        layer_out_dims = _check_layer_out_dims(layer_out_dims)
        config = merge_config(
            cls._config_defaults,
            {**kwargs, "layer_out_dims": layer_out_dims},
            cls.__name__,
            insert=cls._inserts_unknown_keys,
        )
        return layer_out_dims, config

    def _finish_construction(self, **init_kwargs: Any) -> None:
        """Record the constructor's arguments (for ``load``), move to the
        device, switch to eval mode and print the network when verbose."""
        self._record_init_kwargs(**init_kwargs)
        self.to(self._device())
        self.eval()
        if self.config["verbose"]:
            self._print()

    # -------------------------------------------------------------- building
    def _build(
        self,
        input_module: Optional[nn.Module],
        middle_modules: Optional[Sequence[nn.Module]],
        head_module: Optional[nn.Module],
    ) -> None:
        dims = self.config["layer_out_dims"]
        input_layer = self._make_layer(
            input_module if input_module is not None else IdentityModule(),
            "input",
            self.config["input_layer_config"],
            output_dim=dims[0],
        )
        layers = [input_layer]
        for i in range(len(dims) - 2):
            if middle_modules is not None:
                module, output_dim = middle_modules[i], None
            else:
                module, output_dim = nn.Linear(dims[i], dims[i + 1]), dims[i + 1]
            layers.append(
                self._make_layer(
                    module,
                    "middle",
                    self.config["middle_layer_config"],
                    output_dim=output_dim,
                )
            )
        if not self.config["skip_head"]:
            head = (
                head_module if head_module is not None else nn.Linear(dims[-2], self.k)
            )
            self._check_head_width(head)
            layers.append(head)
        self.network = _LayerSequence(*layers) if len(layers) > 1 else layers[0]
        self.criteria = self._build_loss()

    def _check_head_width(self, head: nn.Module) -> None:
        """Reconcile ``k`` with a head whose logits width can be read off.

        A narrower head sets ``k`` to its width, with a warning: MeTaL trained
        and predicted such a model over the head's classes (its loss read only
        the first target columns), and v0.5 code relies on that. A wider head
        raises: its extra logits would be classes no label can name.
        """
        width = _output_width(head)
        if width is None or width == self.k:
            return
        if width > self.k:
            raise ValueError(
                f"The head emits {width} logits but k={self.k} (the last entry of "
                "layer_out_dims); make them equal."
            )
        warnings.warn(
            f"The head emits {width} logits but the last entry of layer_out_dims "
            f"is {self.k}; the model uses k={width} (labels 1..{width}), as "
            "MeTaL did. Make them equal to silence this warning.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        self.k = width

    def _build_loss(self) -> SoftCrossEntropyLoss:
        """The soft cross-entropy of ``loss_fn_reduction`` with the class
        weights of ``loss_weights``."""
        tc = self.config["train_config"]
        reduction = tc["loss_fn_reduction"]
        check_choice(reduction, REDUCTIONS, "loss_fn_reduction")
        weights = self._class_weights(tc["loss_weights"])
        return SoftCrossEntropyLoss(weight=weights, reduction=reduction)

    def _class_weights(self, weights: Any) -> Optional[np.ndarray]:
        """``loss_weights`` as float32 ``[k]`` (None stays None)."""
        if weights is None:
            return None
        weights = np.asarray(weights, dtype=np.float32).reshape(-1)
        if weights.shape[0] != self.k:
            raise ValueError(
                f"loss_weights must have one weight per class (k={self.k}); "
                f"found {weights.shape[0]}."
            )
        if self.config["verbose"]:
            print(f"Using class weights {weights.tolist()}")
        return weights

    @staticmethod
    def _make_layer(
        module: nn.Module,
        prefix: str,
        layer_config: Dict[str, Any],
        output_dim: Optional[int] = None,
    ) -> nn.Module:
        """``module`` followed by ReLU, BatchNorm1d and Dropout as configured
        (an ``IdentityModule`` is returned as is)."""
        if isinstance(module, IdentityModule):
            return module
        layers = [module]
        if layer_config[f"{prefix}_relu"]:
            layers.append(nn.ReLU())
        if layer_config[f"{prefix}_batchnorm"] and output_dim:
            layers.append(nn.BatchNorm1d(output_dim))
        dropout = layer_config[f"{prefix}_dropout"]
        if dropout is not None and not (is_number(dropout) and 0 <= dropout <= 1):
            raise ValueError(
                f"{prefix}_dropout must be a probability in [0, 1]; found "
                f"{dropout!r}."
            )
        if dropout:
            layers.append(nn.Dropout(dropout))
        return nn.Sequential(*layers) if len(layers) > 1 else module

    def _print(self) -> None:
        print("\nNetwork architecture:")
        print(self.network)
        print()

    # ------------------------------------------------------------ prediction
    def forward(self, x: Any) -> torch.Tensor:
        """Logits ``[n, k]`` for a batch of inputs (whatever the input module
        accepts; a float tensor ``[n, d_in]`` for the default identity input)."""
        return self.network(x)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``[n, k]`` (column ``c`` is ``P(Y = c + 1)``).

        ``X`` may be a tensor, a NumPy array, a scipy.sparse matrix or a list
        (floats are converted to the model's dtype, sparse rows densified in
        chunks); it is moved to the model's device and run in eval mode, under
        ``torch.no_grad``, in chunks of ``PREDICT_BATCH_SIZE`` rows.

        Raises:
            ValueError: for features of another width than the network's input
                (when it can be read off its first layer) or NaN/inf values.
        """
        X = self._checked_features(X, "X", allow_empty=True)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                chunks = [
                    self._probs_of(chunk) for chunk in row_chunks(X, PREDICT_BATCH_SIZE)
                ]
        finally:
            self.train(was_training)
        if not chunks:
            return np.zeros((0, self.k), dtype=np.float32)
        return np.concatenate(chunks, axis=0)

    def _as_model_input(self, X: Any) -> Any:
        converted = self._as_model_tensor(X)
        return X if converted is None else converted

    def _input_width(self) -> Optional[int]:
        """Features per item the network reads, when its first layer tells
        (None for inputs such as token ids read by an embedding or an LSTM)."""
        return _input_width(self.network)

    def _checked_features(self, X: Any, name: str, allow_empty: bool) -> Any:
        """``X`` in the model's input form, checked (``check_features``) when it
        is array-like; other inputs are passed to the network unchanged."""
        X = self._as_model_input(X)
        if isinstance(X, torch.Tensor) or sparse.issparse(X):
            check_features(X, name, self._input_width(), allow_empty=allow_empty)
        return X

    def _check_first_item(self, data: Any, name: str, allow_empty: bool) -> None:
        """Check a Dataset (or a DataLoader's map-style dataset) before training:
        not empty (unless ``allow_empty``) and, for tensor features, the width
        and values of its first item (no batch is drawn, so no RNG is used)."""
        dataset = data.dataset if isinstance(data, DataLoader) else data
        try:
            n = len(dataset)
        except TypeError:  # an iterable-style dataset: nothing to look at
            return
        if n == 0:
            if not allow_empty:
                raise ValueError(
                    f"{name} must have at least one item; found an empty "
                    f"{type(dataset).__name__} (there is nothing to train on)."
                )
            return
        try:
            item = dataset[0]
        except Exception:  # noqa: BLE001 - the loader's own error comes later
            return
        x = item[0] if isinstance(item, (tuple, list)) and item else None
        if isinstance(x, torch.Tensor) and x.dim() == 1:
            check_features(
                x.unsqueeze(0), f"{name} (its first item)", self._input_width()
            )

    def _probs_of(self, X: Any) -> np.ndarray:
        if sparse.issparse(X):
            X = torch.from_numpy(X.toarray()).to(self._float_dtype())
        if isinstance(X, torch.Tensor):
            X = X.to(self._device())
        logits = self.forward(X)
        self._check_logits(logits)
        return F.softmax(logits, dim=1).cpu().numpy()

    def _check_logits(self, logits: torch.Tensor) -> None:
        if logits.dim() != 2 or logits.shape[1] != self.k:
            raise ValueError(
                f"The network emits logits of shape {tuple(logits.shape)} but k="
                f"{self.k} classes were declared (last entry of layer_out_dims); "
                "the head must emit [n, k] logits."
            )

    # -------------------------------------------------------------- training
    def train_model(
        self,
        train_data: Any,
        valid_data: Any = None,
        log_writer: Optional[LogWriter] = None,
        **kwargs: Any,
    ) -> None:
        """Train on ``train_data``, validating on ``valid_data``.

        Args:
            train_data: ``(X, Y)`` with ``Y`` hard labels ``[n]`` in ``1..k`` or
                probabilistic labels ``[n, k]``; or a Dataset/DataLoader yielding
                such ``(X, Y)`` batches. ``X`` may be a tensor, NumPy array or
                scipy.sparse matrix.
            valid_data: ``(X, Y)`` gold labels (0 = unlabeled, ignored), a Dataset
                or a DataLoader; scored every ``log_valid_every`` log units.
            log_writer: a ``LogWriter`` to use instead of ``writer``.
            **kwargs: config updates (flat or nested); a ``seed`` here re-seeds.

        Raises:
            ValueError: for bad config values or invalid data (unknown keys
                only warn: see ``metal.utils.merge_config``).
        """
        self._update_train_config(kwargs)
        if kwargs.get("seed") is not None:
            self._set_seed(kwargs["seed"])
        train_data = self._prepare_train_data(train_data)
        valid_data = self._prepare_valid_data(valid_data)
        loss_fn = self._get_loss_fn()
        self._train_model(
            train_data, loss_fn, valid_data=valid_data, log_writer=log_writer
        )

    def _prepare_train_data(self, train_data: Any) -> Any:
        """Check ``(X, Y)`` and convert ``Y`` to float ``[n, k]`` probabilities."""
        if isinstance(train_data, (Dataset, DataLoader)):
            self._check_first_item(train_data, "train_data", allow_empty=False)
            return train_data
        X, Y = unpack_pair(train_data, "train_data")
        X = self._checked_features(X, "train_data X", allow_empty=False)
        n_x = _length_or_none(X)
        Y = self._check_train_labels(Y)
        if n_x is not None and n_x != Y.shape[0]:
            raise ValueError(
                f"train_data: X and Y must have the same number of items; found "
                f"{n_x} and {Y.shape[0]}."
            )
        return (X, Y)

    def _check_train_labels(
        self, Y: Any, k: Optional[int] = None, name: str = "train_data Y"
    ) -> torch.Tensor:
        """Hard labels in 1..k or probabilistic labels [n, k] -> float [n, k]
        (``k`` defaults to the model's; ``name`` is used in error messages)."""
        k = self.k if k is None else k
        Y = check_train_labels(Y, k, name, dtype=self._float_dtype())
        if Y.dim() == 1:
            return pred_to_prob(Y, k).to(self._float_dtype())
        return Y

    def _prepare_valid_data(self, valid_data: Any) -> Any:
        """Check ``(X, Y)`` validation data (gold labels in ``0..k``)."""
        if valid_data is None:
            return None
        if isinstance(valid_data, (Dataset, DataLoader)):
            self._check_first_item(valid_data, "valid_data", allow_empty=True)
            return valid_data
        X, Y = unpack_pair(valid_data, "valid_data")
        X = self._checked_features(X, "valid_data X", allow_empty=True)
        Y_t = labels_to_tensor(Y, "valid_data Y")
        n_x = _length_or_none(X)
        if n_x is not None and n_x != Y_t.shape[0]:
            raise ValueError(
                f"valid_data: X and Y must have the same number of items; found "
                f"{n_x} and {Y_t.shape[0]}."
            )
        check_gold_labels(Y_t, self.k, "valid_data Y")
        return (X, Y)

    def _criterion(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """``criterion(logits [n, k], targets [n, k]) -> loss`` from ``criteria``
        (on the model's device), for training: a reduction of ``"none"`` is
        refused, and the plain ``SoftCrossEntropyLoss`` is called as a function
        (no module-call overhead per batch; a replaced module is called)."""
        criteria = self.criteria
        if criteria.reduction == "none":
            raise ValueError(
                "loss_fn_reduction='none' gives per-example losses; training needs "
                "'mean' or 'sum'."
            )
        criteria.to(self._device())
        if type(criteria) is not SoftCrossEntropyLoss:
            return criteria
        weight, reduction = criteria.weight, criteria.reduction
        return lambda logits, Y: soft_cross_entropy(logits, Y, weight, reduction)

    def _get_loss_fn(self) -> Callable[[Any, Any], torch.Tensor]:
        """``loss_fn(X, Y)``: soft cross-entropy of ``forward(X)`` against ``Y``
        (hard labels are converted to one-hot rows per batch)."""
        criterion = self._criterion()
        k = self.k

        def loss_fn(X, Y):
            logits = self.forward(X)
            if logits.shape[-1] != k:
                self._check_logits(logits)
            if Y.dim() != 2 or Y.shape[1] != k or not Y.is_floating_point():
                Y = self._preprocess_Y(Y, k)
            return criterion(logits, Y)

        return loss_fn

    @staticmethod
    def _preprocess_Y(Y: Any, k: int) -> torch.Tensor:
        """Hard labels ``[n]``/``[n, 1]`` in 1..k -> one-hot float ``[n, k]``;
        probabilistic labels ``[n, k]`` are returned as floats."""
        if not isinstance(Y, torch.Tensor):
            Y = torch.as_tensor(np.asarray(Y))
        if Y.dim() == 1 or (Y.dim() == 2 and Y.shape[1] == 1 and k != 1):
            return pred_to_prob(Y.reshape(-1).long(), k).float()
        return Y if Y.is_floating_point() else Y.float()

    def _create_dataset(self, *data: Any) -> MetalDataset:
        return MetalDataset(*data)

    @staticmethod
    def _reset_module(m: nn.Module) -> None:
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()


# ------------------------------------------------------------------- helpers
class _LayerSequence(nn.Sequential):
    """``nn.Sequential`` that passes over ``IdentityModule`` layers instead of
    calling them (saving a module call per batch; hooks on an identity layer
    therefore do not run). Prints and saves exactly like ``nn.Sequential``."""

    def forward(self, x: Any) -> Any:
        for module in self._modules.values():
            if type(module) is not IdentityModule:
                x = module(x)
        return x

    def _get_name(self) -> str:
        return "Sequential"


def _check_layer_out_dims(layer_out_dims: Sequence[int]) -> List[int]:
    """``layer_out_dims`` as a list of Python ints: it must be a non-empty list
    (tuple, array) of positive integers, e.g. ``[d_in, h_1, k]``; floats,
    strings and booleans are refused rather than truncated or split."""
    if isinstance(layer_out_dims, np.ndarray):
        layer_out_dims = layer_out_dims.tolist()
    if (
        not isinstance(layer_out_dims, (list, tuple))
        or not layer_out_dims
        or not all(is_int(d) and d >= 1 for d in layer_out_dims)
    ):
        raise ValueError(
            "layer_out_dims must be a non-empty list of positive ints [d_in, ..., "
            f"k]; found {layer_out_dims!r}."
        )
    return [int(d) for d in layer_out_dims]


def _input_width(module: nn.Module) -> Optional[int]:
    """Features per item a network reads when it can be read off: the input
    width of its first layer that is not width-preserving, if that is a
    ``Linear`` (or ``BatchNorm1d``); None otherwise (an embedding, an LSTM...)."""
    if isinstance(module, nn.Linear):
        return module.in_features
    if isinstance(module, nn.BatchNorm1d):
        return module.num_features
    if isinstance(module, nn.Sequential):
        for child in module:
            if isinstance(child, _WIDTH_PRESERVING):
                continue
            return _input_width(child)
    return None


def _output_width(module: nn.Module) -> Optional[int]:
    """Logits width of a head when it can be read off (Linear last), else None."""
    if isinstance(module, nn.Linear):
        return module.out_features
    if isinstance(module, nn.Sequential):
        for child in reversed(list(module)):
            if isinstance(child, _WIDTH_PRESERVING):
                continue
            return _output_width(child)
    return None


_WIDTH_PRESERVING = (
    IdentityModule,
    nn.Identity,
    nn.ReLU,
    nn.Dropout,
    nn.BatchNorm1d,
    nn.Tanh,
    nn.Sigmoid,
)
