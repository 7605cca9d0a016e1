"""A JSON log of a training run: scalar metrics per iteration, config, metrics.

Files go to ``log_dir/run_dir/<run_name>_<HH_MM_SS>/`` (``run_dir`` defaults to
the date ``YYYY_MM_DD``, ``log_dir`` to the current directory): ``log.json``
(the run log, with the config when added), ``config.json`` and
``metrics.json``.
"""

import json
import os
from datetime import datetime
from typing import Any, Dict

import numpy as np
import torch

from metal._version import __version__


class LogWriter:
    """Records ``add_scalar`` calls and writes them as JSON.

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
    """

    def __init__(
        self,
        log_dir=None,
        run_dir=None,
        run_name=None,
        writer_metrics=[],
        verbose=True,
        timestamp=True,
        **kwargs,
    ):
        now = datetime.now()
        start_date = now.strftime("%Y_%m_%d")
        start_time = now.strftime("%H_%M_%S")
        self.log_dir = os.fspath(log_dir) if log_dir is not None else os.getcwd()
        self.run_name = run_name
        if timestamp:
            self.run_dir = run_dir or start_date
            folder = f"{run_name}_{start_time}" if run_name else start_time
        else:
            self.run_dir = start_date if run_dir is None else run_dir
            folder = run_name or ""
        self.log_subdir = os.path.join(self.log_dir, self.run_dir, folder)
        os.makedirs(self.log_subdir, exist_ok=True)
        self.writer_metrics = list(writer_metrics or [])
        self.verbose = verbose
        self.include_config = kwargs.pop("include_config", True)
        self.log_dict: Dict[str, Any] = {
            "start_date": start_date,
            "start_time": start_time,
            "commit": None,
            "version": __version__,
            "config": None,
            "run_log": {},
        }

    @property
    def log_path(self) -> str:
        """Where ``write_log``/``close`` write the run log."""
        return os.path.join(self.log_subdir, "log.json")

    @property
    def run_log(self) -> Dict[str, list]:
        return self.log_dict["run_log"]

    def add_scalar(self, name: str, val, i) -> bool:
        """Record ``[i, val]`` under ``name`` unless a whitelist excludes it."""
        if self.writer_metrics and name not in self.writer_metrics:
            return False
        value = None if val is None else float(val)
        self.run_log.setdefault(name, []).append([_plain(i), value])
        return True

    def add_config(self, config: dict) -> None:
        """Store the (sanitised) config in the run log."""
        self.log_dict["config"] = self._sanitize_config(config)

    def write(self, config=None, metrics=None) -> None:
        """Write the run log, and the config / metrics when given."""
        self.write_log()
        if config is not None:
            self.write_config(config)
        if metrics is not None:
            self.write_metrics(metrics)

    def write_log(self) -> None:
        self._write_json(self.log_dict, self.log_path)

    def write_config(self, config: dict, config_name: str = "config") -> None:
        path = os.path.join(self.log_subdir, f"{config_name}.json")
        self._write_json(self._sanitize_config(config), path)

    def write_metrics(self, metrics: dict) -> None:
        self._write_json(metrics, os.path.join(self.log_subdir, "metrics.json"))

    def close(self) -> None:
        """Write the run log to ``log_path``."""
        self.write_log()

    def _write_json(self, obj, path: str) -> None:
        if self.verbose:
            print(f"Writing log to {path}")
        tmp_path = f"{path}.tmp"
        with open(tmp_path, "w") as f:
            json.dump(obj, f, indent=1, default=_json_default)
        os.replace(tmp_path, path)

    @staticmethod
    def _sanitize_config(config: dict) -> dict:
        """A deep copy with callables (and lists of callables) as strings."""
        if config is None:
            return None
        return _sanitize(config)


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


def _plain(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (np.generic, torch.Tensor)):
        return _plain(value.item())
    return value


def _json_default(obj):
    """JSON for the non-JSON values a config or metrics dict may hold."""
    if isinstance(obj, (np.ndarray, np.generic)):
        return obj.tolist()
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=str)
    return str(obj)
