"""A ``LogWriter`` that also writes TensorBoard event files.

The TensorBoard backend (``tensorboardX``, else ``torch.utils.tensorboard``) is
imported only when a ``TensorBoardWriter`` is built, so it is an optional
dependency of ``metal``.
"""

import json
from typing import Any, Optional

from metal._io import json_default
from metal.logging.writer import LogWriter, OperationLogWriter


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
    the JSON run log (see ``LogWriter`` for the arguments). In MeTaL's layout
    the event file name ends in ``.<run_name>``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        summary_writer = _summary_writer_class()
        self.tb_writer = summary_writer(
            self.log_subdir, filename_suffix=self.event_file_suffix
        )

    def _record(self, name: str, value: Optional[float], step: Any) -> None:
        """Keep the scalar in the JSON run log and add it to TensorBoard."""
        super()._record(name, value, step)
        if value is not None:
            self.tb_writer.add_scalar(name, value, step)

    def _config_written(self, tag: str, config: Any) -> None:
        """Add a written config to TensorBoard as text (tag: the file name
        without ``.json``)."""
        text = json.dumps(config, indent=1, default=json_default)
        self.tb_writer.add_text(tag, text, 0)

    def close(self) -> None:
        """MeTaL's end of run: write the JSON run log and close the event file."""
        super().close()
        self.tb_writer.close()

    def cleanup(self) -> None:
        """The Operation API's end of run: close the event file (no
        ``log.json``)."""
        self.tb_writer.close()


class OperationTensorBoardWriter(OperationLogWriter, TensorBoardWriter):
    """The Operation API's face of ``TensorBoardWriter``
    (``metal.mmtl.TensorBoardWriter``): ``OperationLogWriter``'s folder layout;
    its end of run (``cleanup``) closes the event file and writes no
    ``log.json``."""
