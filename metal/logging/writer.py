"""A JSON log of a training run: scalar metrics per step, config, metrics.

One writer in two faces, one per vocabulary, each with its own folder layout
(chosen by the class, never guessed from the arguments):

* ``LogWriter`` (MeTaL v0.5): ``LogWriter(log_dir=None, run_dir=None,
  run_name=None, writer_metrics=[], verbose=True, timestamp=True,
  include_config=True)`` writes to ``log_dir/run_dir/<run_name>_<HH_MM_SS>/``
  (``run_dir`` defaults to the date ``YYYY_MM_DD``, ``log_dir`` to the current
  directory): ``log.json`` (``write_log()``: the run log with start time,
  version and config), ``config.json`` and ``metrics.json``. Its end of run
  is ``close()``.
* ``OperationLogWriter`` (the Operation API, Snorkel v0.10's
  ``LogWriterConfig``; ``metal.mmtl.LogWriter``): ``OperationLogWriter(log_dir=
  "logs", run_name=None)`` writes to ``log_dir/run_name`` (``run_name``
  defaults to ``"<YYYY_MM_DD>/<HH_MM_SS>/"``), and ``log_dir`` is then that run
  folder; quiet by default. Its end of run is ``cleanup()``, which writes the
  bare run log ``{metric: [[step, value], ...]}`` to ``log.json``.

Every method works in either face (``write_log()`` writes MeTaL's run log,
``write_log(name)`` the bare one). ``finish(config, metrics)`` ends a run the
way the writer's vocabulary does.
"""

import dataclasses
import os
import warnings
from datetime import datetime
from typing import Any, Dict, Optional, Tuple

import numpy as np

from metal._io import atomic_write_json, atomic_write_text, plain_number
from metal._version import __version__
from metal.logging.config import LogWriterConfig

# The ``writer_config`` section of the MeTaL models' configs: the arguments of
# ``LogWriter``/``TensorBoardWriter`` a run is built with.
WRITER_CONFIG_DEFAULTS = {
    "log_dir": None,
    "run_dir": None,
    "run_name": None,
    "writer_metrics": None,
    "include_config": True,
}


class LogWriter:
    """Records ``add_scalar`` calls and writes them (and configs, metrics,
    text) as files of one run folder, ``log_subdir`` (MeTaL's layout).

    Args:
        log_dir: root folder of all runs (default: the current directory).
        run_dir: folder of this group of runs (default: today, ``YYYY_MM_DD``).
        run_name: prefix of this run's folder name (``<run_name>_HH_MM_SS``).
        writer_metrics: names to record (a whitelist); falsy records all.
        verbose: print the path of each file written.
        timestamp: name the run's folder ``<run_name>_HH_MM_SS`` (default).
            With False the folder is exactly ``log_dir/run_dir/run_name``
            (``run_dir=""`` or ``run_name=None`` drop that level).
        include_config: whether the trainer should add its config to the log.

    Attributes: ``log_subdir`` (the run folder), ``log_dir`` (the root),
    ``run_name``, ``run_dir``, ``run_log`` (``{name: [[step, value], ...]}``),
    ``log_dict`` (the run log with its header) and ``config`` (a
    ``LogWriterConfig``).
    """

    def __init__(
        self,
        log_dir: Optional[str] = None,
        run_dir: Optional[str] = None,
        run_name: Optional[str] = None,
        writer_metrics: Optional[list] = None,
        verbose: bool = True,
        timestamp: bool = True,
        include_config: bool = True,
        **kwargs: Any,
    ) -> None:
        now = datetime.now()
        start_date = now.strftime("%Y_%m_%d")
        start_time = now.strftime("%H_%M_%S")
        self._set_layout(log_dir, run_dir, run_name, timestamp, start_date, start_time)
        os.makedirs(self.log_subdir, exist_ok=True)
        self.writer_metrics = list(writer_metrics or [])
        self.verbose = bool(verbose)
        self.include_config = include_config
        self.log_dict: Dict[str, Any] = {
            "start_date": start_date,
            "start_time": start_time,
            "commit": None,
            "version": __version__,
            "config": None,
            "run_log": {},
        }

    def _set_layout(
        self, log_dir, run_dir, run_name, timestamp, start_date, start_time
    ) -> None:
        """MeTaL's layout: ``log_dir/run_dir/<run_name>_<time>``."""
        self.log_dir = os.fspath(log_dir) if log_dir is not None else os.getcwd()
        self.run_name = run_name
        if timestamp is None or timestamp:
            self.run_dir = run_dir or start_date
            folder = f"{run_name}_{start_time}" if run_name else start_time
        else:
            self.run_dir = start_date if run_dir is None else run_dir
            folder = run_name or ""
        self.log_subdir = os.path.join(self.log_dir, self.run_dir, folder)
        self.config = LogWriterConfig(log_dir=self.log_dir, run_name=run_name)

    @property
    def event_file_suffix(self) -> str:
        """The suffix of a TensorBoard event file in this layout."""
        return f".{self.run_name}" if self.run_name else ""

    @property
    def log_path(self) -> str:
        """Where ``write_log()``/``close``/``cleanup`` write the run log."""
        return os.path.join(self.log_subdir, "log.json")

    @property
    def run_log(self) -> Dict[str, list]:
        return self.log_dict["run_log"]

    def add_scalar(
        self,
        name: str,
        value: Optional[float] = None,
        step: Optional[float] = None,
        **kwargs: Any,
    ) -> bool:
        """Record ``[step, value]`` under ``name`` unless a whitelist excludes
        it; return whether it was recorded. MeTaL's keyword names ``val`` and
        ``i`` are accepted for ``value`` and ``step``."""
        value, step = _scalar_arguments(value, step, kwargs)
        if self.writer_metrics and name not in self.writer_metrics:
            return False
        self._record(name, None if value is None else float(value), step)
        return True

    def _record(self, name: str, value: Optional[float], step: Any) -> None:
        """Keep one accepted scalar (writers with another backend add to it)."""
        self.run_log.setdefault(name, []).append([plain_number(step, tidy=True), value])

    def add_config(self, config: Any) -> None:
        """Store the (sanitised) config in the MeTaL run log."""
        self.log_dict["config"] = self._sanitize_config(config)

    def write(self, config=None, metrics=None) -> None:
        """Write the run log, and the config / metrics when given."""
        self.write_log()
        if config is not None:
            self.write_config(config)
        if metrics is not None:
            self.write_metrics(metrics)

    def write_log(self, log_filename: Optional[str] = None) -> None:
        """Write the run log: without a name, MeTaL's ``log_dict`` (start time,
        version, config and ``run_log``) to ``log_path``; with a name, the
        bare ``run_log`` to ``log_subdir/log_filename``."""
        if log_filename is None:
            self._write_json(self.log_dict, self.log_path)
        else:
            self.write_json(self.run_log, log_filename)

    def write_config(
        self,
        config: Any,
        config_filename: str = "config.json",
        config_name: Optional[str] = None,
    ) -> None:
        """Write ``config`` (a dict, or a NamedTuple / dataclass config, nested
        ones included, written as dicts) to ``log_subdir/config_filename``;
        callables become strings. MeTaL's ``config_name`` may be given
        instead; a name without ``.json`` gets it appended."""
        filename = _config_filename(config_filename, config_name)
        sanitized = self._sanitize_config(config)
        self._write_json(sanitized, os.path.join(self.log_subdir, filename))
        self._config_written(os.path.splitext(filename)[0], sanitized)

    def _config_written(self, tag: str, config: Any) -> None:
        """A config file named ``<tag>.json`` was written (writers with another
        backend add it there too)."""

    def write_metrics(self, metrics: dict) -> None:
        self._write_json(metrics, os.path.join(self.log_subdir, "metrics.json"))

    def write_text(self, text: str, filename: str) -> None:
        """Write ``text`` to ``log_subdir/filename``."""
        path = os.path.join(self.log_subdir, filename)
        if self.verbose:
            print(f"Writing text to {path}")
        atomic_write_text(text, path)

    def write_json(self, dict_to_write: Dict[str, Any], filename: str) -> None:
        """Write ``dict_to_write`` as JSON to ``log_subdir/filename`` (with a
        warning if the name does not end in ``.json``)."""
        if not filename.endswith(".json"):
            warnings.warn(
                f"write_json writes JSON to {filename!r}, a name without the "
                "'.json' extension."
            )
        self._write_json(dict_to_write, os.path.join(self.log_subdir, filename))

    def close(self) -> None:
        """MeTaL's end of run: write ``log_dict`` to ``log_path``."""
        self.write_log()

    def cleanup(self) -> None:
        """The Operation API's end of run: write ``run_log`` to ``log.json``."""
        self.write_log("log.json")

    def finish(
        self, config: Any = None, metrics: Optional[Dict[str, Any]] = None
    ) -> None:
        """End a run: add ``config`` to the run log and write it (when given and
        ``include_config``), write ``metrics`` (when given), then close the run
        as this writer's vocabulary does (``close``)."""
        if config is not None and self.include_config:
            self.add_config(config)
            self.write_config(config)
        if metrics is not None:
            self.write_metrics(metrics)
        self.close()

    def _write_json(self, obj, path: str) -> None:
        if self.verbose:
            print(f"Writing log to {path}")
        atomic_write_json(obj, path)

    @staticmethod
    def _sanitize_config(config: Any) -> Any:
        """A deep copy as plain dicts (NamedTuple and dataclass configs
        converted) with callables (and lists of callables) as strings."""
        if config is None:
            return None
        return _sanitize(_config_as_dict(config))


_MISSING = object()


def _scalar_arguments(value, step, kwargs: Dict[str, Any]) -> Tuple[Any, Any]:
    """``(value, step)`` of an ``add_scalar`` call, from v0.10's names or
    MeTaL's ``val``/``i``."""
    val = kwargs.pop("val", _MISSING)
    i = kwargs.pop("i", _MISSING)
    if kwargs:
        raise TypeError(f"add_scalar got unexpected arguments {sorted(kwargs)}.")
    if val is not _MISSING:
        if value is not None:
            raise TypeError("add_scalar got both 'value' and 'val'.")
        value = val
    if i is not _MISSING:
        if step is not None:
            raise TypeError("add_scalar got both 'step' and 'i'.")
        step = i
    if step is None:
        raise TypeError("add_scalar needs a step: add_scalar(name, value, step).")
    return value, step


def _config_filename(config_filename: str, config_name: Optional[str]) -> str:
    name = os.fspath(config_name if config_name is not None else config_filename)
    return name if name.endswith(".json") else f"{name}.json"


def _config_as_dict(config: Any) -> Any:
    """NamedTuple / dataclass configs (at any depth) as plain dicts."""
    if hasattr(config, "_asdict") and hasattr(config, "_fields"):
        return {key: _config_as_dict(value) for key, value in config._asdict().items()}
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {
            field.name: _config_as_dict(getattr(config, field.name))
            for field in dataclasses.fields(config)
        }
    if isinstance(config, dict):
        return {key: _config_as_dict(value) for key, value in config.items()}
    if isinstance(config, (list, tuple)):
        return type(config)(_config_as_dict(value) for value in config)
    return config


def _sanitize(value):
    if isinstance(value, dict):
        return {key: _sanitize(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        if value and all(callable(item) for item in value):
            return str(value)
        return type(value)(_sanitize(item) for item in value)
    if callable(value):
        return str(value)
    return value.copy() if isinstance(value, np.ndarray) else value


class OperationLogWriter(LogWriter):
    """The Operation API's face of ``LogWriter`` (``metal.mmtl.LogWriter``):
    files go to ``log_dir/run_name``, and ``log_dir`` is that run folder.

    Args:
        log_dir: root folder of the runs (default ``"logs"``).
        run_name: the run folder under ``log_dir`` (default
            ``"<YYYY_MM_DD>/<HH_MM_SS>/"``).
        verbose: print the path of each file written (default False).
        **kwargs: MeTaL's settings (``writer_metrics``, ``include_config``)
            are accepted too.
    """

    def __init__(
        self,
        log_dir: Optional[str] = "logs",
        run_name: Optional[str] = None,
        verbose: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(log_dir=log_dir, run_name=run_name, verbose=verbose, **kwargs)

    def _set_layout(
        self, log_dir, run_dir, run_name, timestamp, start_date, start_time
    ) -> None:
        """The Operation API's layout: ``log_dir/run_name``."""
        root = "logs" if log_dir is None else os.fspath(log_dir)
        self.config = LogWriterConfig(log_dir=root, run_name=run_name)
        self.run_name = run_name or f"{start_date}/{start_time}/"
        self.run_dir = ""
        self.log_subdir = os.path.join(root, self.run_name)
        self.log_dir = self.log_subdir

    @property
    def event_file_suffix(self) -> str:
        return ""

    def finish(
        self, config: Any = None, metrics: Optional[Dict[str, Any]] = None
    ) -> None:
        """End a run the Operation API's way: write ``config``/``metrics`` when
        given, then ``cleanup`` (the bare run log to ``log.json``)."""
        if config is not None:
            self.write_config(config)
        if metrics is not None:
            self.write_metrics(metrics)
        self.cleanup()
