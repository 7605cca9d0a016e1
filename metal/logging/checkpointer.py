"""Saving the best model and periodic snapshots during training.

A checkpoint file is a plain dict readable with ``torch.load(path,
weights_only=True)``: ``iteration`` (log units), ``model``, ``optimizer`` and
``lr_scheduler`` state dicts, ``score``, the best-so-far info once a best
exists (``best_model_found``, ``best_iteration``, ``best_score``) and, when the
training engine wrote it, ``training_state`` (epoch position, logger counters,
RNG states) for ``resume_training``. Files are written atomically.
"""

import os
import shutil
from typing import Any, Callable, Dict, Optional, Union

import numpy as np
import torch

from metal.classifier import atomic_torch_save

CHECKPOINT_DEFAULTS = {
    "checkpoint_best": True,
    "checkpoint_every": None,
    "checkpoint_metric": "accuracy",
    "checkpoint_metric_mode": "max",
    "checkpoint_dir": "checkpoints",
    "checkpoint_runway": 0,
}

BEST_MODEL_FILE = "best_model.pth"


class Checkpointer:
    """Keeps the best model by a metric and/or a snapshot every N log units.

    Args:
        config: a ``checkpoint_config`` dict (keys of ``CHECKPOINT_DEFAULTS``).
        verbose: print when a new best model is saved.

    The checkpoint directory is created on the first write, so a run that never
    checkpoints leaves no folder behind.
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
        if self.checkpoint_metric_mode not in ("max", "min"):
            raise ValueError(
                "checkpoint_metric_mode must be 'max' or 'min'; found "
                f"{self.checkpoint_metric_mode!r}."
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
        self._last_periodic_multiple = 0
        self._runway_announced = False
        if self.checkpoint_runway and self.verbose:
            print(
                f"No checkpoints will be saved before {self.checkpoint_runway} "
                "log units (checkpoint_runway)."
            )

    # ------------------------------------------------------------ checkpoint
    def checkpoint(
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
                number = _tidy(multiple * self.checkpoint_every)
                bundle = self.bundle_state(
                    number, None, model, optimizer, lr_scheduler, state_fn()
                )
                atomic_torch_save(bundle, self.periodic_path(number))
        if self.checkpoint_best and self.checkpoint_metric in metrics_dict:
            score = _plain_number(metrics_dict[self.checkpoint_metric])
            if self.is_best(score):
                self._save_best(
                    iteration, score, model, optimizer, lr_scheduler, state_fn
                )

    def periodic_due(self, iteration) -> bool:
        """Whether ``checkpoint`` would write a periodic snapshot at ``iteration``."""
        return (
            bool(self.checkpoint_every)
            and iteration >= self.checkpoint_runway
            and int(iteration // self.checkpoint_every) > self._last_periodic_multiple
        )

    def _save_best(self, iteration, score, model, optimizer, lr_scheduler, state_fn):
        if self.verbose:
            print(
                f"Saving model at iteration {_tidy(iteration)} with best score "
                f"{score:.3f}"
            )
        self.best_model_found = True
        self.best_iteration = _tidy(iteration)
        self.best_score = score
        self.best_saves += 1
        bundle = self.bundle_state(
            iteration, score, model, optimizer, lr_scheduler, state_fn()
        )
        atomic_torch_save(bundle, self.best_model_path)

    def is_best(self, score) -> bool:
        """Whether ``score`` beats the best so far (strictly, per the mode)."""
        if self.checkpoint_metric_mode not in ("max", "min"):
            raise ValueError(
                "checkpoint_metric_mode must be 'max' or 'min'; found "
                f"{self.checkpoint_metric_mode!r}."
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
            "iteration": _tidy(_plain_number(iteration)),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "lr_scheduler": (
                lr_scheduler.state_dict() if lr_scheduler is not None else None
            ),
            "score": None if score is None else _plain_number(score),
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


def load_checkpoint(path) -> Dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)`` onto the CPU.

    Raises:
        ValueError: if the file is not a plain-data checkpoint (for instance a
            pickle that would run code when loaded).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise ValueError(
            f"Could not read {os.fspath(path)!r} as a checkpoint: it is not plain "
            f"data that torch.load(weights_only=True) accepts ({exc})."
        ) from None
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{os.fspath(path)!r} is not a training checkpoint.")
    return state


def _plain_number(value):
    """Python ``int``/``float`` from NumPy or torch scalars."""
    if isinstance(value, (torch.Tensor, np.generic)):
        return value.item()
    return value


def _tidy(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
