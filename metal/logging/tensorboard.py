"""A ``LogWriter`` that also writes TensorBoard event files.

The TensorBoard backend (``tensorboardX``, else ``torch.utils.tensorboard``) is
imported only when a ``TensorBoardWriter`` is built, so it is an optional
dependency of ``metal``.
"""

import json

from metal.logging.writer import LogWriter, _json_default


def _summary_writer_class():
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ImportError(
                "TensorBoardWriter needs tensorboardX (pip install tensorboardX) "
                "or the tensorboard package."
            ) from None
    return SummaryWriter


class TensorBoardWriter(LogWriter):
    """Writes scalars to TensorBoard event files in ``log_subdir`` as well as to
    the JSON run log (see ``LogWriter`` for the arguments)."""

    def __init__(self, log_dir=None, run_dir=None, run_name=None, **kwargs):
        super().__init__(log_dir=log_dir, run_dir=run_dir, run_name=run_name, **kwargs)
        summary_writer = _summary_writer_class()
        suffix = f".{run_name}" if run_name else ""
        self.tb_writer = summary_writer(self.log_subdir, filename_suffix=suffix)

    def add_scalar(self, name: str, val, i) -> bool:
        accepted = super().add_scalar(name, val, i)
        if accepted and val is not None:
            self.tb_writer.add_scalar(name, float(val), i)
        return accepted

    def write_config(self, config: dict, config_name: str = "config") -> None:
        super().write_config(config, config_name=config_name)
        text = json.dumps(
            self._sanitize_config(config), indent=1, default=_json_default
        )
        self.tb_writer.add_text(config_name, text, 0)

    def close(self) -> None:
        """Write the JSON run log and close the event file."""
        super().close()
        self.tb_writer.close()
