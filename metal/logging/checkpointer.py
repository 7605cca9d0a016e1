"""Saving the best model and periodic snapshots during training.

A checkpoint file is a plain dict readable with ``torch.load(path,
weights_only=True)``: ``iteration`` (log units), ``model``, ``optimizer`` and
``lr_scheduler`` state dicts, ``score``, the best-so-far info once a best
exists (``best_model_found``, ``best_iteration``, ``best_score``) and, when the
training engine wrote it, ``training_state`` (epoch position, logger counters,
RNG states) for ``resume_training``. Files are written atomically.

``TaskMetricCheckpointer`` is the same checkpointer in the Operation API's
vocabulary (Snorkel v0.10, exported by ``metal.mmtl`` as ``Checkpointer``):
it is built from ``CheckpointerConfig`` fields, keeps one best model per
tracked ``task/dataset/split/metric`` and names its files
``checkpoint_<iteration>.pth`` and ``best_model_<metric>.pth``.
"""

import glob
import os
import shutil
import warnings
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Set, Union

from metal._checks import check_choice
from metal._io import (
    atomic_copy,
    atomic_torch_save,
    check_entries,
    is_state_dict,
    plain_number,
    read_state_dict,
    safe_torch_load,
    state_mismatch,
)
from metal.callbacks import Callback
from metal.logging.config import (
    CheckpointerConfig,
    check_counter_unit,
    config_from_kwargs,
)

CHECKPOINT_DEFAULTS = {
    "checkpoint_best": True,
    "checkpoint_every": None,
    "checkpoint_metric": "accuracy",
    "checkpoint_metric_mode": "max",
    "checkpoint_dir": "checkpoints",
    "checkpoint_runway": 0,
}

BEST_MODEL_FILE = "best_model.pth"


class Checkpointer(Callback):
    """Keeps the best model by a metric and/or a snapshot every N log units.

    Args:
        config: a ``checkpoint_config`` dict (keys of ``CHECKPOINT_DEFAULTS``).
        verbose: print when a new best model is saved.

    The checkpoint directory is created on the first write, so a run that never
    checkpoints leaves no folder behind.

    As a training-engine callback it checks after every batch whether a
    snapshot or a new best model is due, and at the end of the run loads the
    best model's weights into the model (when ``checkpoint_best``). MeTaL's
    ``checkpoint(...)`` does the same by hand.
    """

    def __init__(self, config: Optional[dict] = None, verbose: bool = True):
        config = {**CHECKPOINT_DEFAULTS, **(config or {})}
        self.checkpoint_best = bool(config["checkpoint_best"])
        self.checkpoint_every = config["checkpoint_every"]
        self.checkpoint_metric = config["checkpoint_metric"]
        self.checkpoint_metric_mode = config["checkpoint_metric_mode"]
        self.checkpoint_dir = config["checkpoint_dir"] or "checkpoints"
        self.checkpoint_runway = config["checkpoint_runway"] or 0
        self.verbose = verbose
        check_choice(
            self.checkpoint_metric_mode, ("max", "min"), "checkpoint_metric_mode"
        )
        if self.checkpoint_every is not None and not self.checkpoint_every > 0:
            raise ValueError(
                "checkpoint_every must be a positive number of log units or None; "
                f"found {self.checkpoint_every!r}."
            )
        if self.checkpoint_runway < 0:
            raise ValueError(
                "checkpoint_runway must be >= 0; found " f"{self.checkpoint_runway!r}."
            )
        self.best_model_found = None
        self.best_iteration = None
        self.best_score = None
        self.best_saves = 0
        self._best_at_batch: Optional[int] = None
        self._last_periodic_multiple = 0
        self._runway_announced = False
        if self.checkpoint_runway and self.verbose:
            print(
                f"No checkpoints will be saved before {self.checkpoint_runway} "
                "log units (checkpoint_runway)."
            )

    # -------------------------------------------------------------- callback
    def on_batch_end(self, engine, metrics: Optional[Dict[str, Any]], is_last: bool):
        """Save what is due after a batch (``metrics``: the log event's)."""
        units = engine.progress.unit_total
        if metrics is None and not self.periodic_due(units):
            return
        best_saves = self.best_saves
        self._checkpoint(
            metrics or {},
            units,
            engine.model,
            engine.optimizer,
            engine.lr_schedule,
            training_state=lambda: engine.training_state(is_last),
        )
        if self.best_saves != best_saves:
            self._best_at_batch = engine.state.batches_seen

    def on_fit_end(self, engine, result) -> None:
        """Report the best, and load its weights into the model when
        ``checkpoint_best`` (a warning says so when the metric never came)."""
        result.best_iteration = self.best_iteration
        result.best_score = self.best_score
        if not self.checkpoint_best:
            return
        if self.best_model_found:
            if self._best_at_batch != engine.state.batches_seen:
                self.load_best_model(engine.model)
            # else: no batch ran since the best was saved; the weights are it
            result.best_restored = True
        elif engine.state.validated:
            warnings.warn(
                f"The checkpoint metric {self.checkpoint_metric!r} was never logged "
                f"(logged: {sorted(engine.metrics_hist)}); keeping the final model."
            )

    def on_resume(self, engine, bundle: Dict[str, Any]) -> None:
        """Continue from a checkpoint's best-so-far info."""
        self.load_state_dict(bundle)
        self.skip_periodic_until(engine.progress.unit_total)

    # ------------------------------------------------------------ checkpoint
    def _checkpoint(
        self,
        metrics_dict: Dict[str, Any],
        iteration,
        model,
        optimizer,
        lr_scheduler,
        training_state: Union[None, dict, Callable[[], dict]] = None,
    ) -> None:
        """Save whatever is due at ``iteration`` (in log units).

        * a periodic snapshot ``model_checkpoint_<N>.pth`` once each time the
          iteration reaches a new multiple ``N`` of ``checkpoint_every``;
        * ``best_model.pth`` when ``metrics_dict`` holds ``checkpoint_metric``
          with a better value than the best so far.

        ``training_state`` (a dict, or a function returning one, called only
        when a file is written) is stored for resuming.
        """
        if iteration < self.checkpoint_runway:
            return
        if self.checkpoint_runway and not self._runway_announced:
            self._runway_announced = True
            if self.verbose:
                print(f"Checkpoint runway met at iteration {iteration}.")
        state_fn = (
            training_state if callable(training_state) else lambda: training_state
        )
        if self.checkpoint_every:
            multiple = int(iteration // self.checkpoint_every)
            if multiple > self._last_periodic_multiple:
                self._last_periodic_multiple = multiple
                number = plain_number(multiple * self.checkpoint_every, tidy=True)
                bundle = self.bundle_state(
                    number, None, model, optimizer, lr_scheduler, state_fn()
                )
                atomic_torch_save(bundle, self.periodic_path(number))
        if self.checkpoint_best:
            self._save_bests(
                metrics_dict, iteration, model, optimizer, lr_scheduler, state_fn
            )

    # MeTaL's name of the call (the Operation API's face redefines it).
    checkpoint = _checkpoint

    def periodic_due(self, iteration) -> bool:
        """Whether ``checkpoint`` would write a periodic snapshot at ``iteration``."""
        return (
            bool(self.checkpoint_every)
            and iteration >= self.checkpoint_runway
            and int(iteration // self.checkpoint_every) > self._last_periodic_multiple
        )

    def _save_bests(
        self, metrics_dict, iteration, model, optimizer, lr_scheduler, state_fn
    ) -> None:
        """Save ``best_model.pth`` if ``metrics_dict`` improves the metric."""
        if self.checkpoint_metric not in metrics_dict:
            return
        score = plain_number(metrics_dict[self.checkpoint_metric])
        if self.is_best(score):
            self._save_best(iteration, score, model, optimizer, lr_scheduler, state_fn)

    def _record_best(self, iteration, score) -> None:
        """Note a new best of ``checkpoint_metric`` at ``iteration``."""
        self.best_model_found = True
        self.best_iteration = plain_number(iteration, tidy=True)
        self.best_score = score
        self.best_saves += 1

    def _save_best(self, iteration, score, model, optimizer, lr_scheduler, state_fn):
        if self.verbose:
            print(
                f"Saving model at iteration {plain_number(iteration, tidy=True)} "
                f"with best score "
                f"{score:.3f}"
            )
        self._record_best(iteration, score)
        bundle = self.bundle_state(
            iteration, score, model, optimizer, lr_scheduler, state_fn()
        )
        atomic_torch_save(bundle, self.best_model_path)

    def is_best(self, score) -> bool:
        """Whether ``score`` beats the best so far (strictly, per the mode)."""
        check_choice(
            self.checkpoint_metric_mode, ("max", "min"), "checkpoint_metric_mode"
        )
        if not self.best_model_found:
            return True
        if self.checkpoint_metric_mode == "max":
            return score > self.best_score
        return score < self.best_score

    def bundle_state(
        self, iteration, score, model, optimizer, lr_scheduler, training_state=None
    ) -> Dict[str, Any]:
        """The dict written to a checkpoint file (plain data only)."""
        bundle = {
            "iteration": plain_number(iteration, tidy=True),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "lr_scheduler": (
                lr_scheduler.state_dict() if lr_scheduler is not None else None
            ),
            "score": None if score is None else plain_number(score),
        }
        if self.best_model_found:
            bundle.update(self.state_dict())
        if training_state is not None:
            bundle["training_state"] = training_state
        return bundle

    # --------------------------------------------------------------- restore
    def load_best_model(self, model):
        """Load the weights of ``best_model.pth`` into ``model`` (any device).

        Raises:
            ValueError: if no best model was recorded.
        """
        if not self.best_model_found:
            raise ValueError(
                f"No best model was found by the checkpoint metric "
                f"{self.checkpoint_metric!r} (mode {self.checkpoint_metric_mode!r}); "
                "check that the metric is logged under that name."
            )
        state = load_checkpoint(self.best_model_path)
        _check_fits(state["model"], model, self.best_model_path)
        model.load_state_dict(state["model"])
        if self.verbose:
            print(
                f"Restored best model from iteration {self.best_iteration} with "
                f"score {self.best_score:.3f}"
            )
        return model

    def restore(self, destination) -> Dict[str, Any]:
        """Read a checkpoint file (safely: ``weights_only=True``, on CPU)."""
        return load_checkpoint(destination)

    def state_dict(self) -> Dict[str, Any]:
        """Best-so-far info as plain Python values."""
        return {
            "best_model_found": bool(self.best_model_found),
            "best_iteration": self.best_iteration,
            "best_score": self.best_score,
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Continue from a checkpoint's best-so-far info (absent keys are fine)."""
        if state.get("best_model_found"):
            self.best_model_found = True
            self.best_iteration = state.get("best_iteration")
            self.best_score = state.get("best_score")

    def skip_periodic_until(self, iteration) -> None:
        """Don't rewrite periodic snapshots up to ``iteration`` (after a resume)."""
        if self.checkpoint_every:
            self._last_periodic_multiple = int(iteration // self.checkpoint_every)

    # ----------------------------------------------------------------- files
    @property
    def best_model_path(self) -> str:
        return os.path.join(self.checkpoint_dir, BEST_MODEL_FILE)

    def periodic_path(self, iteration) -> str:
        return os.path.join(self.checkpoint_dir, f"model_checkpoint_{iteration}.pth")

    def clean_up(self) -> None:
        """Delete the checkpoint directory and everything in it."""
        if os.path.isdir(self.checkpoint_dir):
            shutil.rmtree(self.checkpoint_dir)


class TaskMetricCheckpointer(Checkpointer):
    """The Operation API's checkpointer (``metal.mmtl.Checkpointer``).

    Args:
        counter_unit: ``points`` | ``batches`` | ``epochs``, the unit of the
            iterations passed to ``checkpoint``.
        evaluation_freq: evaluations happen every this many units; checkpoints
            every ``evaluation_freq * checkpoint_factor`` units.
        **kwargs: ``CheckpointerConfig`` fields (``checkpoint_dir``,
            ``checkpoint_factor``, ``checkpoint_metric``,
            ``checkpoint_task_metrics``, ``checkpoint_runway``,
            ``checkpoint_clear``).

    The settings are checked before anything touches the disk; then
    ``checkpoint_dir`` is created. Tracked metrics are ``checkpoint_metric``
    and ``checkpoint_task_metrics``, each ``"task/dataset/split/metric:mode"``
    (mode ``min`` or ``max``); ``best_metric_dict`` holds the best value of
    each seen so far and ``checkpoint_task_metrics`` all of them as
    ``{metric: mode}``. ``checkpoint_metric`` is the name (without the mode)
    of the metric whose best model ``load_best_model`` restores.

    It is a ``metal.logging.Checkpointer``, so the training engine drives it
    with the MeTaL call ``checkpoint(metrics_dict, iteration, model, optimizer,
    lr_scheduler, training_state=None)`` (periodic snapshots every
    ``checkpoint_freq`` units, resumable), while the Operation API calls
    ``checkpoint(iteration, model, metric_dict)``; both keep the same best
    models.

    Raises:
        ValueError: for a malformed metric, a negative ``checkpoint_runway``,
            an unknown counter unit or setting, or ``checkpoint_freq <= 0``.
        TypeError: if ``checkpoint_dir`` is None.
    """

    def __init__(self, counter_unit: str, evaluation_freq: float, **kwargs: Any):
        self.config: CheckpointerConfig = config_from_kwargs(CheckpointerConfig, kwargs)
        self._validate_config()
        cfg = self.config
        self.checkpoint_unit = check_counter_unit(counter_unit)
        self.checkpoint_factor = cfg.checkpoint_factor
        self.checkpoint_clear = cfg.checkpoint_clear
        main_metric = self._make_metric_map([cfg.checkpoint_metric])
        self.checkpoint_task_metrics = self._make_metric_map(
            cfg.checkpoint_task_metrics
        )
        self.checkpoint_task_metrics.update(main_metric)
        self.checkpoint_freq = evaluation_freq * cfg.checkpoint_factor
        if not self.checkpoint_freq > 0:
            raise ValueError(
                f"Invalid checkpoint freq {self.checkpoint_freq}: evaluation_freq "
                f"({evaluation_freq}) * checkpoint_factor ({cfg.checkpoint_factor}) "
                "must be > 0."
            )
        if cfg.checkpoint_dir is None:
            raise TypeError("checkpoint_dir must be a path to a folder, not None.")
        [(metric, mode)] = main_metric.items()
        super().__init__(
            {
                "checkpoint_best": True,
                "checkpoint_every": self.checkpoint_freq,
                "checkpoint_metric": metric,
                "checkpoint_metric_mode": mode,
                "checkpoint_dir": os.fspath(cfg.checkpoint_dir),
                "checkpoint_runway": cfg.checkpoint_runway,
            },
            verbose=False,
        )
        self.best_metric_dict: Dict[str, float] = {}
        os.makedirs(self.checkpoint_dir, exist_ok=True)

    # ------------------------------------------------------------ validation
    def _validate_config(self) -> None:
        """Check the metric's form and the runway (before any file is made).

        Raises:
            ValueError: if ``checkpoint_metric`` does not have four
                ``/``-separated parts or ``checkpoint_runway`` is negative.
        """
        if len(str(self.config.checkpoint_metric).split("/")) != 4:
            raise ValueError(
                "checkpoint_metric must be formatted 'task/dataset/split/metric:mode'."
                f" Found {self.config.checkpoint_metric!r}."
            )
        if self.config.checkpoint_runway < 0:
            raise ValueError(
                "checkpoint_runway must be >= 0; found "
                f"{self.config.checkpoint_runway!r}."
            )

    def _make_metric_map(
        self, metric_mode_iter: Optional[Iterable[str]]
    ) -> Dict[str, str]:
        """``{metric: mode}`` from ``"metric:mode"`` strings (None gives ``{}``).

        Raises:
            ValueError: for a string without exactly one ``:`` or a mode other
                than ``min``/``max``.
        """
        metric_map: Dict[str, str] = {}
        for spec in metric_mode_iter or []:
            if not isinstance(spec, str) or spec.count(":") != 1:
                raise ValueError(
                    "Checkpoint metrics must be given as 'metric_name:mode' (e.g. "
                    f"'task/dataset/valid/accuracy:max'); found {spec!r}."
                )
            metric, mode = spec.split(":")
            check_choice(mode, ("min", "max"), f"checkpoint metric mode (in {spec!r})")
            metric_map[metric] = mode
        return metric_map

    # ------------------------------------------------------------ checkpoint
    def checkpoint(  # type: ignore[override]
        self, iteration: float, model: Any, metric_dict: Mapping[str, Any]
    ) -> None:
        """Snapshot ``model`` as ``checkpoint_<iteration>.pth`` (with the
        model's own ``save``) and copy it to ``best_model_<metric>.pth`` for
        every tracked metric of ``metric_dict`` that is new or better. Nothing
        happens before ``checkpoint_runway``.

        (The training engine drives this checkpointer through its callback
        hooks, which write resumable bundles instead; see ``Checkpointer``.)
        """
        if iteration < self.checkpoint_runway:
            return
        path = self.periodic_path(iteration)
        _save_model(model, path)
        improved = self._is_new_best(metric_dict)
        for metric in sorted(improved):
            atomic_copy(path, self.best_metric_path(metric))
        if self.checkpoint_metric in improved:
            self._record_best(iteration, self.best_metric_dict[self.checkpoint_metric])

    def _save_bests(
        self, metrics_dict, iteration, model, optimizer, lr_scheduler, state_fn
    ) -> None:
        """The engine's best-model step: one state bundle, written to the best
        file of every tracked metric that improved."""
        improved = self._is_new_best(metrics_dict)
        if not improved:
            return
        score = None
        if self.checkpoint_metric in improved:
            score = self.best_metric_dict[self.checkpoint_metric]
            self._record_best(iteration, score)
        bundle = self.bundle_state(
            iteration, score, model, optimizer, lr_scheduler, state_fn()
        )
        first, *others = [self.best_metric_path(m) for m in sorted(improved)]
        atomic_torch_save(bundle, first)
        for path in others:
            atomic_copy(first, path)

    def _is_new_best(self, metric_dict: Mapping[str, Any]) -> Set[str]:
        """The tracked metrics of ``metric_dict`` that are new or better than
        their best so far (per their mode); ``best_metric_dict`` is updated."""
        improved = set()
        for metric, mode in self.checkpoint_task_metrics.items():
            if metric not in metric_dict:
                continue
            value = plain_number(metric_dict[metric])
            best = self.best_metric_dict.get(metric)
            if (
                best is None
                or (mode == "max" and value > best)
                or (mode == "min" and value < best)
            ):
                self.best_metric_dict[metric] = value
                improved.add(metric)
        return improved

    # ----------------------------------------------------------------- files
    def best_metric_path(self, metric: str) -> str:
        """``<checkpoint_dir>/best_model_<metric with "/" as "_">.pth``."""
        name = metric.replace("/", "_")
        return os.path.join(self.checkpoint_dir, f"best_model_{name}.pth")

    @property
    def best_model_path(self) -> str:
        """The best model file of ``checkpoint_metric``."""
        return self.best_metric_path(self.checkpoint_metric)

    def periodic_path(self, iteration) -> str:
        """``<checkpoint_dir>/checkpoint_<iteration>.pth``."""
        return os.path.join(self.checkpoint_dir, f"checkpoint_{iteration}.pth")

    def clear(self) -> None:
        """Delete the ``checkpoint_*.pth`` snapshots if ``checkpoint_clear``
        (the best models stay)."""
        if not self.checkpoint_clear:
            return
        for path in glob.glob(os.path.join(self.checkpoint_dir, "checkpoint_*.pth")):
            os.remove(path)

    def load_best_model(self, model: Any) -> Any:
        """Load the best model of ``checkpoint_metric`` into ``model`` (with
        the model's own ``load`` when it has one) and return the model; when
        no best was recorded, return ``model`` unchanged."""
        if self.checkpoint_metric not in self.best_metric_dict:
            return model
        path = self.best_model_path
        load = getattr(model, "load", None)
        if callable(load):
            loaded = load(path)
            return model if loaded is None else loaded
        state = read_state_dict(path)
        _check_fits(state, model, path)
        model.load_state_dict(state)
        return model

    # ----------------------------------------------------------- persistence
    def state_dict(self) -> Dict[str, Any]:
        """Best-so-far info, including ``best_metric_dict``."""
        state = super().state_dict()
        state["best_metric_dict"] = dict(self.best_metric_dict)
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.best_metric_dict.update(state.get("best_metric_dict") or {})


def _check_fits(state: Dict[str, Any], model: Any, path: str) -> None:
    """Refuse weights that do not fit ``model`` before any is copied (so the
    model is left as it was): a ValueError naming the file and the misfits."""
    problem = state_mismatch(state, model.state_dict())
    if problem:
        raise ValueError(
            f"The best model in {path!r} does not fit this model: {problem}."
        )


def _save_model(model, path: str) -> None:
    """Write ``model`` with its own ``save`` if it has one, else its state dict
    (atomically)."""
    save = getattr(model, "save", None)
    if callable(save):
        save(path)
    else:
        atomic_torch_save(model.state_dict(), path)


# The entries a checkpoint may hold beyond its ``model`` state dict, with the
# types they must have when present.
_OPTIONAL_ENTRIES = {
    "optimizer": (dict, type(None)),
    "lr_scheduler": (dict, type(None)),
    "training_state": dict,
}


def load_checkpoint(path) -> Dict[str, Any]:
    """Read a checkpoint (``weights_only=True``, onto the CPU).

    Raises:
        FileNotFoundError: if there is no such file.
        ValueError: naming the file, if it cannot be read (damaged, or not
            plain data, such as a pickle that would run code when loaded), is
            not a training checkpoint (a model file written by ``save``), or
            an entry has the wrong type (``model`` must be a state dict).
    """
    state = safe_torch_load(path, "checkpoint")
    if not isinstance(state, dict) or "model" not in state:
        hint = ""
        if isinstance(state, dict) and "state_dict" in state:
            name = str(state.get("class", "")).rpartition(":")[2] or "Classifier"
            hint = f" (it is a model file: load it with {name}.load)"
        raise ValueError(f"{os.fspath(path)!r} is not a training checkpoint{hint}.")
    if not is_state_dict(state["model"]):
        raise ValueError(
            f"{os.fspath(path)!r} is damaged: the checkpoint's 'model' entry is "
            "not a state dict (tensors under string keys)."
        )
    present = {key: kind for key, kind in _OPTIONAL_ENTRIES.items() if key in state}
    check_entries(state, path, present, "checkpoint")
    return state
