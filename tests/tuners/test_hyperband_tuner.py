"""Tests of metal.tuners.hyperband_tuner.HyperbandTuner: schedules and search."""

import copy
import json
import os
import tempfile
import unittest
import warnings

import numpy as np
import torch

from metal.end_model import EndModel
from metal.tuners import HyperbandTuner
from tests.tuners.test_tuner import QUIET_EM, make_data, quietly

SCHEDULE_200 = [[(9, 2), (3, 8), (1, 26)], [(3, 8), (1, 26)], [(3, 26)]]
SCHEDULE_1701 = [
    [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
    [(27, 3), (9, 9), (3, 27), (1, 81)],
    [(9, 9), (3, 27), (1, 81)],
    [(6, 27), (2, 81)],
    [(5, 81)],
]


class ScoredByConfig:
    """A stand-in model whose validation score is a known function of its
    config: ``quality * n_epochs / (n_epochs + 1)`` (more epochs help)."""

    def __init__(self, quality=0.5, n_epochs=1, verbose=False):
        self.config = {"quality": quality, "n_epochs": n_epochs, "verbose": verbose}
        self.trained_epochs = None

    def train_model(self, train_data, valid_data=None, n_epochs=1, verbose=False):
        self.trained_epochs = n_epochs

    def score(self, data, metric="accuracy", verbose=True, **kwargs):
        e = self.trained_epochs
        return self.config["quality"] * e / (e + 1)


class NoEpochsModel(ScoredByConfig):
    def __init__(self, quality=0.5):
        self.config = {"quality": quality}

    def train_model(self, train_data, valid_data=None):
        self.trained_epochs = 1


class ScheduleTest(unittest.TestCase):
    def test_reference_schedules(self):
        _, out = quietly(HyperbandTuner, None, 200, 3, seed=123)
        self.assertEqual(out, "")  # nothing is printed at construction
        tuner = HyperbandTuner(None, 200, 3, seed=123)
        self.assertEqual(tuner.hyperband_schedule, SCHEDULE_200)
        self.assertEqual(tuner.compute_schedule_cost(tuner.hyperband_schedule), 196)
        tuner = HyperbandTuner(None, 1701, 3, seed=123)
        self.assertEqual(tuner.hyperband_schedule, SCHEDULE_1701)
        self.assertEqual(tuner.compute_schedule_cost(tuner.hyperband_schedule), 1701)

    def test_generate_uses_math_log(self):
        # math.log(243, 3) is 4.999..., so s_max is 4, not 5.
        schedule = HyperbandTuner.generate_hyperband_schedule(243, 3)
        self.assertEqual(len(schedule), 5)
        self.assertEqual(HyperbandTuner.generate_hyperband_schedule(1, 3), [[(1, 1)]])
        self.assertEqual(
            HyperbandTuner.generate_hyperband_schedule(26, 3), SCHEDULE_200
        )

    def test_largest_within_budget(self):
        get = HyperbandTuner.get_largest_schedule_within_budget
        for budget in (2, 10, 50, 200, 500):
            schedule = get(budget, 3)
            cost = HyperbandTuner.compute_schedule_cost(schedule)
            self.assertLessEqual(cost, budget)
            others = [
                HyperbandTuner.generate_hyperband_schedule(R, 3)
                for R in range(1, budget)
            ]
            costs = [HyperbandTuner.compute_schedule_cost(s) for s in others]
            self.assertEqual(cost, max(c for c in costs if c <= budget))
            # Ties go to the smallest R.
            first = min(i for i, c in enumerate(costs) if c == cost)
            self.assertEqual(schedule, others[first])
        self.assertEqual(get(2, 3), [[(1, 1)]])

    def test_pretty_print(self):
        _, out = quietly(HyperbandTuner.pretty_print_schedule, SCHEDULE_200)
        self.assertIn("Bracket 0: (9, 2) (3, 8) (1, 26)", out)
        self.assertIn("Bracket 1: (3, 8) (1, 26)", out)
        self.assertIn("Bracket 2: (3, 26)", out)
        _, short = quietly(
            HyperbandTuner.pretty_print_schedule, SCHEDULE_200, describe_hyperband=False
        )
        self.assertLess(len(short), len(out))
        self.assertIn("Bracket 2: (3, 26)", short)

    def test_bad_arguments(self):
        for budget in (1, 0, -5, 2.5, True):
            with self.assertRaises(ValueError):
                HyperbandTuner(None, hyperband_epochs_budget=budget)
        for eta in (1, 0.5, 0, "3"):
            with self.assertRaises(ValueError):
                HyperbandTuner(None, hyperband_proportion_discard=eta)
        with self.assertRaises(ValueError):
            HyperbandTuner(None, validation_metric="nope")

    def test_tuner_args_forwarded(self):
        tuner = HyperbandTuner(None, 30, validation_metric="f1", seed=4)
        self.assertEqual(tuner.validation_metric, "f1")
        self.assertEqual(tuner.seed, 4)
        self.assertIsNone(tuner.log_subdir)


class HyperbandSearchTest(unittest.TestCase):
    """Successive halving, checked on a model whose score is known."""

    space = {"quality": {"range": [0.0, 1.0]}}

    def search(self, tuner, space=None, **kwargs):
        args = dict(train_args=[None], verbose=False)
        args.update(kwargs)
        space = self.space if space is None else space
        return tuner.search(space, valid_data="valid", **args)

    def test_follows_schedule(self):
        tuner = HyperbandTuner(ScoredByConfig, 200, 3, seed=1)
        best = self.search(tuner)
        stats = tuner.run_stats
        self.assertEqual(len(stats), sum(n for b in SCHEDULE_200 for n, _ in b))
        for b, bracket in enumerate(SCHEDULE_200):
            for band, (n_i, r_i) in enumerate(bracket):
                rows = [r for r in stats if (r["bracket"], r["band"]) == (b, band)]
                self.assertEqual(len(rows), n_i)
                self.assertTrue(all(r["config"]["n_epochs"] == r_i for r in rows))
                self.assertTrue(
                    all(r["search_params"]["n_epochs"] == r_i for r in rows)
                )
                self.assertEqual(
                    [r["idx"] for r in rows], [f"{b}_{band}_{i}" for i in range(n_i)]
                )
                if band + 1 < len(bracket):
                    # The survivors are the best n_{i+1} of this band.
                    ranked = sorted(rows, key=lambda r: -r["score"])
                    expected = [
                        r["config"]["quality"] for r in ranked[: bracket[band + 1][0]]
                    ]
                    nxt = [
                        r["config"]["quality"]
                        for r in stats
                        if (r["bracket"], r["band"]) == (b, band + 1)
                    ]
                    self.assertEqual(nxt, expected)
        scores = [r["score"] for r in stats]
        self.assertEqual(tuner.best_score, max(scores))
        # Not rebuildable from a file: the trained best object itself.
        self.assertEqual(best.score("valid"), tuner.best_score)

    def test_reproducible_with_seed(self):
        runs = []
        for _ in range(2):
            tuner = HyperbandTuner(ScoredByConfig, 200, 3, seed=9)
            self.search(tuner)
            runs.append([(r["idx"], r["config"], r["score"]) for r in tuner.run_stats])
        self.assertEqual(runs[0], runs[1])
        other = HyperbandTuner(ScoredByConfig, 200, 3, seed=10)
        self.search(other)
        self.assertNotEqual(runs[0], [(r["idx"], r["config"]) for r in other.run_stats])

    def test_max_search_caps_each_bracket(self):
        tuner = HyperbandTuner(ScoredByConfig, 200, 3, seed=1)
        self.search(tuner, max_search=2)
        counts = {}
        for r in tuner.run_stats:
            counts[(r["bracket"], r["band"])] = (
                counts.get((r["bracket"], r["band"]), 0) + 1
            )
        self.assertEqual(
            counts, {(0, 0): 2, (0, 1): 1, (0, 2): 1, (1, 0): 2, (1, 1): 1, (2, 0): 2}
        )

    def test_small_discrete_space(self):
        tuner = HyperbandTuner(ScoredByConfig, 200, 3, seed=1)
        self.search(tuner, space={"quality": [0.2, 0.9]}, shuffle=False)
        first_band = [r for r in tuner.run_stats if r["idx"].startswith("0_0_")]
        self.assertEqual([r["config"]["quality"] for r in first_band], [0.2, 0.9])
        self.assertEqual(tuner.best_config["quality"], 0.9)

    def test_search_space_and_kwargs_not_mutated(self):
        space = {"quality": [0.3, 0.6], "verbose": False}
        train_kwargs = {"n_epochs": 100}
        saved = copy.deepcopy((space, train_kwargs))
        tuner = HyperbandTuner(ScoredByConfig, 30, 3, seed=1)
        self.search(tuner, space=space, train_kwargs=train_kwargs)
        self.assertEqual((space, train_kwargs), saved)
        # The schedule's epochs override train_kwargs.
        self.assertTrue(all(r["config"]["n_epochs"] in (2, 8) for r in tuner.run_stats))

    def test_n_epochs_in_space_is_overridden(self):
        tuner = HyperbandTuner(ScoredByConfig, 30, 3, seed=1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.search(tuner, space={"quality": [0.5], "n_epochs": [50]})
        self.assertTrue(any("n_epochs" in str(w.message) for w in caught))
        self.assertTrue(all(r["config"]["n_epochs"] in (2, 8) for r in tuner.run_stats))

    def test_model_without_n_epochs(self):
        tuner = HyperbandTuner(NoEpochsModel, 30, 3)
        with self.assertRaises(ValueError) as cm:
            self.search(tuner)
        self.assertIn("n_epochs", str(cm.exception))

    def test_bad_inputs(self):
        tuner = HyperbandTuner(ScoredByConfig, 30, 3)
        for space in (
            {},
            {"quality": []},
            {"quality": {"range": [1, 0]}},
            {"quality": {"range": [0, 1], "scale": "log"}},
            {"qualty": [0.5]},
        ):
            with self.assertRaises(ValueError):
                self.search(tuner, space=space)
        self.assertEqual(tuner.run_stats, [])

    def test_verbose_prints_schedule_and_table(self):
        tuner = HyperbandTuner(ScoredByConfig, 30, 3, seed=1)
        _, out = quietly(self.search, tuner, verbose=True)
        self.assertIn("Bracket 0: (3, 2) (1, 8)", out)
        self.assertIn("Bracket 1: (2, 8)", out)
        self.assertIn("[trial 0_0_0]", out)
        self.assertIn("Best trial", out)
        df = tuner.run_stats_df()
        self.assertEqual(list(df.columns), ["quality", "n_epochs", "score"])
        self.assertEqual(
            list(df.index), ["0_0_0", "0_0_1", "0_0_2", "0_1_0", "1_0_0", "1_0_1"]
        )


class HyperbandEndModelTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.threads = torch.get_num_threads()
        torch.set_num_threads(1)
        cls.train, cls.valid, cls.test = make_data(1200)

    @classmethod
    def tearDownClass(cls):
        torch.set_num_threads(cls.threads)

    def test_acceptance_end_model(self):
        """A new user's Hyperband run over lr and layer sizes, with a report."""
        with tempfile.TemporaryDirectory() as tmp:
            tuner = HyperbandTuner(
                EndModel, hyperband_epochs_budget=30, log_dir=tmp, seed=3
            )
            space = {
                "lr": {"range": [1e-3, 1e-1], "scale": "log"},
                "layer_out_dims": [[2, 8, 2], [2, 16, 2]],
            }
            model, out = quietly(
                tuner.search,
                space,
                self.valid,
                train_args=[self.train],
                init_kwargs={"seed": 1},
            )
            with open(tuner.report_path) as f:
                report = json.load(f)
            self.assertFalse(os.path.exists(tuner.save_path))
        self.assertEqual(len(report), 6)
        self.assertEqual(
            [(r["bracket"], r["band"], r["config"]["n_epochs"]) for r in report],
            [(0, 0, 2), (0, 0, 2), (0, 0, 2), (0, 1, 8), (1, 0, 8), (1, 0, 8)],
        )
        self.assertIn("Bracket 0: (3, 2) (1, 8)", out)
        self.assertIn(tuner.run_stats_df().to_string().splitlines()[0], out)
        self.assertIsInstance(model, EndModel)
        self.assertEqual(model.score(self.valid, verbose=False), tuner.best_score)
        self.assertEqual(tuner.best_score, max(r["score"] for r in report))
        self.assertEqual(
            model.config["train_config"]["n_epochs"], tuner.best_config["n_epochs"]
        )
        self.assertGreater(model.score(self.test, verbose=False), 0.9)

    def test_quiet_models_and_no_cwd_files(self):
        with tempfile.TemporaryDirectory() as cwd:
            previous = os.getcwd()
            os.chdir(cwd)
            try:
                tuner = HyperbandTuner(EndModel, 10, 3, seed=1)
                _, out = quietly(
                    tuner.search,
                    {"lr": [0.01, 0.02]},
                    self.valid,
                    train_args=[self.train],
                    init_kwargs=dict(QUIET_EM),
                )
                self.assertEqual(os.listdir(cwd), [])
            finally:
                os.chdir(previous)
        self.assertNotIn("Network architecture", out)
        self.assertTrue(np.isfinite(tuner.best_score))


if __name__ == "__main__":
    unittest.main()
