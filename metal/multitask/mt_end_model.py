"""A multi-task feed-forward network: shared layers with one head per task.

Label conventions: task ``s`` has classes ``1..K_s``. Training labels are a list
of ``t`` per-task arrays, each hard labels ``[n]`` in ``1..K_s`` or probabilistic
labels ``[n, K_s]`` (rows sum to 1); gold labels for validation and scoring may
contain 0 ("no label"), which scoring ignores.

Architecture (layer indices): 0 is the input layer (one shared module, or one
module per task whose outputs are concatenated), ``1..L`` the middle layers. Each
task's head reads the output of the layer given by ``task_head_layers`` and, with
``pass_predictions``, also the head outputs (logits) of its parent tasks.
"""

import copy
import warnings
from collections import defaultdict
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
import scipy.sparse as sparse
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from metal._checks import (
    check_features,
    check_gold_labels,
    check_int,
    check_task_list,
)
from metal._data import row_chunks, unpack_pair
from metal.classifier import _given_modules
from metal.end_model.em_defaults import em_default_config
from metal.end_model.end_model import (
    PREDICT_BATCH_SIZE,
    EndModel,
    _input_width,
    _output_width,
)
from metal.end_model.identity_module import IdentityModule
from metal.multitask.mt_classifier import (
    MTClassifier,
    resolve_task_graph,
    task_graph_spec,
)
from metal.multitask.mt_em_defaults import mt_em_default_config
from metal.multitask.task_graph import TaskGraph
from metal.multitask.utils import MultiXYDataset, MultiYDataset
from metal.utils import _length_or_none, recursive_merge_dicts

__all__ = ["MTEndModel"]

ModuleOrList = Union[nn.Module, Sequence[nn.Module], None]


class MTEndModel(MTClassifier, EndModel):
    """A network ``input -> middle layers`` with a classification head per task.

    Args:
        layer_out_dims: ``[d_0, d_1, ..., d_L]``: the input layer's output width
            (the feature count for the default identity input; with per-task
            input modules, the total width of their concatenated outputs) and
            the widths of the ``L`` middle layers. No trailing cardinality: head
            sizes come from the task graph.
        input_modules: one module shared by all tasks (default: identity), or a
            list of ``t`` modules, one per task, each reading that task's input
            ``X[s]``.
        middle_modules: replace the default ``Linear(d_{i-1}, d_i)`` middle
            layers (one per middle layer).
        head_modules: a list of ``t`` heads, or one module copied for every
            task; by default task ``s``'s head is ``Linear(d, K_s)`` on its layer's
            width ``d`` (plus ``sum K_p`` over its parents with
            ``pass_predictions``).
        K: the cardinalities (used when ``task_graph`` is not given).
        task_graph: a ``TaskGraph`` (default: ``TaskGraph(K)``).
        **kwargs: config entries, flat or nested (see ``em_default_config`` and
            ``mt_em_default_config``); an unknown key is dropped with a
            ``UserWarning``.

    Raises:
        ValueError: for bad config values, neither ``K`` nor ``task_graph``,
            ``K`` disagreeing with the graph, module lists of the wrong length,
            invalid ``task_head_layers`` (unused top layers, parents not below
            their children with ``pass_predictions``), a head on a per-task input
            layer without ``head_modules``, or a head emitting the wrong width.
    """

    _config_defaults = recursive_merge_dicts(
        em_default_config, mt_em_default_config, misses="insert", verbose=False
    )
    # MeTaL's MTEndModel reported unknown keys and dropped them.
    _inserts_unknown_keys = False

    def __init__(
        self,
        layer_out_dims: Sequence[int],
        input_modules: ModuleOrList = None,
        middle_modules: Optional[Sequence[nn.Module]] = None,
        head_modules: ModuleOrList = None,
        K: Sequence[int] = [],
        task_graph: Optional[TaskGraph] = None,
        **kwargs: Any,
    ) -> None:
        layer_out_dims, config = self._merge_config(layer_out_dims, kwargs)
        task_graph = resolve_task_graph(K, task_graph)
        MTClassifier.__init__(self, K=task_graph.K, config=config)
        self.task_graph = task_graph
        self.K = list(task_graph.K)
        self.t = task_graph.t
        self._build(input_modules, middle_modules, head_modules)
        modules = _given_modules(
            input_modules=input_modules,
            middle_modules=middle_modules,
            head_modules=head_modules,
        )
        self._finish_construction(
            layer_out_dims=layer_out_dims,
            task_graph_spec=task_graph_spec(task_graph),
            **kwargs,
            **modules,
        )

    # -------------------------------------------------------------- building
    def _build(
        self,
        input_modules: ModuleOrList,
        middle_modules: Optional[Sequence[nn.Module]],
        head_modules: ModuleOrList,
    ) -> None:
        dims = self.config["layer_out_dims"]
        n_middle = len(dims) - 1
        self._build_input_layer(input_modules, dims[0])
        self._build_middle_layers(middle_modules, dims)
        head_layers = self._head_layers(n_middle)
        self.task_map: Dict[int, List[int]] = defaultdict(list)
        for s, layer in enumerate(head_layers):
            self.task_map[layer].append(s)
        # Task indices attached after each layer (0..L), for forward.
        self._heads_at = [tuple(self.task_map.get(i, ())) for i in range(n_middle + 1)]
        self._pass_predictions = bool(self.config["pass_predictions"])
        self._parents = [self.task_graph.parents[s] for s in range(self.t)]
        self.heads = nn.ModuleList(self._build_heads(head_modules, head_layers, dims))
        self.criteria = self._build_loss()

    def _build_input_layer(self, input_modules: ModuleOrList, d_0: int) -> None:
        layer_config = self.config["input_layer_config"]
        if input_modules is None:
            input_modules = IdentityModule()
        if isinstance(input_modules, (list, tuple, nn.ModuleList)):
            modules = list(input_modules)
            if len(modules) != self.t:
                raise ValueError(
                    f"input_modules must be one module or a list with one module per "
                    f"task (t={self.t}); found a list of {len(modules)}."
                )
            # Registered (an nn.ModuleList), so they train, save and move.
            self.input_layer = nn.ModuleList(
                [self._make_layer(m, "input", layer_config) for m in modules]
            )
            self._per_task_inputs = True
        elif isinstance(input_modules, nn.Module):
            self.input_layer = self._make_layer(
                input_modules, "input", layer_config, output_dim=d_0
            )
            self._per_task_inputs = False
        else:
            raise ValueError(
                "input_modules must be an nn.Module or a list of them (one per "
                f"task); found {type(input_modules).__name__}."
            )

    def _build_middle_layers(
        self, middle_modules: Optional[Sequence[nn.Module]], dims: List[int]
    ) -> None:
        layer_config = self.config["middle_layer_config"]
        n_middle = len(dims) - 1
        if middle_modules is not None and len(middle_modules) < n_middle:
            raise ValueError(
                f"middle_modules must hold one module per middle layer "
                f"({n_middle} from layer_out_dims={dims}); found "
                f"{len(middle_modules)}."
            )
        layers = []
        for i in range(n_middle):
            if middle_modules is not None:
                layer = self._make_layer(middle_modules[i], "middle", layer_config)
            else:
                layer = self._make_layer(
                    nn.Linear(dims[i], dims[i + 1]),
                    "middle",
                    layer_config,
                    output_dim=dims[i + 1],
                )
            layers.append(layer)
        self.middle_layers = _NamedLayers(layers)

    def _head_layers(self, n_middle: int) -> List[int]:
        """The layer index each task's head reads from, validated."""
        spec = self.config["task_head_layers"]
        if isinstance(spec, str) and spec == "top":
            layers = [n_middle] * self.t
        elif isinstance(spec, (list, tuple)):
            layers = list(spec)
            if len(layers) != self.t:
                raise ValueError(
                    f"task_head_layers must give one layer index per task "
                    f"(t={self.t}); found {len(layers)}: {spec}."
                )
            for s, layer in enumerate(layers):
                layers[s] = check_int(
                    layer,
                    f"task_head_layers[{s}] (task {s})",
                    minimum=0,
                    maximum=n_middle,
                    expected=f"a layer index in 0..{n_middle}",
                )
        else:
            raise ValueError(
                f"task_head_layers must be 'top' or a list of layer indices; found "
                f"{spec!r}."
            )
        if max(layers) < n_middle:
            raise ValueError(
                f"No head attaches to the top layer {n_middle}: layers "
                f"{max(layers) + 1}..{n_middle} of layer_out_dims would be unused "
                f"(task_head_layers={layers})."
            )
        if self.config["pass_predictions"]:
            for parent, child in self.task_graph.edges:
                if layers[parent] >= layers[child]:
                    raise ValueError(
                        f"With pass_predictions, task {parent}'s head (layer "
                        f"{layers[parent]}) must attach below its child task "
                        f"{child}'s head (layer {layers[child]})."
                    )
        return layers

    def _build_heads(
        self, head_modules: ModuleOrList, head_layers: List[int], dims: List[int]
    ) -> List[nn.Module]:
        if isinstance(head_modules, (list, tuple, nn.ModuleList)):
            if len(head_modules) != self.t:
                raise ValueError(
                    f"head_modules must be one module or a list with one head per "
                    f"task (t={self.t}); found a list of {len(head_modules)}."
                )
            heads = list(head_modules)
        elif isinstance(head_modules, nn.Module):
            heads = [copy.deepcopy(head_modules) for _ in range(self.t)]
        elif head_modules is None:
            heads = []
            for s, layer in enumerate(head_layers):
                if layer == 0 and self._per_task_inputs:
                    raise ValueError(
                        f"Task {s}'s head attaches to the per-task input layer, "
                        "whose output width is not declared; pass head_modules."
                    )
                width = dims[layer]
                if self.config["pass_predictions"]:
                    width += sum(self.K[p] for p in self.task_graph.parents[s])
                heads.append(nn.Linear(width, self.K[s]))
        else:
            raise ValueError(
                "head_modules must be an nn.Module or a list of them (one per "
                f"task); found {type(head_modules).__name__}."
            )
        for s, head in enumerate(heads):
            width = _output_width(head)
            if width is not None and width != self.K[s]:
                raise ValueError(
                    f"Task {s}'s head emits {width} logits but the task has "
                    f"K={self.K[s]} classes."
                )
        return heads

    def _class_weights(self, weights: Any) -> None:
        """No class weights: they would differ per task."""
        if weights is not None:
            warnings.warn(
                "MTEndModel does not use loss_weights (class weights differ per "
                "task); the loss is unweighted."
            )
        return None

    def _print(self) -> None:
        print("\nNetwork architecture:")
        print(self.input_layer)
        print(self.middle_layers)
        print(self.heads)
        print()

    # ------------------------------------------------------------ prediction
    def forward(self, x: Any) -> List[torch.Tensor]:
        """Logits for a batch: a list of ``t`` tensors ``[n, K_s]``.

        ``x`` is one input batch (shared input module) or a list of per-task
        input batches (per-task input modules).
        """
        outputs: List[Optional[torch.Tensor]] = [None] * self.t
        if self._per_task_inputs:
            if not isinstance(x, (list, tuple)) or len(x) != len(self.input_layer):
                raise ValueError(
                    f"This model has one input module per task; pass X as a list of "
                    f"{self.t} per-task inputs (found {type(x).__name__})."
                )
            per_task = [module(x_s) for module, x_s in zip(self.input_layer, x)]
            for s in self._heads_at[0]:
                outputs[s] = self._head_forward(s, per_task[s], outputs)
            x = torch.cat([out.reshape(out.shape[0], -1) for out in per_task], dim=1)
        else:
            if type(self.input_layer) is not IdentityModule:
                x = self.input_layer(x)
            for s in self._heads_at[0]:
                outputs[s] = self._head_forward(s, x, outputs)
        for i, layer in enumerate(self.middle_layers, 1):
            x = layer(x)
            for s in self._heads_at[i]:
                outputs[s] = self._head_forward(s, x, outputs)
        return outputs

    def _head_forward(
        self, s: int, x: torch.Tensor, outputs: Sequence[Optional[torch.Tensor]]
    ) -> torch.Tensor:
        parents = self._parents[s]
        if self._pass_predictions and parents:
            x = torch.cat([x] + [outputs[p] for p in parents], dim=1)
        return self.heads[s](x)

    def predict_proba(self, X: Any) -> List[np.ndarray]:
        """Per-task class probabilities: a list of ``t`` arrays ``[n, K_s]``.

        ``X`` is one input (tensor, NumPy array, scipy.sparse, list) or, with
        per-task input modules, a list of per-task inputs. Runs in eval mode,
        under ``torch.no_grad``, in chunks of ``PREDICT_BATCH_SIZE`` rows.

        Raises:
            ValueError: for features with NaN/inf values or of another width
                than the network's input (when its first layer tells).
        """
        X = self._checked_features(X, "X", allow_empty=True)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                chunks = [self._probs_of(chunk) for chunk in self._input_chunks(X)]
        finally:
            self.train(was_training)
        if not chunks:
            return [np.zeros((0, K_s), dtype=np.float32) for K_s in self.K]
        return [np.concatenate([c[s] for c in chunks]) for s in range(self.t)]

    def _as_model_input(self, X: Any) -> Any:
        if not self._per_task_inputs:
            return EndModel._as_model_input(self, X)
        if not isinstance(X, (list, tuple)) or len(X) != self.t:
            raise ValueError(
                f"This model has one input module per task; X must be a list of "
                f"{self.t} per-task inputs (found {type(X).__name__})."
            )
        parts = [self._as_model_tensor(x) for x in X]
        return [x if part is None else part for x, part in zip(X, parts)]

    def _checked_features(self, X: Any, name: str, allow_empty: bool) -> Any:
        """``X`` in the model's input form, checked as ``EndModel`` checks its
        features; per-task inputs are checked one by one (``X[s]``)."""
        if not self._per_task_inputs:
            return EndModel._checked_features(self, X, name, allow_empty)
        X = self._as_model_input(X)
        for s, x in enumerate(X):
            if isinstance(x, torch.Tensor) or sparse.issparse(x):
                width = _input_width(self.input_layer[s])
                check_features(x, f"{name}[{s}]", width, allow_empty=allow_empty)
        return X

    def _input_width(self) -> Optional[int]:
        """The shared input's width, when the first layer reading it tells."""
        if self._per_task_inputs:
            return None
        if not isinstance(self.input_layer, IdentityModule):
            return _input_width(self.input_layer)
        return _input_width(self.middle_layers[0]) if len(self.middle_layers) else None

    def _input_chunks(self, X: Any) -> Iterator[Any]:
        if not isinstance(X, list):
            yield from row_chunks(X, PREDICT_BATCH_SIZE)
            return
        if all(isinstance(x, torch.Tensor) or sparse.issparse(x) for x in X):
            n = X[0].shape[0]
            for start in range(0, n, PREDICT_BATCH_SIZE):
                yield [x[start : start + PREDICT_BATCH_SIZE] for x in X]
        else:
            yield X

    def _probs_of(self, X: Any) -> List[np.ndarray]:
        device = self._device()

        def prepare(x):
            if sparse.issparse(x):
                x = torch.from_numpy(x.toarray()).to(self._float_dtype())
            return x.to(device) if isinstance(x, torch.Tensor) else x

        X = [prepare(x) for x in X] if isinstance(X, list) else prepare(X)
        logits = self.forward(X)
        for s, logit in enumerate(logits):
            if logit.dim() != 2 or logit.shape[1] != self.K[s]:
                raise ValueError(
                    f"Task {s}'s head emits logits of shape {tuple(logit.shape)}; "
                    f"expected [n, {self.K[s]}]."
                )
        return [F.softmax(logit, dim=1).cpu().numpy() for logit in logits]

    def predict_task_proba(self, X: Any, t: int = 0, **kwargs: Any) -> np.ndarray:
        """Probabilities ``[n, K_t]`` for task ``t``."""
        return self.predict_proba(X)[self._check_task_index(t, self.t, "t")]

    # ---------------------------------------------------------------- data
    def _create_dataset(self, *data: Any) -> Union[MultiXYDataset, MultiYDataset]:
        """``MultiXYDataset`` for per-task inputs, else ``MultiYDataset`` (one
        input object shared by the tasks, which may itself be a list of items)."""
        X, Y = data
        if self._per_task_inputs:
            return MultiXYDataset(X, Y)
        return MultiYDataset(X, Y)

    # -------------------------------------------------------------- training
    def _prepare_train_data(self, train_data: Any) -> Any:
        """Check ``(X, [Y_0, ..., Y_{t-1}])`` and convert every task's labels to
        float ``[n, K_s]`` probabilities."""
        if isinstance(train_data, (Dataset, DataLoader)):
            self._check_first_item(train_data, "train_data", allow_empty=False)
            return train_data
        X, Y = unpack_pair(train_data, "train_data")
        X = self._checked_features(X, "train_data X", allow_empty=False)
        Y = self._check_task_labels(Y, "train_data Y")
        Y = [
            self._check_train_labels(Y_s, k=K_s, name=f"train_data Y[{s}] (task {s})")
            for s, (Y_s, K_s) in enumerate(zip(Y, self.K))
        ]
        self._check_lengths(X, [Y_s.shape[0] for Y_s in Y], "train_data")
        return (X, Y)

    def _prepare_valid_data(self, valid_data: Any) -> Any:
        """Check ``(X, [Y_0, ..., Y_{t-1}])`` validation data (gold labels in
        ``0..K_s``, or probabilities ``[n, K_s]``)."""
        if valid_data is None:
            return None
        if isinstance(valid_data, (Dataset, DataLoader)):
            self._check_first_item(valid_data, "valid_data", allow_empty=True)
            return valid_data
        X, Y = unpack_pair(valid_data, "valid_data")
        X = self._checked_features(X, "valid_data X", allow_empty=True)
        Y = self._check_task_labels(Y, "valid_data Y")
        lengths = []
        for s, (Y_s, K_s) in enumerate(zip(Y, self.K)):
            Y_t = check_gold_labels(Y_s, K_s, f"valid_data Y[{s}] (task {s})")
            lengths.append(Y_t.shape[0])
        self._check_lengths(X, lengths, "valid_data")
        return (X, list(Y))

    def _check_task_labels(self, Y: Any, name: str) -> list:
        """``Y`` as a list of ``t`` per-task label arrays (a bare label array is
        accepted when ``t == 1``)."""
        if not isinstance(Y, (list, tuple)) and self.t == 1:
            Y = [Y]
        return check_task_list(Y, name, t=self.t)

    def _check_lengths(self, X: Any, lengths: List[int], name: str) -> None:
        """Every task's labels and inputs must have the same number of items."""
        for s, n_s in enumerate(lengths):
            if n_s != lengths[0]:
                raise ValueError(
                    f"{name} Y[{s}] (task {s}) has {n_s} labels but Y[0] has "
                    f"{lengths[0]}; every task needs one label per item."
                )
        n = lengths[0]
        if self._per_task_inputs:
            if not isinstance(X, (list, tuple)) or len(X) != self.t:
                raise ValueError(
                    f"{name}: this model has one input module per task; X must be a "
                    f"list of {self.t} per-task inputs (found {type(X).__name__})."
                )
            for s, X_s in enumerate(X):
                n_x = _length_or_none(X_s)
                if n_x is not None and n_x != n:
                    raise ValueError(
                        f"{name}: X[{s}] (task {s}) has {n_x} items but the labels "
                        f"have {n}."
                    )
        else:
            n_x = _length_or_none(X)
            if n_x is not None and n_x != n:
                raise ValueError(f"{name}: X has {n_x} items but the labels have {n}.")

    def _preprocess_Y(self, Y: Any, k: Optional[int] = None) -> List[torch.Tensor]:
        """Per-task training targets as float ``[n, K_s]`` tensors (hard labels
        ``[n]`` become one-hot rows). A non-list ``Y`` is accepted when t == 1."""
        if not isinstance(Y, (list, tuple)):
            if self.t != 1:
                raise ValueError(
                    f"Y must be a list of per-task labels (t={self.t}); found "
                    f"{type(Y).__name__}."
                )
            Y = [Y]
        if len(Y) != self.t:
            raise ValueError(
                f"Y must have one entry per task (t={self.t}); found {len(Y)}."
            )
        return [
            (
                Y_s
                if isinstance(Y_s, torch.Tensor)
                and Y_s.dim() == 2
                and Y_s.shape[1] == K_s
                and Y_s.is_floating_point()
                else EndModel._preprocess_Y(Y_s, K_s)
            )
            for Y_s, K_s in zip(Y, self.K)
        ]

    def _get_loss_fn(self) -> Callable[[Any, Any], torch.Tensor]:
        """``loss_fn(X, Y)``: the unweighted sum over tasks of the soft
        cross-entropy of each task's logits against ``Y[s]`` (hard labels are
        converted per batch)."""
        criterion = self._criterion()

        def loss_fn(X, Y):
            outputs = self.forward(X)
            targets = self._preprocess_Y(Y)
            losses = [criterion(out, y) for out, y in zip(outputs, targets)]
            return torch.stack(losses).sum()

        return loss_fn


class _NamedLayers(nn.ModuleList):
    """The middle layers, registered as ``layer1 .. layerL`` (state-dict names
    ``middle_layers.layer<i>...``); indexable and iterable like a ModuleList."""

    def __init__(self, layers: Sequence[nn.Module] = ()) -> None:
        super().__init__()
        for i, layer in enumerate(layers, 1):
            self.add_module(f"layer{i}", layer)

    def __getitem__(self, index: Union[int, slice]) -> Any:
        return list(self._modules.values())[index]

    # nn.Module's repr shows the layer names (ModuleList's shows indices).
    __repr__ = nn.Module.__repr__
