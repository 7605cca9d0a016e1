"""The base of the model tuners: search spaces, trials, the best model, reports.

A **search space** is a dict from a key to what the tuner may choose for it:

* a **list**: the candidate values (``"lr": [0.01, 0.001]``). A candidate may
  itself be a list, so ``"layer_out_dims": [[2, 10, 2], [2, 20, 2]]`` offers two
  architectures. For keys whose value is a list (such as ``layer_out_dims``)
  the candidates must be lists: ``[2, 10, 2]`` alone would mean three
  candidates ``2``, ``10`` and ``2`` and is rejected;
* a **range**: ``{"range": [lo, hi], "scale": "linear" | "log"}`` (``scale``
  defaults to ``"linear"``; ``lo <= hi``, and ``lo > 0`` for ``"log"``), sampled
  uniformly on that scale for every configuration;
* anything else (a number, string, tuple, None, ...): a fixed value.

A key may be a config key of the model (flat, like ``lr`` or ``n_epochs``), an
argument of the model's constructor or ``train_model``, or an argument of one
of the ``module_classes`` (only the modules whose constructors name the key
receive it). Unknown keys are a ``ValueError`` raised before anything is
trained.

Files: nothing is written unless ``log_dir`` (or a ``log_writer_class``, whose
logs then go under the current directory, as ``LogWriter`` itself does) is
given; folders are created when a search starts, not at construction. With a
log folder a search writes ``tuner_report.json`` (updated after every trial)
and, while it runs, ``best_model.pth``; without one the best model is kept in a
private temporary folder that is removed when the search ends.

Differences from MeTaL v0.5 (deliberate fixes):

* nothing is created at construction, and nothing at all without a log folder;
* the best model is stored with the model's own ``save`` (``best_model.pth``,
  state dict and plain config; no pickling) and rebuilt with ``load``; models
  that cannot be rebuilt from a file are kept in memory;
* a range with ``lo > hi`` is an error (v0.5 swapped the bounds);
* caller dicts (search space, ``init_kwargs``, ``module_kwargs``, ...) are never
  modified, and configurations never share list values;
* modules receive only the keys their constructors name; unknown keys are
  reported, all together, before training;
* the models train quietly unless ``verbose`` is in ``init_kwargs`` or
  ``train_kwargs``; a verbose search prints one line per trial and a table;
* checkpoints of each trial go to a temporary folder unless the caller set
  ``checkpoint_dir``;
* scores are maximised (every metric in ``METRICS`` is "higher is better"); a
  NaN score never becomes the best;
* reports have a ``config`` entry per trial and are rewritten after each trial.
"""

import contextlib
import copy
import inspect
import io
import itertools
import json
import math
import numbers
import os
import random
import shutil
import tempfile
import time
import weakref
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from metal.metrics import METRICS

SCALES = ("linear", "log")
BEST_MODEL_FILE = "best_model.pth"
REPORT_FILE = "tuner_report.json"

# Arguments of train_model that the tuner itself supplies.
_TUNER_TRAIN_ARGS = ("valid_data", "log_writer")


class ModelTuner:
    """Base class of the tuners: runs and scores trials, keeps the best model.

    Args:
        model_class: the (uninstantiated) model class to tune, e.g. ``EndModel``;
            it is built as ``model_class(*init_args, **init_kwargs)``, trained
            with its own ``train_model`` and scored with its ``score``.
        module_classes: ``{constructor_argument: module_class}``; a fresh
            module is built for every trial as
            ``module_class(*module_args[name], **module_kwargs[name])`` and passed
            to the model as that argument.
        log_dir: root folder of the logs; nothing is written without it (or
            without a ``log_writer_class``).
        run_dir: subfolder of ``log_dir`` (default: the date ``YYYY_MM_DD``).
        run_name: subfolder of ``run_dir`` (default: the time ``HH_MM_SS``).
        log_writer_class: e.g. ``metal.logging.LogWriter``; one writer per trial
            is passed to ``train_model`` (its logs go to
            ``log_subdir/model_search_<idx>_<time>/``).
        seed: seed of the tuner's own ``random.Random`` (default 0), which
            draws the configurations; no global RNG is touched.
        validation_metric: the metric (a name in ``metal.metrics.METRICS``)
            scored on the validation data; larger is better.
    """

    def __init__(
        self,
        model_class,
        module_classes: Optional[Dict[str, Callable]] = {},
        log_dir: Optional[str] = None,
        run_dir: Optional[str] = None,
        run_name: Optional[str] = None,
        log_writer_class: Optional[Callable] = None,
        seed: Optional[int] = None,
        validation_metric: str = "accuracy",
    ):
        self.model_class = model_class
        self.module_classes = _check_module_classes(module_classes)
        if log_writer_class is not None and not callable(log_writer_class):
            raise ValueError(
                "log_writer_class must be a class such as metal.logging.LogWriter "
                f"or None; found {log_writer_class!r}."
            )
        self.log_writer_class = log_writer_class
        if not isinstance(validation_metric, str) or validation_metric not in METRICS:
            raise ValueError(
                f"Unknown validation_metric {validation_metric!r}; choose from "
                f"{sorted(METRICS)} (all are maximised)."
            )
        self.validation_metric = validation_metric

        now = datetime.now()
        self.init_date = now.strftime("%Y_%m_%d")
        self.init_time = now.strftime("%H_%M_%S")
        if log_dir is None and log_writer_class is not None:
            log_dir = os.getcwd()
        if log_dir is not None:
            self.log_dir = os.fspath(log_dir)
            self.log_rootdir = os.path.join(self.log_dir, run_dir or self.init_date)
            self.log_subdir = os.path.join(self.log_rootdir, run_name or self.init_time)
            self.save_path = os.path.join(self.log_subdir, BEST_MODEL_FILE)
            self.report_path = os.path.join(self.log_subdir, REPORT_FILE)
        else:
            self.log_dir = self.log_rootdir = self.log_subdir = None
            self.save_path = self.report_path = None

        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
        ):
            raise ValueError(f"seed must be an int or None; found {seed!r}.")
        self.seed = 0 if seed is None else int(seed)
        self._tmpdir = None
        self._routing = None
        self._n_planned = None
        self._clear_state(self.seed)

    # ------------------------------------------------------------------ state
    def _clear_state(self, seed: Optional[int] = None) -> None:
        """Forget previous trials; re-seed the tuner's RNG when ``seed`` is given
        (otherwise the current RNG continues)."""
        self.start_time = time.time()
        self.run_stats: List[Dict[str, Any]] = []
        self.best_index = -1
        self.best_score = -1
        self.best_config = None
        self.search_space = None
        self._best_model = None
        self._best_model_class = None
        if seed is not None:
            self.rng = random.Random(seed)

    # ---------------------------------------------------------- search spaces
    @staticmethod
    def config_generator(
        search_space: Dict[str, Any],
        max_search: Optional[int],
        rng: random.Random,
        shuffle: bool = True,
    ) -> Iterator[Dict[str, Any]]:
        """Generate configurations (dicts, keys in search-space order).

        The discrete choices are combined in a Cartesian product (shuffled with
        ``rng`` when ``shuffle``); every range key is sampled (in search-space
        order, one ``rng.random()`` each) for every configuration.

        * no ranges: each combination once, at most ``max_search`` of them;
        * ranges and a falsy ``max_search`` (None or 0): one configuration per
          combination;
        * ranges and ``max_search = N``: exactly ``N`` configurations (the
          combinations are cycled).

        The search space is validated when this is called (``ValueError`` for
        an empty space, an empty candidate list or a malformed range) and is
        never modified; list and dict values are copied into each
        configuration.
        """
        keys, discrete, ranges = _parse_search_space(search_space)
        max_search = _check_max_search(max_search)
        if not (hasattr(rng, "random") and hasattr(rng, "shuffle")):
            raise ValueError(
                f"rng must be a random.Random instance; found {type(rng).__name__}."
            )
        return _generate_configs(keys, discrete, ranges, max_search, rng, shuffle)

    @staticmethod
    def _n_configs(search_space: Dict[str, Any], max_search: Optional[int]) -> int:
        """How many configurations ``config_generator`` yields."""
        _, discrete, ranges = _parse_search_space(search_space)
        max_search = _check_max_search(max_search)
        n_product = math.prod(len(values) for values in discrete.values())
        if ranges and max_search:
            return max_search
        return min(n_product, max_search) if max_search else n_product

    # ----------------------------------------------------------------- trials
    def _prepare_search(
        self,
        search_space: Dict[str, Any],
        valid_data,
        init_args: Sequence = (),
        init_kwargs: Dict[str, Any] = {},
        train_kwargs: Dict[str, Any] = {},
        module_args: Dict[str, Sequence] = {},
        module_kwargs: Dict[str, Dict[str, Any]] = {},
        required_keys: Sequence[str] = (),
    ) -> None:
        """Validate a search before anything is trained and decide where each
        search-space key goes (model constructor, ``train_model``, modules).

        Raises:
            ValueError: for a missing model class or validation data, a malformed
                search space, module arguments for unknown modules, or keys that
                neither the model, its ``train_model`` nor any module accepts.
        """
        if self.model_class is None:
            raise ValueError("This tuner has no model_class to train; pass one.")
        if valid_data is None:
            raise ValueError(
                "valid_data is required: each configuration is scored on it."
            )
        keys, discrete, ranges = _parse_search_space(search_space)
        _check_module_arguments(self.module_classes, module_args, module_kwargs)
        self._routing = _route_keys(
            self.model_class,
            self.module_classes,
            list(keys) + [k for k in required_keys if k not in keys],
            _representatives(discrete, ranges),
            init_args,
            init_kwargs,
            train_kwargs,
            module_args,
            module_kwargs,
        )
        missing = [k for k in required_keys if k in self._routing.unknown]
        unknown = [k for k in self._routing.unknown if k not in missing]
        if missing:
            raise ValueError(
                f"{type(self).__name__} sets {missing} for every trial, but "
                f"{_name(self.model_class)} accepts no such config key or argument."
            )
        if unknown:
            raise ValueError(
                f"Unknown search space key(s) {unknown}: each key must be a config "
                f"key or an argument of {_name(self.model_class)}, of its "
                "train_model, or of a module class "
                f"({sorted(self.module_classes) or 'none given'})."
            )
        self._routing.check_list_candidates(discrete)

    def _test_model_config(
        self,
        idx,
        config: Dict[str, Any],
        valid_data,
        init_args: Sequence = [],
        train_args: Sequence = [],
        init_kwargs: Dict[str, Any] = {},
        train_kwargs: Dict[str, Any] = {},
        module_args: Dict[str, Sequence] = {},
        module_kwargs: Dict[str, Dict[str, Any]] = {},
        verbose: bool = False,
        **score_kwargs,
    ) -> Tuple[float, Any]:
        """Build, train and score one configuration; return ``(score, model)``.

        ``config`` values override ``init_kwargs``/``train_kwargs``/
        ``module_kwargs`` for the keys they route to; none of the arguments
        is modified. The models are quiet unless ``verbose`` is set in
        ``init_kwargs`` or ``train_kwargs``; ``verbose`` here prints one line
        per trial. Checkpoints of models with a ``checkpoint_dir`` setting go
        to a temporary folder unless the caller chose one.
        """
        if "metric" in score_kwargs:
            raise ValueError(
                "Pass the metric as the tuner's validation_metric, not as a score "
                "keyword argument."
            )
        if self._routing is None or not set(config) <= set(self._routing.keys):
            # Called outside a search: every config value is a fixed setting.
            self._prepare_search(
                {key: [value] for key, value in config.items()},
                valid_data,
                init_args,
                init_kwargs,
                train_kwargs,
                module_args,
                module_kwargs,
            )
        routing = self._routing
        config = dict(config)
        model_verbose = bool(train_kwargs.get("verbose", init_kwargs.get("verbose")))
        init_kw = dict(init_kwargs)
        train_kw = dict(train_kwargs)

        for name, module_class in self.module_classes.items():
            kwargs = dict(module_kwargs.get(name, {}))
            kwargs.update(
                {k: config[k] for k in routing.module_keys[name] & set(config)}
            )
            init_kw[name] = module_class(*module_args.get(name, ()), **kwargs)
        init_kw.update({k: v for k, v in config.items() if k in routing.init_keys})
        train_kw.update({k: v for k, v in config.items() if k in routing.train_keys})

        if "verbose" not in config:
            if routing.init_accepts("verbose"):
                init_kw["verbose"] = bool(init_kwargs.get("verbose", model_verbose))
            if routing.train_accepts("verbose"):
                train_kw["verbose"] = model_verbose
        if routing.train_accepts("validation_metric"):
            train_kw["validation_metric"] = self.validation_metric
        if routing.train_accepts("valid_data"):
            train_kw["valid_data"] = valid_data

        chooses_checkpoint_dir = "checkpoint_dir" in routing.config_keys and not (
            "checkpoint_dir" in config
            or "checkpoint_dir" in _all_keys(init_kwargs)
            or "checkpoint_dir" in _all_keys(train_kwargs)
        )
        with contextlib.ExitStack() as stack:
            if chooses_checkpoint_dir:
                checkpoint_dir = stack.enter_context(
                    tempfile.TemporaryDirectory(prefix="metal_tuner_ckpt_")
                )
                if routing.init_accepts("checkpoint_dir"):
                    init_kw["checkpoint_dir"] = checkpoint_dir
                if routing.train_accepts("checkpoint_dir"):
                    train_kw["checkpoint_dir"] = checkpoint_dir
            model = self.model_class(*init_args, **init_kw)
            log_writer = self._make_log_writer(idx, model_verbose)
            if log_writer is not None:
                train_kw["log_writer"] = log_writer
            model.train_model(*train_args, **train_kw)
            _finish_log_writer(log_writer, model)
        if chooses_checkpoint_dir and callable(getattr(model, "update_config", None)):
            # The returned model should not point at the deleted folder.
            default = _find_config_value(routing.config, "checkpoint_dir")
            model.update_config({"checkpoint_dir": default})

        score_kwargs = {**score_kwargs, "verbose": False}
        score = _as_score(
            model.score(valid_data, metric=self.validation_metric, **score_kwargs)
        )
        if self.best_index == -1 or _is_better(score, self.best_score):
            self.best_score = score
            self.best_index = idx
            self.best_config = copy.copy(config)
            self._save_best_model(model)

        search_params = self._search_params(config)
        self.run_stats.append(
            {
                "idx": idx,
                "time_elapsed": time.time() - self.start_time,
                "search_params": search_params,
                "score": score,
                "config": config,
            }
        )
        if verbose:
            self._print_trial(idx, search_params, score)
        return score, model

    def _search_params(self, config: Dict[str, Any]) -> Dict[str, Any]:
        """The entries of ``config`` that the search varies (list or range values
        in the search space)."""
        if self.search_space is None:
            return dict(config)
        return {
            key: value
            for key, value in config.items()
            if isinstance(self.search_space.get(key), (list, Mapping))
        }

    def _make_log_writer(self, idx, verbose: bool):
        if self.log_writer_class is None:
            return None
        kwargs = {
            "log_dir": self.log_subdir,
            "run_dir": ".",
            "run_name": f"model_search_{idx}",
        }
        if _accepts_argument(self.log_writer_class, "verbose"):
            kwargs["verbose"] = verbose
        return self.log_writer_class(**kwargs)

    # ------------------------------------------------------------- best model
    def _best_model_path(self) -> str:
        if self.save_path is not None:
            os.makedirs(self.log_subdir, exist_ok=True)
            return self.save_path
        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="metal_tuner_")
            # Removed at the end of a search, or at the latest with the tuner.
            self._tmpdir_finalizer = weakref.finalize(
                self, shutil.rmtree, self._tmpdir, ignore_errors=True
            )
        return os.path.join(self._tmpdir, BEST_MODEL_FILE)

    def _save_best_model(self, model) -> None:
        """Save ``model`` with its own ``save`` (state dict and plain config);
        a model that cannot be rebuilt from its file (e.g. one built from
        custom modules) is kept in memory instead."""
        self._best_model = None
        self._best_model_class = type(model)
        if _is_rebuildable(model):
            model.save(self._best_model_path())
        else:
            self._best_model = model

    def _load_best_model(self, clean_up: bool = False):
        """Return the best model so far (loaded from its file when it was
        saved); ``clean_up`` removes the file afterwards."""
        if self.best_index == -1:
            raise ValueError("No configuration has been trained yet.")
        if self._best_model is not None:
            model = self._best_model
        else:
            model = self._best_model_class.load(self._best_model_path())
        if clean_up:
            self._clean_up()
        return model

    def _clean_up(self) -> None:
        """Remove the saved best model (and the tuner's temporary folder)."""
        if self.save_path is not None and os.path.exists(self.save_path):
            os.remove(self.save_path)
        self._remove_tmpdir()

    def _remove_tmpdir(self) -> None:
        if self._tmpdir is not None:
            self._tmpdir_finalizer()
            self._tmpdir = None

    # ---------------------------------------------------------------- reports
    def _save_report(self) -> None:
        """Write ``run_stats`` as JSON (a list, one object per trial with
        ``idx``, ``time_elapsed``, ``search_params``, ``score`` and ``config``)
        to ``report_path``; does nothing without a log folder."""
        if self.report_path is None:
            return
        os.makedirs(self.log_subdir, exist_ok=True)
        tmp_path = f"{self.report_path}.tmp"
        with open(tmp_path, "w") as f:
            json.dump(self.run_stats, f, indent=1, default=_json_default)
        os.replace(tmp_path, self.report_path)

    def run_stats_df(self):
        """The trials as a pandas DataFrame: one row per trial (indexed by
        ``idx``), one column per searched key, and ``score``."""
        import pandas as pd

        rows = [{**r["search_params"], "score": r["score"]} for r in self.run_stats]
        index = pd.Index([r["idx"] for r in self.run_stats], name="idx")
        if not rows:
            return pd.DataFrame({"score": []}, index=index)
        return pd.DataFrame(rows, index=index)

    def _print_trial(self, idx, search_params: Dict[str, Any], score) -> None:
        total = f"/{self._n_planned}" if self._n_planned else ""
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in search_params.items())
        mark = "  (best so far)" if idx == self.best_index else ""
        print(
            f"[trial {idx}{total}] {params or '(fixed config)'} -> "
            f"{self.validation_metric}={score:.4f}{mark}",
            flush=True,
        )

    def _print_summary(self, title: str) -> None:
        elapsed = time.time() - self.start_time
        print("=" * 60)
        print(f"{title}: {len(self.run_stats)} trials in {elapsed:.1f} s")
        print(
            f"Best trial {self.best_index}: {self.validation_metric} = "
            f"{self.best_score:.4f} on the validation data"
        )
        for key, value in (self.best_config or {}).items():
            print(f"  {key}: {_fmt(value)}")
        print("=" * 60)
        print(self.run_stats_df().to_string())

    # ----------------------------------------------------------------- search
    def search(
        self,
        search_space: Dict[str, Any],
        valid_data,
        init_args: Sequence = [],
        train_args: Sequence = [],
        init_kwargs: Dict[str, Any] = {},
        train_kwargs: Dict[str, Any] = {},
        module_args: Dict[str, Sequence] = {},
        module_kwargs: Dict[str, Dict[str, Any]] = {},
        max_search: Optional[int] = None,
        shuffle: bool = True,
        verbose: bool = True,
        **score_kwargs,
    ):
        """Search ``search_space`` and return the best model (subclasses)."""
        raise NotImplementedError


# ---------------------------------------------------------------------------
# Search-space parsing and sampling


def _parse_search_space(search_space):
    """Split a search space into its keys, discrete candidates and ranges.

    Returns:
        ``(keys, discrete, ranges)``: the keys in order, ``{key: [candidates]}``
        and ``{key: (lo, hi, scale)}``.
    """
    if not isinstance(search_space, Mapping):
        raise ValueError(
            "search_space must be a dict of {key: candidates | range | value}; "
            f"found {type(search_space).__name__}."
        )
    if not search_space:
        raise ValueError(
            "search_space is empty; give at least one key, e.g. "
            "{'lr': {'range': [1e-4, 1e-1], 'scale': 'log'}}."
        )
    discrete, ranges = {}, {}
    for key, value in search_space.items():
        if not isinstance(key, str):
            raise ValueError(f"search_space keys must be strings; found {key!r}.")
        if isinstance(value, Mapping):
            ranges[key] = _parse_range(key, value)
        elif isinstance(value, list):
            if not value:
                raise ValueError(
                    f"search_space[{key!r}] is an empty list of candidates; give at "
                    "least one value."
                )
            discrete[key] = value
        else:
            discrete[key] = [value]
    return list(search_space), discrete, ranges


def _parse_range(key: str, spec: Mapping) -> Tuple[float, float, str]:
    extra = sorted(set(spec) - {"range", "scale"}, key=str)
    if extra:
        raise ValueError(
            f"search_space[{key!r}] has unknown entries {extra}; a range is "
            "{'range': [lo, hi], 'scale': 'linear' | 'log'}."
        )
    if "range" not in spec:
        raise ValueError(
            f"search_space[{key!r}] is a dict without 'range'; a range is "
            "{'range': [lo, hi], 'scale': 'linear' | 'log'}."
        )
    bounds = spec["range"]
    if (
        not isinstance(bounds, (list, tuple))
        or len(bounds) != 2
        or not all(_is_real(b) for b in bounds)
    ):
        raise ValueError(
            f"search_space[{key!r}]['range'] must be [lo, hi] with two finite "
            f"numbers; found {bounds!r}."
        )
    lo, hi = float(bounds[0]), float(bounds[1])
    if lo > hi:
        raise ValueError(
            f"search_space[{key!r}]['range'] = {list(bounds)} has lo > hi; write "
            f"it as [{bounds[1]}, {bounds[0]}]."
        )
    scale = spec.get("scale", "linear")
    if scale not in SCALES:
        raise ValueError(
            f"search_space[{key!r}]['scale'] must be one of {list(SCALES)}; "
            f"found {scale!r}."
        )
    if scale == "log" and lo <= 0:
        raise ValueError(
            f"search_space[{key!r}]: a log-scale range needs positive bounds; "
            f"found {list(bounds)}."
        )
    return lo, hi, scale


def _is_real(value) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _check_max_search(max_search) -> Optional[int]:
    if max_search is None:
        return None
    if isinstance(max_search, bool) or not isinstance(max_search, numbers.Integral):
        raise ValueError(f"max_search must be an int or None; found {max_search!r}.")
    if max_search < 0:
        raise ValueError(f"max_search must be >= 0 (0 = no cap); found {max_search}.")
    return int(max_search)


def _sample(lo: float, hi: float, scale: str, rng) -> float:
    u = rng.random()
    if scale == "log":
        log_lo, log_hi = math.log(lo), math.log(hi)
        return float(math.exp(log_lo + (log_hi - log_lo) * u))
    return float(lo + (hi - lo) * u)


def _generate_configs(keys, discrete, ranges, max_search, rng, shuffle):
    combos = list(itertools.product(*discrete.values()))
    if shuffle:
        rng.shuffle(combos)
    combos = itertools.cycle(combos) if (ranges and max_search and combos) else combos
    discrete_keys = list(discrete)
    for i, combo in enumerate(combos):
        if max_search and i == max_search:
            return
        chosen = dict(zip(discrete_keys, combo))
        config = {}
        for key in keys:
            if key in ranges:
                config[key] = _sample(*ranges[key], rng)
            else:
                config[key] = _fresh(chosen[key])
        yield config


def _fresh(value):
    """A copy of container values, so configurations never share them with the
    search space or each other."""
    return copy.deepcopy(value) if isinstance(value, (list, dict)) else value


def _representatives(discrete, ranges) -> Dict[str, Any]:
    """One value per key (first candidate / lower bound), for the probe model."""
    values = {key: candidates[0] for key, candidates in discrete.items()}
    values.update({key: lo for key, (lo, _, _) in ranges.items()})
    return values


# ---------------------------------------------------------------------------
# Where search-space keys go


class _Routing:
    """Which component receives each search-space key, and what the model
    accepts (learned from signatures and from a probe model's config)."""

    def __init__(self, keys, config_keys, config, init_sig, train_sig, module_sigs):
        self.keys = list(keys)
        self.config_keys = config_keys
        self.config = config
        self.init_sig = init_sig
        self.train_sig = train_sig
        self.module_keys = {
            name: {k for k in keys if k in sig[0]} for name, sig in module_sigs.items()
        }
        self.init_keys = {k for k in keys if self.init_accepts(k)}
        self.train_keys = {k for k in keys if self.train_accepts(k)}
        in_modules = set().union(*self.module_keys.values())
        self.unknown = [
            k
            for k in keys
            if k not in self.init_keys
            and k not in self.train_keys
            and k not in in_modules
        ]

    def _accepts(self, sig, key: str) -> bool:
        names, var_kw = sig
        if key in names:
            return True
        if not var_kw:
            return False
        # Unknown config: pass keys through to **kwargs and let the model judge.
        return key in self.config_keys or self.config is None

    def init_accepts(self, key: str) -> bool:
        return self._accepts(self.init_sig, key)

    def train_accepts(self, key: str) -> bool:
        return self._accepts(self.train_sig, key)

    def check_list_candidates(self, discrete: Dict[str, list]) -> None:
        """Candidates of keys whose config value is a list must be lists."""
        if self.config is None:
            return
        for key, candidates in discrete.items():
            current = _find_config_value(self.config, key)
            if not isinstance(current, (list, tuple)):
                continue
            bad = [c for c in candidates if not isinstance(c, (list, tuple))]
            if bad:
                raise ValueError(
                    f"search_space[{key!r}]: the model expects a list value for "
                    f"{key!r}, so give a list of candidate lists, e.g. "
                    f"[{list(current)!r}]; found the candidates {candidates!r}."
                )


def _route_keys(
    model_class,
    module_classes,
    keys,
    representatives,
    init_args,
    init_kwargs,
    train_kwargs,
    module_args,
    module_kwargs,
) -> _Routing:
    reserved = [k for k in keys if k in module_classes or k in _TUNER_TRAIN_ARGS]
    if reserved:
        raise ValueError(
            f"search_space keys {reserved} are supplied by the tuner (modules from "
            "module_classes, valid_data, log_writer) and cannot be searched."
        )
    init_sig = _signature_names(model_class)
    module_sigs = {name: _signature_names(cls) for name, cls in module_classes.items()}
    probe = _build_probe(
        model_class,
        module_classes,
        module_sigs,
        init_sig,
        representatives,
        init_args,
        init_kwargs,
        module_args,
        module_kwargs,
    )
    train_fn = getattr(probe, "train_model", None)
    if train_fn is None:
        raise ValueError(f"{_name(model_class)} has no train_model method to tune.")
    if not callable(getattr(probe, "score", None)):
        raise ValueError(f"{_name(model_class)} has no score method to tune.")
    train_sig = _signature_names(train_fn)
    config = getattr(probe, "config", None)
    config = config if isinstance(config, dict) else None
    config_keys = _all_keys(config) if config is not None else set()
    return _Routing(keys, config_keys, config, init_sig, train_sig, module_sigs)


def _build_probe(
    model_class,
    module_classes,
    module_sigs,
    init_sig,
    representatives,
    init_args,
    init_kwargs,
    module_args,
    module_kwargs,
):
    """Construct one untrained model (global RNG states restored, output
    captured) to learn its config keys and ``train_model`` signature."""
    kwargs = dict(init_kwargs)
    for key, value in representatives.items():
        if key in init_sig[0] and key not in kwargs:
            kwargs[key] = _fresh(value)
    with _preserved_global_rng(), contextlib.redirect_stdout(io.StringIO()):
        for name, module_class in module_classes.items():
            m_kwargs = dict(module_kwargs.get(name, {}))
            for key, value in representatives.items():
                if key in module_sigs[name][0]:
                    m_kwargs[key] = _fresh(value)
            kwargs[name] = module_class(*module_args.get(name, ()), **m_kwargs)
        return model_class(*init_args, **kwargs)


@contextlib.contextmanager
def _preserved_global_rng():
    py_state = random.getstate()
    np_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    cuda_states = None
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda_states = torch.cuda.get_rng_state_all()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


def _signature_names(fn) -> Tuple[set, bool]:
    """``(named keyword-capable parameters, accepts **kwargs)`` of ``fn``."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return set(), True
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = {p.name for p in sig.parameters.values() if p.kind in kinds}
    names.discard("self")
    var_kw = any(
        p.kind == inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()
    )
    return names, var_kw


def _accepts_argument(fn, name: str) -> bool:
    names, var_kw = _signature_names(fn)
    return name in names or var_kw


def _all_keys(tree) -> set:
    """Every key of a nested dict, at any depth."""
    keys, stack = set(), [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            keys.update(node)
            stack.extend(v for v in node.values() if isinstance(v, Mapping))
    return keys


def _find_config_value(config: dict, key: str):
    """The value a flat ``key`` would update (depth-first, insertion order)."""
    if key in config:
        return config[key]
    for value in config.values():
        if isinstance(value, dict):
            found = _find_config_value(value, key)
            if found is not None:
                return found
    return None


def _check_module_classes(module_classes) -> Dict[str, Callable]:
    if module_classes is None:
        return {}
    if not isinstance(module_classes, Mapping):
        raise ValueError(
            "module_classes must be a dict {constructor_argument: module_class}; "
            f"found {type(module_classes).__name__}."
        )
    for name, module_class in module_classes.items():
        if not isinstance(name, str) or not callable(module_class):
            raise ValueError(
                "module_classes must map argument names to module classes; found "
                f"{name!r}: {module_class!r}."
            )
    return dict(module_classes)


def _check_module_arguments(module_classes, module_args, module_kwargs) -> None:
    for label, given in (
        ("module_args", module_args),
        ("module_kwargs", module_kwargs),
    ):
        if not isinstance(given, Mapping):
            raise ValueError(
                f"{label} must be a dict keyed by module name; found "
                f"{type(given).__name__}."
            )
        extra = sorted(set(given) - set(module_classes))
        if extra:
            raise ValueError(
                f"{label} names {extra}, which are not in module_classes "
                f"({sorted(module_classes)})."
            )


# ---------------------------------------------------------------------------
# Small helpers


def _is_rebuildable(model) -> bool:
    """Whether ``type(model).load(path)`` can rebuild the model from its file."""
    return (
        callable(getattr(model, "save", None))
        and callable(getattr(type(model), "load", None))
        and getattr(model, "_init_kwargs", None) is not None
    )


def _finish_log_writer(log_writer, model) -> None:
    """Make sure a trial's log is on disk: add the model's config if the writer
    wants it, then close the writer (closing twice is harmless)."""
    if log_writer is None:
        return
    config = getattr(model, "config", None)
    if (
        isinstance(config, dict)
        and getattr(log_writer, "include_config", False)
        and callable(getattr(log_writer, "add_config", None))
    ):
        log_writer.add_config(config)
    close = getattr(log_writer, "close", None)
    if callable(close):
        close()


def _as_score(value) -> float:
    if isinstance(value, (list, tuple)):
        raise ValueError(
            "score() returned several values; the tuner needs one number per "
            "configuration (check score_kwargs)."
        )
    return float(value)


def _is_better(score: float, best: float) -> bool:
    if math.isnan(score):
        return False
    return math.isnan(best) or score > best


def _name(obj) -> str:
    return getattr(obj, "__name__", type(obj).__name__)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return repr(value) if isinstance(value, str) else str(value)


def _json_default(obj):
    if isinstance(obj, (np.ndarray, np.generic)):
        return obj.tolist()
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)
