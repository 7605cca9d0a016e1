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
receive it). A key none of these declares goes, as in MeTaL, to the model's
constructor when it takes ``**kwargs`` (the MeTaL models accept it with a
``UserWarning`` that it has no effect); when nothing can take it, it is a
``ValueError`` raised before anything is trained.

Where a key goes is read from what the classes declare, never from a built
model: the signatures of the model's constructor, of its ``train_model`` and of
the module classes, and the model class's ``default_config()`` (its complete
default config tree; the class's own config merge decides which keys it
holds). A class without ``default_config`` (e.g. a user's model) receives the
keys its signatures name, and, through ``**kwargs``, every other key, for the
model to judge.

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
* modules receive only the keys their constructors name; keys that no
  argument can take are reported, all together, before training;
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
import functools
import inspect
import itertools
import math
import operator
import os
import random
import shutil
import tempfile
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
)

from metal._checks import check_choice, check_int, is_number
from metal._io import atomic_write_json
from metal.metrics import METRICS
from metal.utils import check_seed, recursive_merge_dicts

SCALES = ("linear", "log")
BEST_MODEL_FILE = "best_model.pth"
REPORT_FILE = "tuner_report.json"

# Arguments of train_model that the tuner itself supplies.
_TUNER_TRAIN_ARGS = ("valid_data", "log_writer")

# Settings the tuner passes to the model itself, where the model takes them.
_TUNER_SETTINGS = ("verbose", "validation_metric", "valid_data", "checkpoint_dir")


@dataclass(frozen=True)
class _SearchInputs:
    """The arguments that every trial of one search is built, trained and
    scored with: the shared parameters of ``search`` and ``_test_model_config``,
    gathered once and handed to the helpers. The tuner never modifies them.

    Attributes:
        valid_data: the data each trained model is scored on.
        init_args, init_kwargs: the model constructor's arguments.
        train_args, train_kwargs: ``train_model``'s arguments.
        module_args, module_kwargs: ``{module name: args}`` /
            ``{module name: kwargs}`` of the ``module_classes``.
        score_kwargs: extra keyword arguments of the model's ``score``.
    """

    valid_data: Any
    init_args: Sequence = ()
    train_args: Sequence = ()
    init_kwargs: Mapping = field(default_factory=dict)
    train_kwargs: Mapping = field(default_factory=dict)
    module_args: Mapping = field(default_factory=dict)
    module_kwargs: Mapping = field(default_factory=dict)
    score_kwargs: Mapping = field(default_factory=dict)

    def __post_init__(self):
        if "metric" in self.score_kwargs:
            raise ValueError(
                "Pass the metric as the tuner's validation_metric, not as a score "
                "keyword argument."
            )

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> "_SearchInputs":
        """Gather the inputs from the arguments of a ``search`` (or
        ``_test_model_config``) call, whose parameters carry the field names;
        pass the call's ``locals()`` before anything else is assigned."""
        return cls(**{f.name: arguments[f.name] for f in fields(cls)})

    @property
    def model_verbose(self) -> bool:
        """Whether the caller asked the models themselves to be verbose."""
        return bool(self.train_kwargs.get("verbose", self.init_kwargs.get("verbose")))


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

        self.seed = 0 if seed is None else check_seed(seed)
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

    # ------------------------------------------------------- search set-up
    def _prepare_search(
        self,
        search_space: Dict[str, Any],
        inputs: _SearchInputs,
        required_keys: Sequence[str] = (),
    ) -> None:
        """Validate a search before anything is trained and decide where each
        search-space key goes (model constructor, ``train_model``, modules).

        Nothing is built, trained or printed and no RNG is used: the routing
        comes from the classes' signatures and declared default config.

        Args:
            search_space: the search space (see the module docstring).
            inputs: the search's shared arguments.
            required_keys: keys the tuner itself sets for every trial (e.g.
                Hyperband's ``n_epochs``); the model must accept them.

        Raises:
            ValueError: for a missing model class or validation data, a malformed
                search space, module arguments for unknown modules, keys reserved
                for the tuner, a model class without ``train_model`` or
                ``score``, keys that neither the model, its ``train_model`` nor
                any module accepts (all named together), or flat candidates for
                a list-valued config key.
        """
        if self.model_class is None:
            raise ValueError("This tuner has no model_class to train; pass one.")
        if inputs.valid_data is None:
            raise ValueError(
                "valid_data is required: each configuration is scored on it."
            )
        keys, discrete, _ = _parse_search_space(search_space)
        _check_module_arguments(
            self.module_classes, inputs.module_args, inputs.module_kwargs
        )
        keys += [k for k in required_keys if k not in keys]
        _reject_reserved_keys(keys, self.module_classes)
        model = _ModelInterface.of(self.model_class)
        routing = _Routing.plan(model, self.module_classes, keys, required_keys)
        self._check_keys_known(routing, required_keys)
        _check_list_candidates(model, discrete)
        self._routing = routing

    def _check_keys_known(self, routing: "_Routing", required_keys) -> None:
        """Raise for keys that nothing accepts: first the tuner's own required
        keys, then the search space's (all named in one message)."""
        missing = [k for k in required_keys if k in routing.unknown]
        unknown = [k for k in routing.unknown if k not in missing]
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

    # ----------------------------------------------------------------- trials
    def _test_model_config(
        self,
        idx,
        config: Dict[str, Any],
        valid_data: Any,
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
        to a temporary folder unless the caller chose one. Outside a search,
        every config value is taken as a fixed setting.
        """
        inputs = _SearchInputs.from_arguments(locals())
        return self._run_trial(idx, config, inputs, verbose)

    def _run_trial(
        self, idx, config: Dict[str, Any], inputs: _SearchInputs, verbose: bool
    ) -> Tuple[float, Any]:
        """``_test_model_config`` on the search's shared inputs."""
        config = dict(config)
        routing = self._routing_for(config, inputs)
        modules = self._build_modules(routing, config, inputs)
        init_kwargs = self._constructor_kwargs(routing, config, inputs, modules)
        train_kwargs = self._train_model_kwargs(routing, config, inputs)
        with self._private_checkpoint_dir(routing, config, inputs) as folder:
            if folder is not None:
                _point_checkpoints_at(folder, routing, init_kwargs, train_kwargs)
            model = self._train(idx, inputs, init_kwargs, train_kwargs)
        if folder is not None:
            _restore_checkpoint_dir(model, routing)
        score = self._score(model, inputs)
        self._keep_if_best(idx, config, score, model)
        self._record_trial(idx, config, score, verbose)
        return score, model

    def _routing_for(self, config: Dict[str, Any], inputs: _SearchInputs):
        """The search's routing; outside a search (or for keys it did not plan),
        a routing for ``config`` with every value as a fixed setting."""
        if self._routing is None or not set(config) <= set(self._routing.keys):
            fixed = {key: [value] for key, value in config.items()}
            self._prepare_search(fixed, inputs)
        return self._routing

    def _build_modules(
        self, routing: "_Routing", config: Dict[str, Any], inputs: _SearchInputs
    ) -> Dict[str, Any]:
        """A fresh module per ``module_classes`` entry, built from its
        ``module_args``/``module_kwargs`` and the config keys it names."""
        modules = {}
        for name, module_class in self.module_classes.items():
            kwargs = dict(inputs.module_kwargs.get(name, {}))
            kwargs.update(
                {k: v for k, v in config.items() if k in routing.module_keys[name]}
            )
            modules[name] = module_class(*inputs.module_args.get(name, ()), **kwargs)
        return modules

    def _constructor_kwargs(
        self,
        routing: "_Routing",
        config: Dict[str, Any],
        inputs: _SearchInputs,
        modules: Dict[str, Any],
    ) -> Dict[str, Any]:
        """The model constructor's keyword arguments: ``init_kwargs``, the
        modules, the config keys routed to it, and (unless searched) a quiet
        ``verbose``."""
        kwargs = {**inputs.init_kwargs, **modules}
        kwargs.update({k: v for k, v in config.items() if k in routing.init_keys})
        if "verbose" not in config and routing.init_accepts("verbose"):
            verbose = inputs.init_kwargs.get("verbose", inputs.model_verbose)
            kwargs["verbose"] = bool(verbose)
        return kwargs

    def _train_model_kwargs(
        self, routing: "_Routing", config: Dict[str, Any], inputs: _SearchInputs
    ) -> Dict[str, Any]:
        """``train_model``'s keyword arguments: ``train_kwargs``, the config
        keys routed to it, and the tuner's settings it takes (``verbose``
        unless searched, ``validation_metric``, ``valid_data``)."""
        kwargs = dict(inputs.train_kwargs)
        kwargs.update({k: v for k, v in config.items() if k in routing.train_keys})
        if "verbose" not in config and routing.train_accepts("verbose"):
            kwargs["verbose"] = inputs.model_verbose
        if routing.train_accepts("validation_metric"):
            kwargs["validation_metric"] = self.validation_metric
        if routing.train_accepts("valid_data"):
            kwargs["valid_data"] = inputs.valid_data
        return kwargs

    @staticmethod
    def _private_checkpoint_dir(
        routing: "_Routing", config: Dict[str, Any], inputs: _SearchInputs
    ):
        """A context giving a temporary checkpoint folder for the trial (removed
        on exit) when the model has a ``checkpoint_dir`` setting that nobody
        chose; otherwise ``None``."""
        chosen = (
            "checkpoint_dir" in config
            or "checkpoint_dir" in _all_keys(inputs.init_kwargs)
            or "checkpoint_dir" in _all_keys(inputs.train_kwargs)
        )
        if not routing.has_checkpoint_dir or chosen:
            return contextlib.nullcontext()
        return tempfile.TemporaryDirectory(prefix="metal_tuner_ckpt_")

    def _train(
        self,
        idx,
        inputs: _SearchInputs,
        init_kwargs: Dict[str, Any],
        train_kwargs: Dict[str, Any],
    ):
        """Build the model and train it, with this trial's log writer (if any)."""
        model = self.model_class(*inputs.init_args, **init_kwargs)
        log_writer = self._make_log_writer(idx, inputs.model_verbose)
        if log_writer is not None:
            train_kwargs = {**train_kwargs, "log_writer": log_writer}
        model.train_model(*inputs.train_args, **train_kwargs)
        _finish_log_writer(log_writer, model)
        return model

    def _score(self, model, inputs: _SearchInputs) -> float:
        """The model's ``validation_metric`` on the validation data."""
        score_kwargs = {**inputs.score_kwargs, "verbose": False}
        score = model.score(
            inputs.valid_data, metric=self.validation_metric, **score_kwargs
        )
        return _as_score(score)

    def _keep_if_best(self, idx, config: Dict[str, Any], score: float, model) -> None:
        """Make the trial the best one (and save its model) if it beats the
        best so far; the first trial always does."""
        if self.best_index == -1 or _is_better(score, self.best_score):
            self.best_score = score
            self.best_index = idx
            self.best_config = copy.copy(config)
            self._save_best_model(model)

    def _record_trial(
        self, idx, config: Dict[str, Any], score: float, verbose: bool
    ) -> None:
        """Append the trial to ``run_stats`` (and print it when verbose)."""
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
        if _Signature.of(self.log_writer_class).passes("verbose"):
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
        atomic_write_json(self.run_stats, self.report_path)

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
    def _finish_search(self, title: str, verbose: bool, clean_up: bool):
        """End a search: write the final report, print the summary (when
        ``verbose``) and return the best model (``clean_up`` removes its saved
        file once loaded)."""
        self._save_report()
        if verbose:
            self._print_summary(title)
        return self._load_best_model(clean_up=clean_up)

    def search(
        self,
        search_space: Dict[str, Any],
        valid_data: Any,
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
    ) -> Any:
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
    check_choice(scale, SCALES, f"search_space[{key!r}]['scale']")
    if scale == "log" and lo <= 0:
        raise ValueError(
            f"search_space[{key!r}]: a log-scale range needs positive bounds; "
            f"found {list(bounds)}."
        )
    return lo, hi, scale


def _is_real(value) -> bool:
    return is_number(value) and math.isfinite(value)


def _check_max_search(max_search) -> Optional[int]:
    return check_int(
        max_search,
        "max_search",
        minimum=0,
        allow_none=True,
        expected="an integer >= 0 (0 = no cap)",
    )


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


# ---------------------------------------------------------------------------
# Where search-space keys go


@dataclass(frozen=True)
class _Signature:
    """The keyword-capable parameter names of a callable, and whether it
    takes ``**kwargs``."""

    names: FrozenSet[str]
    takes_var_kwargs: bool

    @classmethod
    def of(cls, fn) -> "_Signature":
        try:
            parameters = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            return cls(frozenset(), True)
        kinds = (
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            inspect.Parameter.KEYWORD_ONLY,
        )
        names = frozenset(p.name for p in parameters if p.kind in kinds) - {"self"}
        var_kw = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters)
        return cls(names, var_kw)

    def passes(self, key: str) -> bool:
        """Whether a call can receive ``key`` as a keyword argument."""
        return key in self.names or self.takes_var_kwargs


@dataclass(frozen=True)
class _ModelInterface:
    """What a model class declares: its constructor's and ``train_model``'s
    signatures and, when it has ``default_config()``, its default config tree
    (``None`` for a class that declares none)."""

    name: str
    init: _Signature
    train: _Signature
    config: Optional[dict]

    @classmethod
    def of(cls, model_class) -> "_ModelInterface":
        """Read the interface of ``model_class`` (nothing is built).

        Raises:
            ValueError: when the class has no ``train_model`` or ``score``.
        """
        name = _name(model_class)
        train_model = getattr(model_class, "train_model", None)
        if not callable(train_model):
            raise ValueError(f"{name} has no train_model method to tune.")
        if not callable(getattr(model_class, "score", None)):
            raise ValueError(f"{name} has no score method to tune.")
        return cls(
            name=name,
            init=_Signature.of(model_class),
            train=_Signature.of(train_model),
            config=_declared_config(model_class),
        )

    def config_accepts(self, key: str) -> bool:
        """Whether the class's own config merge takes ``key`` (flat or nested).

        An empty dict can stand anywhere in the tree (it replaces a section
        and overwrites a leaf), so the merge raises only for a key it cannot
        place.
        """
        if self.config is None:
            return False
        try:
            recursive_merge_dicts(
                self.config, {key: {}}, misses="exception", verbose=False
            )
        except ValueError:
            return False
        return True

    def default_value(self, key: str) -> Any:
        """The default value of the config entry that a flat ``key`` updates;
        ``None`` for a section (a dict) or a key outside the config. The
        class's merge places a marker, so the entry is the one it would use."""
        if self.config is None:
            return None
        marker = object()
        try:
            marked = recursive_merge_dicts(
                self.config, {key: marker}, misses="exception", verbose=False
            )
        except ValueError:
            return None
        for path, value in _leaf_items(marked):
            if value is marker:
                return functools.reduce(operator.getitem, path, self.config)
        return None

    def init_accepts(self, key: str) -> bool:
        """Whether the constructor takes ``key``: named in its signature, or
        through ``**kwargs`` as a config key (any key when no config is
        declared: the model judges)."""
        return self._takes(self.init, key)

    def train_accepts(self, key: str) -> bool:
        """Whether ``train_model`` takes ``key`` (as for ``init_accepts``)."""
        return self._takes(self.train, key)

    def _takes(self, signature: _Signature, key: str) -> bool:
        if key in signature.names:
            return True
        if not signature.takes_var_kwargs:
            return False
        return self.config is None or self.config_accepts(key)


def _declared_config(model_class) -> Optional[dict]:
    """``model_class.default_config()``, or ``None`` when the class has none
    (an empty tree declares nothing either)."""
    default_config = getattr(model_class, "default_config", None)
    if not callable(default_config):
        return None
    config = default_config()
    return config if isinstance(config, dict) and config else None


def _leaf_items(tree: dict, prefix: Tuple[str, ...] = ()):
    """``(path, value)`` for every non-dict value of a nested dict."""
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaf_items(value, prefix + (key,))
        else:
            yield prefix + (key,), value


@dataclass(frozen=True)
class _Routing:
    """Which component receives each search-space key.

    Attributes:
        keys: the search-space keys (and the tuner's required keys).
        init_keys, train_keys: the keys (of ``keys`` and of the tuner's own
            settings, such as ``verbose``) that the model's constructor /
            ``train_model`` take.
        module_keys: ``{module name: keys its constructor names}``.
        unknown: the keys nothing takes.
        has_checkpoint_dir: the model's config has a ``checkpoint_dir``.
        default_checkpoint_dir: its default value.
    """

    keys: Tuple[str, ...]
    init_keys: FrozenSet[str]
    train_keys: FrozenSet[str]
    module_keys: Mapping
    unknown: Tuple[str, ...]
    has_checkpoint_dir: bool
    default_checkpoint_dir: Any

    @classmethod
    def plan(
        cls,
        model: _ModelInterface,
        module_classes: Mapping,
        keys: Sequence[str],
        required: Sequence[str] = (),
    ) -> "_Routing":
        """Route ``keys`` from the declarations of the model and module classes
        (``required``: the tuner's own keys among them, which the model must
        declare)."""
        considered = list(keys) + [k for k in _TUNER_SETTINGS if k not in keys]
        init_keys = frozenset(k for k in considered if model.init_accepts(k))
        train_keys = frozenset(k for k in considered if model.train_accepts(k))
        module_keys = {}
        for name, module_class in module_classes.items():
            names = _Signature.of(module_class).names
            module_keys[name] = frozenset(k for k in keys if k in names)
        taken = init_keys.union(train_keys, *module_keys.values())
        if model.init.takes_var_kwargs:
            # MeTaL's tuners inserted every key into the model's arguments; a
            # key nothing declares goes to the constructor's ``**kwargs``, where
            # the model's own config merge accepts it with a warning. The
            # tuner's own keys must really be accepted: they are not passed on.
            passed_on = [k for k in keys if k not in taken and k not in required]
            init_keys = init_keys.union(passed_on)
            taken = taken.union(passed_on)
        return cls(
            keys=tuple(keys),
            init_keys=init_keys,
            train_keys=train_keys,
            module_keys=module_keys,
            unknown=tuple(k for k in keys if k not in taken),
            has_checkpoint_dir=model.config_accepts("checkpoint_dir"),
            default_checkpoint_dir=model.default_value("checkpoint_dir"),
        )

    def init_accepts(self, key: str) -> bool:
        return key in self.init_keys

    def train_accepts(self, key: str) -> bool:
        return key in self.train_keys


def _reject_reserved_keys(keys: Sequence[str], module_classes: Mapping) -> None:
    reserved = [k for k in keys if k in module_classes or k in _TUNER_TRAIN_ARGS]
    if reserved:
        raise ValueError(
            f"search_space keys {reserved} are supplied by the tuner (modules from "
            "module_classes, valid_data, log_writer) and cannot be searched."
        )


def _check_list_candidates(model: _ModelInterface, discrete: Dict[str, list]) -> None:
    """Candidates of keys whose default config value is a list must be lists."""
    for key, candidates in discrete.items():
        default = model.default_value(key)
        if not isinstance(default, (list, tuple)):
            continue
        bad = [c for c in candidates if not isinstance(c, (list, tuple))]
        if bad:
            raise ValueError(
                f"search_space[{key!r}]: the model expects a list value for "
                f"{key!r}, so give a list of candidate lists, e.g. "
                f"[{list(default)!r}]; found the candidates {candidates!r}."
            )


def _point_checkpoints_at(
    folder: str, routing: _Routing, init_kwargs: dict, train_kwargs: dict
) -> None:
    """Send the trial's checkpoints to ``folder``."""
    if routing.init_accepts("checkpoint_dir"):
        init_kwargs["checkpoint_dir"] = folder
    if routing.train_accepts("checkpoint_dir"):
        train_kwargs["checkpoint_dir"] = folder


def _restore_checkpoint_dir(model, routing: _Routing) -> None:
    """Point the trained model back at its default checkpoint folder, so it
    does not name the removed temporary one."""
    if callable(getattr(model, "update_config", None)):
        model.update_config({"checkpoint_dir": routing.default_checkpoint_dir})


def _all_keys(tree) -> set:
    """Every key of a nested dict, at any depth (what a caller's kwargs set)."""
    keys, stack = set(), [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            keys.update(node)
            stack.extend(v for v in node.values() if isinstance(v, Mapping))
    return keys


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
