"""The training logger in MeTaL v0.5's multi-task vocabulary.

This is ``metal.logging.Logger`` (which counts progress for the training
engine) with v0.5's constructor, its ``loss_time``/``metrics_time`` checks and
its screen format, which groups metrics by task::

    [2.0 epo]:
      CircleTask:[Payload0_train/labels/loss=9.68e-02, Payload0_valid/labels/accuracy=9.60e-01]
      model:[train/all/loss=7.92e-02, train/all/lr=2.00e-02]
"""  # noqa: E501

from typing import Any, Dict, List, Optional

import numpy as np
from tqdm import tqdm

from metal.logging.logger import Logger as _EngineLogger
from metal.logging.logger import Timer

__all__ = ["Logger", "Timer"]


class Logger(_EngineLogger):
    """Counts training progress and logs metrics (v0.5 multi-task format).

    Args:
        config: ``logger_config``: ``log_unit`` (``seconds``, ``examples``,
            ``batches``, ``epochs``), ``log_every``, ``score_every`` (a multiple
            of ``log_every``; negative: same as ``log_every``; 0: never score),
            ``log_lr``.
        batches_per_epoch: batches in one epoch (for fractional epochs).
        writer: a ``metal.logging.LogWriter`` or falsy.
        verbose: print each log.
    """

    def __init__(
        self,
        config: Dict[str, Any],
        batches_per_epoch: Optional[int],
        writer: Any = {},
        verbose: bool = True,
    ) -> None:
        config = dict(config or {})
        log_every = config.get("log_every", config.get("log_train_every", 1))
        score_every = config.get("score_every", config.get("log_valid_every", -1))
        if isinstance(score_every, (int, float)) and score_every < 0:
            config.pop("log_valid_every", None)
            config["score_every"] = log_every
        super().__init__(
            config, writer, verbose=verbose, batches_per_epoch=batches_per_epoch
        )
        self.loss_ticks = 0

    def loss_time(self) -> bool:
        """Whether a log is due (``log_every`` units since the last one)."""
        if self.unit_count >= self.log_train_every:
            self.loss_ticks += 1
            return True
        return False

    def metrics_time(self) -> bool:
        """Whether scoring is due: every ``score_every / log_every`` logs
        (never when ``score_every`` is 0)."""
        if self.valid_every_X and self.loss_ticks >= self.valid_every_X:
            self.loss_ticks = 0
            return True
        return False

    def print_to_screen(self, metrics_dict: Dict[str, Any]) -> None:
        """Print a progress header, then one line per task (and ``model``)."""
        groups: Dict[str, List[str]] = {}
        for full_name, value in metrics_dict.items():
            group, _, rest = full_name.partition("/")
            groups.setdefault(group, []).append(f"{rest}={_format(value)}")
        lines = [f"{self._v05_header()}:"]
        order = sorted(groups, key=lambda group: (group == "model", group))
        lines += [f"  {group}:[{', '.join(groups[group])}]" for group in order]
        tqdm.write("\n".join(lines))

    def _v05_header(self) -> str:
        total = self.unit_total
        if self.log_unit == "epochs":
            text = f"{total:.1f}" if float(total).is_integer() else f"{total:.2f}"
            return f"[{text} epo]"
        return f"[{total} {self.log_unit[:3]} ({float(self.epoch_total):.2f} epo)]"

    def write_to_file(self, metrics_dict: Dict[str, Any]) -> None:
        """``writer.add_scalar(name, value, step)``; the step is the batch
        count for epoch units (integer steps), else the unit count."""
        step = self.batch_total if self.log_unit == "epochs" else self.unit_total
        for name, value in metrics_dict.items():
            self.writer.add_scalar(name, value, step)


def _format(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.2e}"
    return str(value)
