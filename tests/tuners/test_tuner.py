"""Tests of metal.tuners.tuner: search spaces, config generation, validation,
key routing, reports and the files a tuner writes (or does not write)."""

import contextlib
import copy
import inspect
import io
import json
import os
import random
import tempfile
import unittest
import warnings

import numpy as np
import torch
import torch.nn as nn

from metal.end_model import EndModel
from metal.label_model import LabelModel
from metal.tuners import HyperbandTuner, RandomSearchTuner
from metal.tuners.tuner import ModelTuner, _SearchInputs


def make_data(n=2000):
    """The spec's fixture: numpy seed 1, X ~ U[-1, 1]^2, Y = 1 + [x0 > x1 + 0.25],
    split 1000/500/500 (scaled down when ``n`` is smaller)."""
    np.random.seed(1)
    X = np.random.random((n, 2)) * 2 - 1
    Y = (X[:, 0] > X[:, 1] + 0.25).astype(int) + 1
    X = torch.tensor(X, dtype=torch.float)
    Y = torch.tensor(Y, dtype=torch.long)
    a, b = n // 2, (3 * n) // 4
    return (X[:a], Y[:a]), (X[a:b], Y[a:b]), (X[b:], Y[b:])


QUIET_EM = {
    "seed": 1,
    "input_batchnorm": False,
    "middle_batchnorm": False,
    "layer_out_dims": [2, 10, 2],
    "verbose": False,
}


def quietly(fn, *args, **kwargs):
    """Call ``fn`` with stdout captured; return ``(result, printed_text)``."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        result = fn(*args, **kwargs)
    return result, buffer.getvalue()


@contextlib.contextmanager
def working_directory(path):
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


class ConfigGeneratorTest(unittest.TestCase):
    """The counts of the original tests/metal/tuners/test_random_search_tuner.py."""

    def setUp(self):
        self.tuner = RandomSearchTuner(None, None, seed=123)

    def configs(self, space, max_search, shuffle=True):
        return list(
            self.tuner.config_generator(
                space, rng=self.tuner.rng, max_search=max_search, shuffle=shuffle
            )
        )

    def test_fixed_value(self):
        self.assertEqual(self.configs({"a": 1}, 10), [{"a": 1}])

    def test_list(self):
        self.assertEqual(len(self.configs({"a": [1, 2]}, 10)), 2)

    def test_product(self):
        configs = self.configs({"a": [1], "b": [1, 2, 3]}, 10)
        self.assertEqual(len(configs), 3)
        self.assertEqual(sorted(c["b"] for c in configs), [1, 2, 3])

    def test_product_capped_by_max_search(self):
        self.assertEqual(len(self.configs({"a": [1, 2], "b": [1, 2, 3]}, 4)), 4)

    def test_range_with_max_search(self):
        space = {"a": [1], "b": [1, 2, 3], "c": {"range": [1, 10]}}
        configs = self.configs(space, 10)
        self.assertEqual(len(configs), 10)
        for c in configs:
            self.assertIsInstance(c["c"], float)
            self.assertTrue(1 <= c["c"] <= 10)
            self.assertEqual(list(c), ["a", "b", "c"])

    def test_range_without_max_search(self):
        space = {"a": [1], "b": [1, 2, 3], "c": {"range": [1, 10]}}
        self.assertEqual(len(self.configs(space, 0)), 3)
        self.assertEqual(len(self.configs(space, None)), 3)

    def test_log_scale(self):
        space = {
            "a": [1],
            "b": [1, 2, 3],
            "c": {"range": [1, 10]},
            "d": {"range": [1, 10], "scale": "log"},
        }
        configs = self.configs(space, 20)
        self.assertEqual(len(configs), 20)
        c_mean = np.mean([c["c"] for c in configs])
        d_mean = np.mean([c["d"] for c in configs])
        self.assertGreater(c_mean, d_mean)
        self.assertTrue(all(1 <= c["d"] <= 10 for c in configs))

    def test_degenerate_range(self):
        configs = self.configs({"c": {"range": [2, 2]}}, 3)
        self.assertEqual([c["c"] for c in configs], [2.0, 2.0, 2.0])

    def test_reproducible_with_seed(self):
        space = {"b": [1, 2, 3, 4], "c": {"range": [1e-3, 1], "scale": "log"}}
        first = list(ModelTuner.config_generator(space, 8, random.Random(7)))
        second = list(ModelTuner.config_generator(space, 8, random.Random(7)))
        other = list(ModelTuner.config_generator(space, 8, random.Random(8)))
        self.assertEqual(first, second)
        self.assertNotEqual(first, other)

    def test_tuner_seed_controls_rng(self):
        space = {"c": {"range": [0, 1]}}
        a = RandomSearchTuner(None, seed=5)
        b = RandomSearchTuner(None, seed=5)
        self.assertEqual(
            list(a.config_generator(space, 5, a.rng)),
            list(b.config_generator(space, 5, b.rng)),
        )
        self.assertEqual(RandomSearchTuner(None).seed, 0)

    def test_no_shuffle_keeps_product_order(self):
        configs = self.configs({"a": [1, 2], "b": ["x", "y"]}, None, shuffle=False)
        self.assertEqual(
            [(c["a"], c["b"]) for c in configs],
            [(1, "x"), (1, "y"), (2, "x"), (2, "y")],
        )

    def test_list_candidates_may_be_lists(self):
        space = {"layer_out_dims": [[2, 10, 2], [2, 20, 2]]}
        configs = self.configs(space, None)
        self.assertEqual(
            sorted(c["layer_out_dims"] for c in configs), [[2, 10, 2], [2, 20, 2]]
        )
        # Each configuration holds its own copy of the candidate.
        configs[0]["layer_out_dims"].append(99)
        self.assertEqual(space["layer_out_dims"], [[2, 10, 2], [2, 20, 2]])

    def test_tuple_is_a_fixed_value(self):
        configs = self.configs({"betas": (0.9, 0.99)}, None)
        self.assertEqual(configs, [{"betas": (0.9, 0.99)}])

    def test_search_space_not_mutated(self):
        space = {"a": [1, 2], "c": {"range": [1, 10], "scale": "log"}, "d": 3}
        before = copy.deepcopy(space)
        self.configs(space, 5)
        self.assertEqual(space, before)


class BadSearchSpaceTest(unittest.TestCase):
    def check_raises(self, space, *fragments, max_search=5):
        with self.assertRaises(ValueError) as cm:
            ModelTuner.config_generator(space, max_search, random.Random(0))
        for fragment in fragments:
            self.assertIn(fragment, str(cm.exception))

    def test_empty_space(self):
        self.check_raises({}, "empty")

    def test_not_a_dict(self):
        self.check_raises([("a", 1)], "dict")

    def test_empty_candidates(self):
        self.check_raises({"a": []}, "'a'", "empty")

    def test_lo_greater_than_hi(self):
        self.check_raises({"lr": {"range": [0.1, 0.01]}}, "'lr'", "lo > hi")

    def test_log_scale_non_positive(self):
        self.check_raises({"lr": {"range": [0, 1], "scale": "log"}}, "'lr'", "log")
        self.check_raises({"lr": {"range": [-2, -1], "scale": "log"}}, "positive")

    def test_unknown_scale(self):
        self.check_raises({"lr": {"range": [1, 2], "scale": "cubic"}}, "cubic")

    def test_malformed_ranges(self):
        self.check_raises({"lr": {"range": [1]}}, "'lr'")
        self.check_raises({"lr": {"range": [1, "2"]}}, "'lr'")
        self.check_raises({"lr": {"range": [1, float("nan")]}}, "'lr'")
        self.check_raises({"lr": {"scale": "log"}}, "'range'")
        self.check_raises({"lr": {"range": [1, 2], "step": 1}}, "step")

    def test_bad_max_search(self):
        self.check_raises({"a": [1]}, "max_search", max_search=-1)
        self.check_raises({"a": [1]}, "max_search", max_search=2.5)

    def test_bad_constructor_arguments(self):
        with self.assertRaises(ValueError) as cm:
            RandomSearchTuner(EndModel, validation_metric="loss")
        self.assertIn("loss", str(cm.exception))
        with self.assertRaises(ValueError):
            RandomSearchTuner(EndModel, module_classes=[nn.Linear])
        with self.assertRaises(ValueError):
            RandomSearchTuner(EndModel, seed="abc")


class SearchValidationTest(unittest.TestCase):
    """Errors raised by ``search`` before anything is trained."""

    @classmethod
    def setUpClass(cls):
        cls.train, cls.valid, _ = make_data(200)

    def search(self, space, tuner=None, **kwargs):
        tuner = tuner or RandomSearchTuner(EndModel, seed=1)
        args = dict(
            train_args=[self.train],
            init_kwargs=dict(QUIET_EM),
            train_kwargs={"n_epochs": 1},
            verbose=False,
        )
        args.update(kwargs)
        return tuner.search(space, self.valid, **args)

    def test_undeclared_keys_reach_the_model_with_a_warning(self):
        # MeTaL's tuners inserted every key into the model's config; the
        # EndModel keeps an unknown key and warns that it has no effect.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = self.search(
                {"lr": [0.01], "learning_rate": [0.1], "dropout": [0.1]}
            )
        messages = [str(w.message) for w in caught if w.category is UserWarning]
        self.assertTrue(any("'learning_rate'" in m for m in messages), messages)
        self.assertTrue(
            any("'dropout'" in m and "'middle_dropout'" in m for m in messages),
            messages,
        )
        self.assertFalse(any("'lr'" in m for m in messages), messages)
        self.assertEqual(model.config["dropout"], 0.1)
        self.assertEqual(model.config["learning_rate"], 0.1)

    def test_bad_space_raises_in_search(self):
        for space in (
            {},
            {"lr": {"range": [1, 0]}},
            {"lr": {"range": [0, 1], "scale": "log"}},
        ):
            with self.assertRaises(ValueError):
                self.search(space)

    def test_flat_list_for_list_valued_key(self):
        with self.assertRaises(ValueError) as cm:
            self.search({"layer_out_dims": [2, 10, 2]})
        self.assertIn("layer_out_dims", str(cm.exception))

    def test_reserved_keys(self):
        with self.assertRaises(ValueError):
            self.search({"valid_data": [None]})

    def test_missing_model_class_or_valid_data(self):
        with self.assertRaises(ValueError):
            RandomSearchTuner(None).search({"lr": [0.1]}, self.valid)
        with self.assertRaises(ValueError):
            RandomSearchTuner(EndModel).search({"lr": [0.1]}, None)

    def test_module_arguments_for_unknown_module(self):
        with self.assertRaises(ValueError) as cm:
            self.search({"lr": [0.1]}, module_kwargs={"input_module": {}})
        self.assertIn("input_module", str(cm.exception))

    def test_nothing_trained_on_error(self):
        tuner = RandomSearchTuner(EndModel, seed=1)
        with self.assertRaises(ValueError):
            self.search({"lr": [0.1], "layer_out_dims": [2, 10, 2]}, tuner=tuner)
        self.assertEqual(tuner.run_stats, [])

    def test_global_rng_untouched_by_validation(self):
        np.random.seed(3)
        torch.manual_seed(3)
        expected = (np.random.random(), torch.rand(1).item())
        np.random.seed(3)
        torch.manual_seed(3)
        with self.assertRaises(ValueError):
            self.search({"lr": [0.1], "layer_out_dims": [2, 10, 2]})
        self.assertEqual((np.random.random(), torch.rand(1).item()), expected)


class RecordingModule(nn.Module):
    """An input module that records the keyword arguments it was built with."""

    built_with = []

    def __init__(self, in_dim, out_dim, scale=1.0):
        super().__init__()
        RecordingModule.built_with.append({"scale": scale})
        self.linear = nn.Linear(in_dim, out_dim)
        self.scale = scale

    def forward(self, x):
        return self.linear(x) * self.scale


class TrialTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.threads = torch.get_num_threads()
        torch.set_num_threads(1)
        cls.train, cls.valid, cls.test = make_data(800)

    @classmethod
    def tearDownClass(cls):
        torch.set_num_threads(cls.threads)

    def test_caller_arguments_not_mutated(self):
        space = {"lr": [0.01, 0.02], "middle_dropout": {"range": [0.0, 0.2]}}
        init_kwargs = dict(QUIET_EM)
        train_kwargs = {"n_epochs": 1}
        module_kwargs = {"input_module": {}}
        module_args = {"input_module": [2, 2]}
        saved = copy.deepcopy((space, init_kwargs, train_kwargs, module_kwargs))
        tuner = RandomSearchTuner(
            EndModel, module_classes={"input_module": RecordingModule}, seed=2
        )
        tuner.search(
            space,
            self.valid,
            train_args=[self.train],
            init_kwargs=init_kwargs,
            train_kwargs=train_kwargs,
            module_args=module_args,
            module_kwargs=module_kwargs,
            max_search=2,
            verbose=False,
        )
        self.assertEqual((space, init_kwargs, train_kwargs, module_kwargs), saved)
        self.assertEqual(module_args, {"input_module": [2, 2]})

    def test_modules_receive_only_their_keys(self):
        RecordingModule.built_with = []
        tuner = RandomSearchTuner(
            EndModel, module_classes={"input_module": RecordingModule}, seed=3
        )
        model = tuner.search(
            {"scale": [0.5, 1.0], "lr": {"range": [0.005, 0.02]}},
            self.valid,
            train_args=[self.train],
            init_kwargs=dict(QUIET_EM),
            train_kwargs={"n_epochs": 2},
            module_args={"input_module": [2, 2]},
            max_search=3,
            verbose=False,
        )
        trial_kwargs = RecordingModule.built_with[-3:]
        self.assertTrue(all(set(kw) == {"scale"} for kw in trial_kwargs))
        self.assertEqual(
            [kw["scale"] for kw in trial_kwargs],
            [r["config"]["scale"] for r in tuner.run_stats],
        )
        # Built from a custom module, the best model is kept in memory; it is
        # the trained best one.
        self.assertTrue(any(isinstance(m, RecordingModule) for m in model.modules()))
        self.assertEqual(model.score(self.valid, verbose=False), tuner.best_score)

    def test_no_files_without_log_dir(self):
        with tempfile.TemporaryDirectory() as cwd, working_directory(cwd):
            tuner = RandomSearchTuner(EndModel, seed=1)
            self.assertIsNone(tuner.log_subdir)
            self.assertIsNone(tuner.report_path)
            init_kwargs = {k: v for k, v in QUIET_EM.items()}
            tuner.search(
                {"lr": [0.01, 0.02]},
                self.valid,
                train_args=[self.train],
                init_kwargs=init_kwargs,  # checkpointing on (the default)
                train_kwargs={"n_epochs": 1},
                verbose=False,
            )
            self.assertEqual(os.listdir(cwd), [])
            self.assertIsNone(tuner._tmpdir)

    def test_log_dir_created_by_search_not_constructor(self):
        with tempfile.TemporaryDirectory() as tmp:
            tuner = RandomSearchTuner(
                EndModel, log_dir=tmp, run_dir="runs", run_name="first", seed=1
            )
            self.assertEqual(os.listdir(tmp), [])
            self.assertEqual(tuner.log_rootdir, os.path.join(tmp, "runs"))
            self.assertEqual(tuner.log_subdir, os.path.join(tmp, "runs", "first"))
            tuner.search(
                {"lr": [0.01, 0.02]},
                self.valid,
                train_args=[self.train],
                init_kwargs=dict(QUIET_EM),
                train_kwargs={"n_epochs": 1},
                verbose=False,
            )
            self.assertEqual(os.listdir(tuner.log_subdir), ["tuner_report.json"])

    def test_run_stats_and_report(self):
        with tempfile.TemporaryDirectory() as tmp:
            tuner = RandomSearchTuner(EndModel, log_dir=tmp, seed=4)
            tuner.search(
                {
                    "lr": {"range": [1e-3, 1e-1], "scale": "log"},
                    "layer_out_dims": [[2, 4, 2], [2, 8, 2]],
                    "n_epochs": 1,
                },
                self.valid,
                train_args=[self.train],
                init_kwargs={"seed": 1, "verbose": False},
                max_search=3,
                verbose=False,
                clean_up=False,
            )
            with open(tuner.report_path) as f:
                report = json.load(f)
            self.assertTrue(os.path.exists(tuner.save_path))
        self.assertEqual([r["idx"] for r in report], [0, 1, 2])
        for entry, stats in zip(report, tuner.run_stats):
            self.assertEqual(
                set(entry), {"idx", "time_elapsed", "search_params", "score", "config"}
            )
            self.assertEqual(set(entry["search_params"]), {"lr", "layer_out_dims"})
            self.assertEqual(entry["config"]["n_epochs"], 1)
            self.assertAlmostEqual(entry["score"], stats["score"])
        df = tuner.run_stats_df()
        self.assertEqual(list(df.columns), ["lr", "layer_out_dims", "score"])
        self.assertEqual(len(df), 3)
        self.assertEqual(df["score"].max(), tuner.best_score)

    def test_test_model_config_directly(self):
        tuner = RandomSearchTuner(EndModel, seed=1)
        config = {"layer_out_dims": [2, 10, 2], "n_epochs": 2, "seed": 1}
        score, model = tuner._test_model_config(
            0, config, self.valid, train_args=[self.train]
        )
        self.assertEqual(
            config, {"layer_out_dims": [2, 10, 2], "n_epochs": 2, "seed": 1}
        )
        self.assertEqual(score, model.score(self.valid, verbose=False))
        self.assertEqual((tuner.best_index, tuner.best_score), (0, score))
        self.assertEqual(tuner.run_stats[0]["search_params"], config)
        self.assertEqual(model.config["train_config"]["n_epochs"], 2)
        # Outside a search the best model waits in a temporary folder until
        # it is loaded with clean_up (or the tuner is discarded).
        folder = tuner._tmpdir
        self.assertTrue(os.path.isdir(folder))
        best = tuner._load_best_model(clean_up=True)
        self.assertEqual(best.score(self.valid, verbose=False), score)
        self.assertFalse(os.path.exists(folder))

    def test_metric_as_score_kwarg_rejected(self):
        with self.assertRaises(ValueError) as cm:
            RandomSearchTuner(EndModel).search(
                {"lr": [0.01]},
                self.valid,
                train_args=[self.train],
                init_kwargs=dict(QUIET_EM),
                verbose=False,
                metric="f1",
            )
        self.assertIn("validation_metric", str(cm.exception))

    def test_run_stats_df_empty(self):
        df = RandomSearchTuner(None).run_stats_df()
        self.assertEqual(list(df.columns), ["score"])
        self.assertEqual(len(df), 0)

    def test_search_is_abstract(self):
        with self.assertRaises(NotImplementedError):
            ModelTuner(EndModel).search({"lr": [0.1]}, self.valid)

    def test_verbose_prints_trials_and_table(self):
        tuner = RandomSearchTuner(EndModel, seed=1)
        _, out = quietly(
            tuner.search,
            {"lr": [0.01, 0.02]},
            self.valid,
            train_args=[self.train],
            init_kwargs=dict(QUIET_EM),
            train_kwargs={"n_epochs": 1},
        )
        self.assertIn("[trial 0/2]", out)
        self.assertIn("[trial 1/2]", out)
        self.assertIn("Best trial", out)
        self.assertIn("score", out)
        # The models stayed quiet (no architecture or epoch logs).
        self.assertNotIn("Network architecture", out)
        self.assertNotIn("Finished Training", out)


class CountingModule(nn.Module):
    """A module that counts its constructions (and draws from torch's RNG)."""

    built = 0

    def __init__(self, in_dim, out_dim, scale=1.0):
        super().__init__()
        CountingModule.built += 1
        self.linear = nn.Linear(in_dim, out_dim)
        self.scale = scale

    def forward(self, x):
        return self.linear(x) * self.scale


class ExplicitModel:
    """A user model without ``default_config``: every key it takes is named."""

    built_with = []
    trained_with = []

    def __init__(self, alpha=0.0, n_epochs=1):
        ExplicitModel.built_with.append({"alpha": alpha, "n_epochs": n_epochs})
        self.alpha = alpha

    def train_model(self, train_data, valid_data=None, n_epochs=1, beta=0.0):
        ExplicitModel.trained_with.append(
            {"valid_data": valid_data, "n_epochs": n_epochs, "beta": beta}
        )
        self.beta = beta

    def score(self, data, metric="accuracy", verbose=True):
        return self.alpha + self.beta


class KwargsModel:
    """A user model taking ``**kwargs`` without declaring a config: the tuner
    passes unnamed keys through and the model judges them."""

    accepted = ("alpha", "gamma", "verbose")
    built_with = []

    def __init__(self, **kwargs):
        unknown = sorted(set(kwargs) - set(self.accepted))
        if unknown:
            raise ValueError(f"KwargsModel does not take {unknown}")
        KwargsModel.built_with.append(dict(kwargs))
        self.kwargs = kwargs

    def train_model(self, train_data):
        pass

    def score(self, data, metric="accuracy", verbose=True):
        return float(self.kwargs.get("alpha", 0.0))


class DeclaredModel:
    """A model that declares its config tree with ``default_config`` and must
    never be built while a search is prepared."""

    built = 0

    @classmethod
    def default_config(cls):
        return {"alpha": 1.0, "verbose": True, "section": {"dims": [1, 2]}}

    def __init__(self, **kwargs):
        DeclaredModel.built += 1
        print("DeclaredModel built")
        np.random.random()
        self.config = kwargs

    def train_model(self, train_data, **kwargs):
        pass

    def score(self, data, metric="accuracy", verbose=True):
        return 0.5


def search_inputs(**kwargs):
    kwargs.setdefault("valid_data", "valid")
    return _SearchInputs(**kwargs)


class KeyRoutingTest(unittest.TestCase):
    """Keys are routed from what the classes declare; no model is built."""

    def prepare(self, tuner, space, **inputs):
        tuner._prepare_search(space, search_inputs(**inputs))
        return tuner._routing

    def test_end_model_keys_go_to_constructor_train_model_and_modules(self):
        tuner = RandomSearchTuner(
            EndModel, module_classes={"input_module": CountingModule}
        )
        routing = self.prepare(
            tuner,
            {
                "lr": {"range": [1e-3, 1e-1]},
                "layer_out_dims": [[2, 4, 2]],
                "middle_dropout": [0.0, 0.5],
                "scale": [0.5, 1.0],
            },
        )
        # Config keys reach both the constructor and train_model (**kwargs).
        for key in ("lr", "layer_out_dims", "middle_dropout"):
            self.assertIn(key, routing.init_keys)
            self.assertIn(key, routing.train_keys)
        # A key only a module names goes to that module alone.
        self.assertEqual(routing.module_keys, {"input_module": frozenset({"scale"})})
        self.assertNotIn("scale", routing.init_keys | routing.train_keys)
        self.assertEqual(routing.unknown, ())
        # The tuner's own settings go where the model takes them.
        self.assertTrue(routing.init_accepts("verbose"))
        self.assertTrue(routing.train_accepts("valid_data"))
        self.assertTrue(routing.train_accepts("validation_metric"))
        self.assertTrue(routing.has_checkpoint_dir)
        self.assertEqual(routing.default_checkpoint_dir, "checkpoints")

    def test_label_model_routing_from_default_config(self):
        routing = self.prepare(
            RandomSearchTuner(LabelModel),
            {"lr": [0.01], "prec_init": [0.6, 0.8], "class_balance": [None]},
        )
        self.assertEqual(routing.init_keys & {"lr", "prec_init"}, {"lr", "prec_init"})
        # class_balance is an argument of train_model only.
        self.assertIn("class_balance", routing.train_keys)
        self.assertNotIn("class_balance", routing.init_keys)
        self.assertFalse(routing.train_accepts("validation_metric"))
        self.assertFalse(routing.has_checkpoint_dir)

    def test_unknown_keys_reported_together_before_training(self):
        # Without **kwargs nothing can take an undeclared key.
        tuner = RandomSearchTuner(ExplicitModel)
        with self.assertRaisesRegex(ValueError, r"\['gamma', 'delta'\]"):
            self.prepare(tuner, {"gamma": [1], "alpha": [0.1], "delta": [1]})

    def test_undeclared_keys_go_to_the_constructor_kwargs(self):
        tuner = RandomSearchTuner(LabelModel)
        routing = self.prepare(
            tuner, {"layer_out_dims": [[2, 2]], "lr": [0.1], "lr_x": [1]}
        )
        self.assertEqual(routing.unknown, ())
        self.assertLessEqual({"layer_out_dims", "lr", "lr_x"}, routing.init_keys)
        self.assertNotIn("lr_x", routing.train_keys)

    def test_list_valued_keys_need_list_candidates(self):
        tuner = RandomSearchTuner(EndModel)
        for key, flat in (
            ("layer_out_dims", [2, 10, 2]),
            ("log_train_metrics", ["loss", "accuracy"]),
        ):
            with self.assertRaisesRegex(ValueError, f"{key}.*list of candidate lists"):
                self.prepare(tuner, {key: flat})
        routing = self.prepare(
            tuner,
            {
                "layer_out_dims": [[2, 10, 2], [2, 4, 2]],
                "log_train_metrics": [["loss"], ["loss", "accuracy"]],
                "betas": (0.9, 0.99),  # a fixed tuple value
            },
        )
        self.assertEqual(routing.unknown, ())

    def test_list_check_uses_declared_config(self):
        tuner = RandomSearchTuner(DeclaredModel)
        with self.assertRaisesRegex(ValueError, "dims"):
            self.prepare(tuner, {"dims": [1, 2, 3]})
        # An undeclared key goes to the constructor's **kwargs, as in MeTaL.
        routing = self.prepare(tuner, {"alpha": [1.0], "gamma": [1]})
        self.assertIn("gamma", routing.init_keys)
        self.assertEqual(routing.unknown, ())
        routing = self.prepare(tuner, {"dims": [[1, 2]], "section": [{"dims": [3]}]})
        self.assertEqual(routing.init_keys & {"dims", "section"}, {"dims", "section"})
        self.assertEqual(DeclaredModel.built, 0)

    def test_user_model_without_default_config(self):
        ExplicitModel.built_with, ExplicitModel.trained_with = [], []
        tuner = RandomSearchTuner(ExplicitModel, seed=1)
        routing = self.prepare(tuner, {"alpha": [0.1], "beta": [0.2], "n_epochs": [3]})
        self.assertEqual(routing.init_keys, {"alpha", "n_epochs"})
        self.assertEqual(routing.train_keys, {"beta", "n_epochs", "valid_data"})
        self.assertEqual(ExplicitModel.built_with, [])
        tuner.search(
            {"alpha": [0.1, 0.3], "beta": [0.2], "n_epochs": 3},
            "valid",
            train_args=["train"],
            shuffle=False,
            verbose=False,
        )
        self.assertEqual(
            ExplicitModel.built_with,
            [{"alpha": 0.1, "n_epochs": 3}, {"alpha": 0.3, "n_epochs": 3}],
        )
        self.assertEqual(
            ExplicitModel.trained_with,
            [{"valid_data": "valid", "n_epochs": 3, "beta": 0.2}] * 2,
        )
        self.assertAlmostEqual(tuner.best_score, 0.5)
        # Keys that no signature names are unknown.
        with self.assertRaisesRegex(ValueError, "gamma"):
            self.prepare(tuner, {"gamma": [1]})

    def test_kwargs_user_model_judges_keys_itself(self):
        KwargsModel.built_with = []
        tuner = RandomSearchTuner(KwargsModel, seed=1)
        tuner.search(
            {"alpha": [0.5], "gamma": [2]},
            "valid",
            train_args=["train"],
            verbose=False,
        )
        # Without a declared config, **kwargs also receives the tuner's quiet
        # ``verbose`` setting.
        self.assertEqual(
            KwargsModel.built_with, [{"alpha": 0.5, "gamma": 2, "verbose": False}]
        )
        # The tuner passes an unknown key on; the model rejects it.
        with self.assertRaisesRegex(ValueError, "KwargsModel does not take"):
            tuner.search({"delta": [1]}, "valid", train_args=["train"], verbose=False)

    def test_hyperband_needs_n_epochs_declared(self):
        with self.assertRaisesRegex(ValueError, "n_epochs"):
            HyperbandTuner(DeclaredModel, 30, 3).search(
                {"alpha": [1]}, "valid", verbose=False
            )
        tuner = HyperbandTuner(EndModel, 30, 3)
        tuner._prepare_search(
            {"lr": [0.01]}, search_inputs(), required_keys=["n_epochs"]
        )
        self.assertIn("n_epochs", tuner._routing.train_keys)

    def test_reserved_keys_raise(self):
        tuner = RandomSearchTuner(
            EndModel, module_classes={"input_module": CountingModule}
        )
        for key in ("valid_data", "log_writer", "input_module"):
            with self.assertRaisesRegex(ValueError, "supplied by the tuner"):
                self.prepare(tuner, {key: [None]})

    def test_prepare_builds_nothing_and_prints_nothing(self):
        CountingModule.built = DeclaredModel.built = 0
        for tuner, space in (
            (
                RandomSearchTuner(
                    EndModel, module_classes={"input_module": CountingModule}
                ),
                {"lr": [0.01], "scale": [2.0]},
            ),
            (RandomSearchTuner(DeclaredModel), {"alpha": [0.5]}),
            (RandomSearchTuner(LabelModel), {"lr": [0.01]}),
        ):
            _, out = quietly(
                self.prepare,
                tuner,
                space,
                init_kwargs={"verbose": True, "layer_out_dims": [2, 2]},
                module_args={"input_module": [2, 2]} if tuner.module_classes else {},
            )
            self.assertEqual(out, "")
        self.assertEqual((CountingModule.built, DeclaredModel.built), (0, 0))

    def test_prepare_consumes_no_global_rng(self):
        random.seed(11)
        np.random.seed(11)
        torch.manual_seed(11)
        py_state = random.getstate()
        np_state = np.random.get_state()
        torch_state = torch.get_rng_state()
        self.prepare(
            RandomSearchTuner(
                EndModel, module_classes={"input_module": CountingModule}
            ),
            {"lr": {"range": [1e-3, 1e-1]}, "scale": [0.5], "seed": [3]},
            init_kwargs={"layer_out_dims": [2, 2]},
            module_args={"input_module": [2, 2]},
        )
        self.prepare(RandomSearchTuner(DeclaredModel), {"alpha": [0.5]})
        self.prepare(RandomSearchTuner(LabelModel), {"seed": [5], "lr": [0.1]})
        self.assertEqual(random.getstate(), py_state)
        after = np.random.get_state()
        self.assertEqual(after[0], np_state[0])
        np.testing.assert_array_equal(after[1], np_state[1])
        self.assertEqual(after[2:], np_state[2:])
        self.assertTrue(torch.equal(torch.get_rng_state(), torch_state))

    def test_search_inputs(self):
        def call(
            valid_data,
            init_args=(),
            train_args=(),
            init_kwargs={},
            train_kwargs={},
            module_args={},
            module_kwargs={},
            **score_kwargs,
        ):
            return _SearchInputs.from_arguments(locals())

        inputs = call("v", train_args=[1], init_kwargs={"a": 1}, average="macro")
        self.assertEqual(inputs.valid_data, "v")
        self.assertEqual(inputs.train_args, [1])
        self.assertEqual(inputs.score_kwargs, {"average": "macro"})
        self.assertFalse(inputs.model_verbose)
        self.assertTrue(search_inputs(train_kwargs={"verbose": 1}).model_verbose)
        with self.assertRaisesRegex(ValueError, "validation_metric"):
            call("v", metric="f1")

    def test_public_signatures_unchanged(self):
        shared = [
            ("search_space", inspect.Parameter.empty),
            ("valid_data", inspect.Parameter.empty),
            ("init_args", []),
            ("train_args", []),
            ("init_kwargs", {}),
            ("train_kwargs", {}),
            ("module_args", {}),
            ("module_kwargs", {}),
            ("max_search", None),
            ("shuffle", True),
            ("verbose", True),
        ]
        expected = {
            ModelTuner: shared + [("score_kwargs", inspect.Parameter.empty)],
            RandomSearchTuner: shared
            + [("clean_up", True), ("seed", None)]
            + [("score_kwargs", inspect.Parameter.empty)],
            HyperbandTuner: shared
            + [("seed", None), ("score_kwargs", inspect.Parameter.empty)],
        }
        for cls, params in expected.items():
            found = list(inspect.signature(cls.search).parameters.values())[1:]
            self.assertEqual([(p.name, p.default) for p in found], params, cls)
        found = list(inspect.signature(ModelTuner._test_model_config).parameters)
        self.assertEqual(
            found,
            ["self", "idx", "config", "valid_data", "init_args", "train_args"]
            + ["init_kwargs", "train_kwargs", "module_args", "module_kwargs"]
            + ["verbose", "score_kwargs"],
        )


if __name__ == "__main__":
    unittest.main()
