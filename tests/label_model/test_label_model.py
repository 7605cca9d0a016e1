import json
import os
import pickle
import tempfile
import unittest
import warnings
from unittest import mock

import numpy as np
import scipy.sparse as sparse
import torch

from metal.label_model import LabelModel, MajorityLabelVoter, label_model
from metal.synthetic.generate import SingleTaskTreeDepsGenerator
from tests.test_checks import bad_forms, recorded_densifications
from tests.test_classifier import BundleChecks


class NoJunctionTree(LabelModel):
    """The dependency fit with the unary (independence) posterior."""

    def _higher_order_blocks(self):
        return []


def param_error(model, data):
    return np.mean(np.abs(data.c_probs - model.get_conditional_probs()))


def make_votes(Y, accuracy, coverage, k, rng):
    """Votes of one source: correct with prob ``accuracy`` when it votes."""
    n = len(Y)
    wrong = (Y - 1 + rng.integers(1, k, n)) % k + 1
    votes = np.where(rng.random(n) < accuracy, Y, wrong)
    return np.where(rng.random(n) < coverage, votes, 0)


class LabelModelOriginalTest(unittest.TestCase):
    """The checks of MeTaL's own tests (synthetic data, n=10000, m=10, k=2)."""

    def _train(self, data, deps):
        model = LabelModel(k=data.k, verbose=False)
        model.train_model(
            data.L,
            deps=deps,
            class_balance=data.p,
            n_epochs=1000,
            log_train_every=200,
        )
        return model

    def test_no_deps(self):
        np.random.seed(0)
        data = SingleTaskTreeDepsGenerator(10000, 10, k=2, edge_prob=0.0)
        model = self._train(data, data.E)
        self.assertLess(param_error(model, data), 0.025)
        score = model.score((data.L, data.Y), verbose=False)
        self.assertGreater(score, 0.95)
        np.random.seed(0)
        mv_score = MajorityLabelVoter(k=2).score((data.L, data.Y), verbose=False)
        self.assertGreater(score, mv_score)

    def test_with_deps(self):
        np.random.seed(0)
        data = SingleTaskTreeDepsGenerator(10000, 10, k=2, edge_prob=1.0)
        self.assertEqual(len(data.E), 9)
        model = self._train(data, data.E)
        self.assertTrue(model.inv_form)
        self.assertLess(param_error(model, data), 0.025)
        # The original crashed here; the junction-tree posterior must work.
        score = model.score((data.L, data.Y), verbose=False)
        self.assertGreater(score, 0.95)

    def test_three_classes(self):
        np.random.seed(1)
        data = SingleTaskTreeDepsGenerator(10000, 10, k=3)
        model = self._train(data, [])
        self.assertLess(param_error(model, data), 0.025)
        np.random.seed(1)
        mv_score = MajorityLabelVoter(k=3).score((data.L, data.Y), verbose=False)
        self.assertGreater(model.score((data.L, data.Y), verbose=False), mv_score)

    def test_augmented_L_construction(self):
        n, m, k = 3, 5, 2
        E = [(0, 1), (1, 2), (2, 0), (0, 3)]
        L = np.array([[1, 1, 1, 2, 1], [1, 2, 2, 1, 0], [1, 1, 1, 1, 0]])
        model = LabelModel(k=k, verbose=False)
        model._set_constants(L)
        model._set_dependencies(E)
        L_aug = model._get_augmented_label_matrix(L, higher_order=True)

        self.assertEqual(L_aug.shape, (3, 22))
        self.assertEqual(L_aug.sum(), 19)
        for i in range(n):
            for j in range(m):
                if L[i, j] > 0:
                    self.assertEqual(L_aug[i, j * k + L[i, j] - 1], 1)

        nodes = dict(model.c_tree.nodes(data=True))
        triangle = [a for a in nodes.values() if len(a["members"]) == 3]
        pair = [a for a in nodes.values() if len(a["members"]) == 2]
        self.assertEqual(len(triangle), 1)
        self.assertEqual(len(pair), 1)
        j = triangle[0]["start_index"]
        self.assertEqual(L_aug[0, j], 1)
        self.assertEqual(L_aug[1, j + 3], 1)
        self.assertEqual(L_aug[2, j], 1)
        j = pair[0]["start_index"]
        self.assertEqual(L_aug[0, j + 1], 1)
        self.assertEqual(L_aug[1, j], 1)
        self.assertEqual(L_aug[2, j], 1)
        self.assertIn((0, 1, 2), model.c_data)
        self.assertIn((0, 3), model.c_data)


class LabelModelFitTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        np.random.seed(3)
        cls.data = SingleTaskTreeDepsGenerator(4000, 8, k=2)

    def test_state_after_training(self):
        model = LabelModel(k=2, verbose=False, seed=1)
        model.train_model(self.data.L)
        m, k = 8, 2
        self.assertEqual((model.n, model.m, model.t, model.d), (4000, m, 1, m * k))
        self.assertEqual(tuple(model.mu.shape), (m * k, k))
        self.assertIsInstance(model.mu, torch.nn.Parameter)
        self.assertEqual(tuple(model.O.shape), (m * k, m * k))
        self.assertEqual(model.mask.dtype, torch.bool)
        # The k x k diagonal block of every source is masked out, nothing else.
        expected = np.ones((m * k, m * k), dtype=bool)
        for i in range(m):
            expected[i * k : (i + 1) * k, i * k : (i + 1) * k] = False
        np.testing.assert_array_equal(model.mask.numpy(), expected)
        np.testing.assert_allclose(model.p, [0.5, 0.5])
        np.testing.assert_allclose(torch.diag(model.P).numpy(), [0.5, 0.5])
        self.assertFalse(model.inv_form)

    def test_overlap_matrix_matches_one_hot(self):
        L = self.data.L.toarray()
        model = LabelModel(k=2, verbose=False)
        model.train_model(L, n_epochs=1)
        X = model._create_L_ind(L).astype(np.float64)
        self.assertEqual(X.shape, (4000, 16))
        np.testing.assert_allclose(model.O.numpy(), X.T @ X / len(X), atol=1e-7)
        # one-hot layout: column i*k + y - 1 on iff L[r, i] == y
        r, i = np.nonzero(L)
        self.assertTrue(np.all(X[r, i * 2 + L[r, i] - 1] == 1))
        self.assertEqual(X.sum(), np.count_nonzero(L))

    def test_input_types_give_identical_results(self):
        L = self.data.L
        dense = L.toarray()
        forms = [
            L,
            L.tocsc(),
            L.tocoo(),
            dense,
            dense.astype(np.int8),
            dense.astype(np.float32),
            torch.from_numpy(dense),
            torch.from_numpy(dense).float(),
        ]
        results = []
        for form in forms:
            model = LabelModel(k=2, verbose=False, seed=7)
            model.train_model(form)
            results.append(model.predict_proba(form))
        for probs in results[1:]:
            np.testing.assert_allclose(probs, results[0], atol=1e-10)

    def test_same_seed_same_probabilities(self):
        probs = []
        for _ in range(2):
            np.random.seed(None)
            model = LabelModel(k=2, verbose=False, seed=42)
            model.train_model(self.data.L)
            probs.append(model.predict_proba(self.data.L))
        np.testing.assert_array_equal(probs[0], probs[1])

    def test_no_global_reseeding_without_seed(self):
        np.random.seed(5)
        expected = np.random.random()
        np.random.seed(5)
        LabelModel(k=2, verbose=False)
        self.assertEqual(np.random.random(), expected)

    def test_predict_proba_rows_and_predict_labels(self):
        model = LabelModel(k=2, verbose=False, seed=1)
        model.train_model(self.data.L)
        probs = model.predict_proba(self.data.L)
        self.assertEqual(probs.shape, (4000, 2))
        self.assertEqual(probs.dtype, np.float64)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0)
        preds = model.predict(self.data.L)
        self.assertEqual(preds.dtype, np.int64)
        decided = np.abs(probs[:, 0] - probs[:, 1]) > 1e-5
        np.testing.assert_array_equal(preds[decided], probs[decided].argmax(axis=1) + 1)

    def test_predict_proba_formula(self):
        model = LabelModel(k=2, verbose=False, seed=1)
        model.train_model(self.data.L, class_balance=[0.4, 0.6])
        L = self.data.L.toarray()[:50]
        mu = np.clip(model.mu.detach().numpy().astype(np.float64), 0.01, 0.99)
        expected = np.zeros((50, 2))
        for r in range(50):
            log_post = np.log([0.4, 0.6])
            for i in np.flatnonzero(L[r]):
                log_post = log_post + np.log(mu[i * 2 + L[r, i] - 1])
            expected[r] = np.exp(log_post - np.logaddexp.reduce(log_post))
        np.testing.assert_allclose(model.predict_proba(L), expected, atol=1e-5)

    def test_many_sources_do_not_underflow(self):
        rng = np.random.default_rng(0)
        Y = rng.integers(1, 3, 2000)
        L = np.stack([make_votes(Y, 0.8, 1.0, 2, rng) for _ in range(400)], 1)
        model = LabelModel(k=2, verbose=False, seed=0)
        model.train_model(L)
        probs = model.predict_proba(L)
        self.assertTrue(np.all(np.isfinite(probs)))
        np.testing.assert_allclose(probs.sum(axis=1), 1.0)
        self.assertGreater(np.mean(probs.argmax(axis=1) + 1 == Y), 0.99)

    def test_get_conditional_probs_layout(self):
        model = LabelModel(k=3, verbose=False, seed=0)
        np.random.seed(0)
        data = SingleTaskTreeDepsGenerator(3000, 5, k=3)
        model.train_model(data.L)
        table = model.get_conditional_probs()
        self.assertEqual(table.shape, (5 * 4, 3))
        self.assertTrue(np.all((table >= 0.01) & (table <= 0.99)))
        mu = model.mu.detach().numpy().astype(np.float64)
        for i in range(5):
            block = model.get_conditional_probs(source=i)
            np.testing.assert_array_equal(block, table[i * 4 : (i + 1) * 4])
            raw = mu[i * 3 : (i + 1) * 3]
            np.testing.assert_allclose(block[1:], np.clip(raw, 0.01, 0.99))
            np.testing.assert_allclose(
                block[0], np.clip(1 - raw.sum(axis=0), 0.01, 0.99)
            )
        with self.assertRaises(ValueError):
            model.get_conditional_probs(source=5)

    def test_score_metrics_list_and_ties(self):
        model = LabelModel(k=2, verbose=False, seed=0)
        model.train_model(self.data.L)
        scores = model.score(
            (self.data.L, self.data.Y), metric=["accuracy", "f1"], verbose=False
        )
        self.assertEqual(len(scores), 2)
        self.assertGreater(scores[0], 0.9)
        # An item on which every source abstains is a tie at the uniform prior.
        L = np.zeros((3, 8), dtype=int)
        np.testing.assert_array_equal(model.predict(L, break_ties="abstain"), [0, 0, 0])
        np.testing.assert_array_equal(model.predict(L, break_ties=2), [2, 2, 2])

    def test_score_prints_when_verbose(self):
        import contextlib
        import io

        model = LabelModel(k=2, verbose=False, seed=0)
        model.train_model(self.data.L)
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            model.score((self.data.L, self.data.Y))
        self.assertIn("Accuracy:", buffer.getvalue())


class LabelModelConfigTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        np.random.seed(4)
        cls.data = SingleTaskTreeDepsGenerator(3000, 6, k=2)

    def test_config_merge_of_flat_keys(self):
        model = LabelModel(k=2, verbose=False, n_epochs=7, lr=0.05, seed=3)
        tc = model.config["train_config"]
        self.assertEqual(tc["n_epochs"], 7)
        self.assertEqual(tc["optimizer_config"]["optimizer_common"]["lr"], 0.05)
        self.assertEqual(model.seed, 3)
        model.train_model(self.data.L, l2=0.5, prec_init=0.8)
        self.assertEqual(model.config["train_config"]["l2"], 0.5)

    def test_class_balance_from_Y_dev(self):
        model = LabelModel(k=3, verbose=False)
        model._set_class_balance(None, np.array([1, 1, 3, 3]))
        np.testing.assert_allclose(model.p, [0.5, 0.0, 0.5])
        model._set_class_balance(None, torch.tensor([1, 2, 2, 2]))
        np.testing.assert_allclose(model.p, [0.25, 0.75, 0.0])
        model._set_class_balance([0.2, 0.3, 0.5], np.array([1, 1]))
        np.testing.assert_allclose(model.p, [0.2, 0.3, 0.5])
        model._set_class_balance(None, None)
        np.testing.assert_allclose(model.p, [1 / 3] * 3)

    def test_class_balance_ignores_unlabeled_Y_dev_items(self):
        # 0 marks an item without a gold label: only labels 1..k are counted.
        model = LabelModel(k=3, verbose=False)
        model._set_class_balance(None, np.array([0, 1, 0, 3, 3, 1, 0]))
        np.testing.assert_allclose(model.p, [0.5, 0.0, 0.5])
        model.train_model(self.data.L, Y_dev=np.r_[np.zeros(50, int), [1, 2, 2, 2]])
        np.testing.assert_allclose(model.p, [0.25, 0.75, 0.0])
        with self.assertRaisesRegex(ValueError, "Y_dev must contain at least one"):
            model.train_model(self.data.L, Y_dev=np.zeros(10, int))

    def test_json_writer_logs_the_fit(self):
        with tempfile.TemporaryDirectory() as log_dir:
            model = LabelModel(k=2, verbose=False, seed=0, writer="json")
            model.train_model(
                self.data.L,
                n_epochs=20,
                log_train_every=5,
                log_dir=log_dir,
                run_dir="lm",
                run_name="fit",
            )
            (run,) = os.listdir(os.path.join(log_dir, "lm"))
            self.assertTrue(run.startswith("fit"))
            with open(os.path.join(log_dir, "lm", run, "log.json")) as f:
                log = json.load(f)
            steps = [step for step, _ in log["run_log"]["train/loss"]]
            self.assertEqual(steps, [5, 10, 15, 20])
            self.assertEqual(log["config"]["train_config"]["n_epochs"], 20)
            self.assertTrue(
                os.path.exists(os.path.join(log_dir, "lm", run, "config.json"))
            )

    def test_tensorboard_writer_logs_the_fit(self):
        try:
            import tensorboardX  # noqa: F401
        except ImportError:
            self.skipTest("tensorboardX is not installed")
        with tempfile.TemporaryDirectory() as log_dir:
            model = LabelModel(k=2, verbose=False, seed=0)
            model.train_model(
                self.data.L,
                n_epochs=10,
                writer="tensorboard",
                log_dir=log_dir,
                run_dir="lm",
                run_name="tb",
            )
            (run,) = os.listdir(os.path.join(log_dir, "lm"))
            files = os.listdir(os.path.join(log_dir, "lm", run))
            self.assertTrue(any(f.startswith("events.out.tfevents") for f in files))

    def test_unsupported_run_settings_are_refused(self):
        with self.assertRaisesRegex(ValueError, "checkpoint must be False"):
            LabelModel(k=2, checkpoint=True)
        model = LabelModel(k=2, verbose=False)
        with self.assertRaisesRegex(ValueError, "checkpoint must be False"):
            model.train_model(self.data.L, checkpoint=True)
        with self.assertRaisesRegex(ValueError, "writer"):
            model.train_model(self.data.L, writer="csv")
        self.assertFalse(model.is_trained)

    def test_array_prec_init_and_l2(self):
        m, k = 6, 2
        for prec_init in (np.full(m, 0.8), np.float32(0.75), [0.7] * m):
            for l2 in (np.full(m, 0.1), np.full(m * k, 0.1), 0.1):
                model = LabelModel(k=k, verbose=False, seed=0, prec_init=prec_init)
                model.train_model(self.data.L, l2=l2)
                self.assertGreater(
                    model.score((self.data.L, self.data.Y), verbose=False), 0.8
                )

    def test_l2_pulls_towards_init(self):
        distances = []
        for l2 in (0.0, 1.0, 10.0):
            model = LabelModel(k=2, verbose=False, seed=0)
            model.train_model(self.data.L, l2=l2, optimizer="lbfgs")
            distances.append(float(torch.norm(model.mu.detach() - model.mu_init)))
        self.assertGreater(distances[0], distances[1])
        self.assertGreater(distances[1], distances[2])

    def test_loss_l2_is_squared_scale(self):
        model = LabelModel(k=2, verbose=False, seed=0)
        model.train_model(self.data.L)
        diff = torch.sum((model.mu - model.mu_init) ** 2).item()
        self.assertAlmostEqual(model.loss_l2(l2=2).item(), 4 * diff, places=4)
        per_source = np.full(6, 2.0)
        self.assertAlmostEqual(model.loss_l2(l2=per_source).item(), 4 * diff, places=4)

    def test_loss_mu_matches_numpy_objective(self):
        model = LabelModel(k=2, verbose=False, seed=0)
        model.train_model(self.data.L)
        mu = model.mu.detach().double().numpy()
        O = model.O.double().numpy()
        mask = model.mask.numpy()
        p = model.p
        expected = np.sum(((O - mu @ np.diag(p) @ mu.T)[mask]) ** 2)
        expected += np.sum((mu @ p - np.diag(O)) ** 2)
        self.assertAlmostEqual(model.loss_mu().item(), expected, places=5)

    def test_optimizers_reach_the_same_fit(self):
        np.random.seed(0)
        data = SingleTaskTreeDepsGenerator(10000, 10, k=2)
        errors, losses = {}, {}
        for optimizer, epochs in (("sgd", 1000), ("adam", 1000), ("lbfgs", 500)):
            model = LabelModel(k=2, verbose=False, seed=0)
            model.train_model(data.L, optimizer=optimizer, n_epochs=epochs)
            errors[optimizer] = param_error(model, data)
            losses[optimizer] = model.loss_mu().item()
        for optimizer, error in errors.items():
            self.assertLess(error, 0.025, optimizer)
        # L-BFGS solves the objective to its optimum.
        self.assertLessEqual(losses["lbfgs"], losses["sgd"] + 1e-7)
        self.assertLessEqual(losses["lbfgs"], losses["adam"] + 1e-7)

    def test_sgd_follows_momentum_rule(self):
        """One full-batch epoch equals a torch SGD step on loss_mu."""
        model = LabelModel(k=2, verbose=False, seed=0)
        model.train_model(self.data.L, n_epochs=0)
        start = model.mu.detach().clone()
        reference = torch.nn.Parameter(start.clone())
        optimizer = torch.optim.SGD([reference], lr=0.01, momentum=0.9)
        model.mu = reference
        for _ in range(3):
            optimizer.zero_grad()
            model.loss_mu().backward()
            optimizer.step()
        expected = reference.detach().clone()
        model2 = LabelModel(k=2, verbose=False, seed=0)
        model2.train_model(self.data.L, n_epochs=3)
        np.testing.assert_allclose(
            model2.mu.detach().numpy(), expected.numpy(), atol=1e-5
        )

    def test_divergence_falls_back_to_lbfgs(self):
        model = LabelModel(k=2, verbose=False, seed=0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.train_model(self.data.L, lr=1e4)
        self.assertTrue(any("diverged" in str(w.message) for w in caught))
        self.assertGreater(model.score((self.data.L, self.data.Y), verbose=False), 0.8)

    def test_log_writer_receives_losses(self):
        class Recorder:
            def __init__(self):
                self.calls = []

            def add_scalar(self, name, value, step):
                self.calls.append((name, value, step))

        recorder = Recorder()
        model = LabelModel(k=2, verbose=False, seed=0)
        model.train_model(
            self.data.L, n_epochs=20, log_train_every=5, log_writer=recorder
        )
        self.assertEqual([c[2] for c in recorder.calls], [5, 10, 15, 20])
        self.assertTrue(all(c[0] == "train/loss" for c in recorder.calls))

    def test_verbose_prints_progress(self):
        import contextlib
        import io

        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            model = LabelModel(k=2, seed=0)
            model.train_model(self.data.L, n_epochs=10, log_train_every=5)
        text = buffer.getvalue()
        self.assertIn("[5 epo]: TRAIN:[loss=", text)
        self.assertIn("[10 epo]", text)
        self.assertIn("Finished Training", text)
        quiet = io.StringIO()
        with contextlib.redirect_stdout(quiet):
            LabelModel(k=2, verbose=False).train_model(self.data.L, n_epochs=10)
        self.assertEqual(quiet.getvalue(), "")


def set_optimizer_settings(model, optimizer, **settings):
    """Write torch settings into ``optimizer``'s sub-config of ``model.config``.

    The default config tree names only ``momentum`` (sgd) and ``betas`` (adam),
    so the flat/nested kwarg merge rejects the other torch settings; they are
    set on the config dict directly.
    """
    sub = {"adamax": "adam_config"}.get(optimizer, f"{optimizer}_config")
    optimizer_config = model.config["train_config"]["optimizer_config"]
    optimizer_config.setdefault(sub, {}).update(settings)


def record_mu_fits(model):
    """Record ``(start, result)`` of every mu fit of ``model`` (float64)."""
    fits = []
    minimize = model._minimize

    def recording_minimize(objective, start, name):
        result = minimize(objective, start, name)
        if name == "mu":
            fits.append((np.array(start), np.array(result)))
        return result

    model._minimize = recording_minimize
    return fits


def torch_reference_steps(model, start, optimizer_class, n_steps, **settings):
    """``n_steps`` of ``optimizer_class(**settings)`` on ``model.loss_mu`` by
    autograd, from the float64 ``start``; returns the float64 ``mu``."""
    mu = torch.nn.Parameter(torch.tensor(start, dtype=torch.float64))
    trained_mu = model.mu
    model.mu = mu
    try:
        reference = optimizer_class([mu], **settings)
        for _ in range(n_steps):
            reference.zero_grad()
            model.loss_mu().backward()
            reference.step()
    finally:
        model.mu = trained_mu
    return mu.detach().numpy()


class LabelModelOptimizerTest(unittest.TestCase):
    """Every optimizer is torch.optim's, with the sub-config's settings."""

    # (optimizer, lr, torch class, settings that differ from torch's defaults)
    CASES = [
        ("sgd", 0.01, torch.optim.SGD, dict(momentum=0.8, nesterov=True)),
        ("sgd", 0.01, torch.optim.SGD, dict(momentum=0.9, dampening=0.3)),
        ("sgd", 0.01, torch.optim.SGD, dict(momentum=0.9, weight_decay=0.5)),
        ("adam", 0.01, torch.optim.Adam, dict(betas=(0.8, 0.95), amsgrad=True)),
        ("adam", 0.01, torch.optim.Adam, dict(eps=1e-3, weight_decay=0.5)),
        ("adamax", 0.01, torch.optim.Adamax, dict(betas=(0.7, 0.9), eps=1e-4)),
        ("adamax", 0.01, torch.optim.Adamax, dict(weight_decay=0.5)),
        ("rmsprop", 0.002, torch.optim.RMSprop, dict(alpha=0.9, momentum=0.5)),
        ("rmsprop", 0.002, torch.optim.RMSprop, dict(centered=True, eps=1e-4)),
        ("rmsprop", 0.002, torch.optim.RMSprop, dict(weight_decay=0.5)),
    ]

    @classmethod
    def setUpClass(cls):
        np.random.seed(5)
        cls.data = SingleTaskTreeDepsGenerator(3000, 6, k=2)

    def _fit(self, optimizer, lr, n_epochs, **settings):
        """Train on the shared data; return the model and its first mu fit."""
        model = LabelModel(k=2, verbose=False, seed=0)
        if settings:
            set_optimizer_settings(model, optimizer, **settings)
        fits = record_mu_fits(model)
        model.train_model(self.data.L, optimizer=optimizer, lr=lr, n_epochs=n_epochs)
        return model, fits[0]

    def test_steps_equal_torch_optimizer_on_loss_mu(self):
        """The fit's steps are those of the torch optimizer with the configured
        settings driven by autograd on ``loss_mu`` (so the analytic gradient
        and every setting reach torch), and the settings change the result."""
        n_steps = 25
        for optimizer, lr, optimizer_class, settings in self.CASES:
            with self.subTest(optimizer=optimizer, settings=settings):
                model, (start, result) = self._fit(optimizer, lr, n_steps, **settings)
                expected = torch_reference_steps(
                    model, start, optimizer_class, n_steps, lr=lr, **settings
                )
                np.testing.assert_allclose(result, expected, rtol=0, atol=1e-10)
                # the trained parameter is the float32 rounding of the result
                np.testing.assert_array_equal(
                    model.mu.detach().numpy(), result.astype(np.float32)
                )
                _, (_, plain) = self._fit(optimizer, lr, n_steps)
                self.assertGreater(np.max(np.abs(result - plain)), 1e-6)

    def test_weight_decay_shrinks_mu_towards_zero(self):
        """torch's weight decay (unlike the label model's l2, which pulls
        towards mu_init) shrinks every entry of mu towards 0."""
        plain, _ = self._fit("sgd", 0.01, 100)
        decayed, _ = self._fit("sgd", 0.01, 100, momentum=0.9, weight_decay=5.0)
        self.assertLess(
            float(decayed.mu.detach().abs().sum()),
            0.9 * float(plain.mu.detach().abs().sum()),
        )

    def test_adamax_reads_adam_config(self):
        """As in MeTaL, adamax takes its settings from adam_config; Adam-only
        settings there (amsgrad) do not reach Adamax."""
        model, (start, result) = self._fit(
            "adamax", 0.01, 20, betas=(0.6, 0.9), amsgrad=True
        )
        expected = torch_reference_steps(
            model, start, torch.optim.Adamax, 20, lr=0.01, betas=(0.6, 0.9)
        )
        np.testing.assert_allclose(result, expected, rtol=0, atol=1e-10)

    def test_lbfgs_ignores_sub_configs(self):
        a = LabelModel(k=2, verbose=False, seed=0)
        a.train_model(self.data.L, optimizer="lbfgs", n_epochs=200)
        b = LabelModel(k=2, verbose=False, seed=0)
        set_optimizer_settings(b, "sgd", nesterov=True, weight_decay=3.0)
        b.train_model(self.data.L, optimizer="lbfgs", n_epochs=200)
        np.testing.assert_array_equal(a.mu.detach().numpy(), b.mu.detach().numpy())

    def test_unknown_optimizer_name_raises(self):
        model = LabelModel(k=2, verbose=False, optimizer="newton")
        with self.assertRaisesRegex(ValueError, "'newton'") as context:
            model.train_model(self.data.L)
        for name in ("sgd", "adam", "adamax", "rmsprop", "lbfgs"):
            self.assertIn(name, str(context.exception))

    def test_settings_torch_rejects_raise_value_error(self):
        cases = [
            ("sgd", dict(momentum=0.0, nesterov=True), "sgd_config"),
            ("sgd", dict(momentum=-1.0), "momentum"),
            ("adam", dict(betas=(1.5, 0.9)), "adam_config"),
            ("rmsprop", dict(alpha=-0.5), "rmsprop_config"),
            ("rmsprop", dict(colour="red"), "colour"),
            ("adamax", dict(eps=-1.0), "adam_config"),
        ]
        for optimizer, settings, pattern in cases:
            with self.subTest(optimizer=optimizer, settings=settings):
                model = LabelModel(k=2, verbose=False, seed=0)
                set_optimizer_settings(model, optimizer, **settings)
                with self.assertRaisesRegex(ValueError, pattern):
                    model.train_model(self.data.L, optimizer=optimizer)

    def test_divergence_of_every_optimizer_falls_back_to_lbfgs(self):
        # The adaptive optimizers' steps are about lr in size, so only a huge
        # lr makes the quartic loss overflow.
        for optimizer, lr in (
            ("sgd", 1e6),
            ("adam", 1e100),
            ("adamax", 1e100),
            ("rmsprop", 1e100),
        ):
            with self.subTest(optimizer=optimizer):
                model = LabelModel(k=2, verbose=False, seed=0)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    model.train_model(self.data.L, optimizer=optimizer, lr=lr)
                messages = [str(w.message) for w in caught]
                self.assertTrue(
                    any(f"The {optimizer} fit of mu diverged" in m for m in messages),
                    messages,
                )
                self.assertTrue(np.all(np.isfinite(model.mu.detach().numpy())))
                score = model.score((self.data.L, self.data.Y), verbose=False)
                self.assertGreater(score, 0.8)


class LabelModelOptimizerQualityTest(unittest.TestCase):
    """Every optimizer recovers the generating parameters (n=10000, m=10)."""

    # optimizer -> (lr, n_epochs)
    SETTINGS = {
        "sgd": (0.01, 1000),
        "adam": (0.01, 1000),
        "adamax": (0.01, 1000),
        "rmsprop": (0.005, 1000),
        "lbfgs": (0.01, 500),
    }

    def _check(self, data, deps, threshold):
        majority = MajorityLabelVoter(k=2, verbose=False, seed=0)
        mv_score = majority.score((data.L, data.Y), verbose=False)
        for optimizer, (lr, n_epochs) in self.SETTINGS.items():
            with self.subTest(optimizer=optimizer):
                model = LabelModel(k=2, verbose=False, seed=0)
                model.train_model(
                    data.L,
                    deps=deps,
                    class_balance=data.p,
                    optimizer=optimizer,
                    lr=lr,
                    n_epochs=n_epochs,
                )
                self.assertLess(param_error(model, data), threshold)
                score = model.score((data.L, data.Y), verbose=False)
                self.assertGreater(score, mv_score)

    def test_no_deps(self):
        np.random.seed(0)
        data = SingleTaskTreeDepsGenerator(10000, 10, k=2, edge_prob=0.0)
        self._check(data, [], threshold=0.01)

    def test_with_deps(self):
        np.random.seed(0)
        data = SingleTaskTreeDepsGenerator(10000, 10, k=2, edge_prob=1.0)
        self._check(data, data.E, threshold=0.01)


class LabelModelStatisticsTest(unittest.TestCase):
    """Each statistic is one float64 buffer; NumPy reads it without copies."""

    STATISTICS = ("O", "O_inv", "mu_init", "Q", "P")

    @classmethod
    def setUpClass(cls):
        np.random.seed(2)
        cls.data = SingleTaskTreeDepsGenerator(3000, 6, k=2, edge_prob=1.0)
        cls.model = LabelModel(k=2, verbose=False, seed=0)
        cls.model.train_model(
            cls.data.L, deps=cls.data.E, class_balance=[0.35, 0.65], n_epochs=50
        )

    def test_statistics_are_float64_buffers(self):
        model = self.model
        d, k = model.d, model.k
        buffers = dict(model.named_buffers())
        shapes = {"O": (d, d), "O_inv": (d, d), "mu_init": (d, k), "Q": (d, d)}
        shapes["P"] = (k, k)
        for name in self.STATISTICS:
            self.assertIn(name, buffers)
            self.assertEqual(buffers[name].dtype, torch.float64, name)
            self.assertEqual(tuple(buffers[name].shape), shapes[name], name)
        self.assertEqual(buffers["mask"].dtype, torch.bool)
        self.assertEqual(model.mu.dtype, torch.float32)
        self.assertIsInstance(model.mu, torch.nn.Parameter)
        clique_tables = {"mu_higher", "clique_patterns", "clique_pattern_counts"}
        self.assertEqual(
            set(model.state_dict()) - {"mu", "Z"} - clique_tables,
            {"O", "O_inv", "mu_init", "Q", "P", "mask"},
        )

    def test_no_numpy_copies_of_the_statistics(self):
        model = self.model
        for name, value in vars(model).items():
            if isinstance(value, np.ndarray):
                self.assertLess(value.size, model.d, name)
        for name in self.STATISTICS:
            view = model._stat(name)
            self.assertEqual(view.dtype, np.float64)
            self.assertTrue(np.shares_memory(view, getattr(model, name).numpy()))

    def test_p_is_the_diagonal_of_P(self):
        model = self.model
        np.testing.assert_array_equal(model.p, [0.35, 0.65])
        self.assertEqual(model.p.dtype, np.float64)
        self.assertTrue(np.shares_memory(model.p, model.P.numpy()))
        np.testing.assert_array_equal(model.P.numpy(), np.diag([0.35, 0.65]))
        untrained = LabelModel(k=3, verbose=False)
        self.assertFalse(hasattr(untrained, "p"))
        untrained.p = [0.2, 0.3, 0.5]
        self.assertEqual(untrained.P.dtype, torch.float64)
        np.testing.assert_array_equal(untrained.p, [0.2, 0.3, 0.5])

    def test_statistics_have_their_meaning(self):
        model = self.model
        O = model.O.numpy()
        X = model._create_L_ind(self.data.L).astype(np.float64)
        np.testing.assert_allclose(O, X.T @ X / len(X), rtol=0, atol=1e-15)
        np.testing.assert_allclose(model.O_inv.numpy() @ O, np.eye(model.d), atol=1e-8)
        np.testing.assert_allclose(model.Q.numpy(), model.get_Q(), rtol=0, atol=0)
        diag = np.diag(O).reshape(model.m, 2) * 0.7 / np.array([0.35, 0.65])
        expected = np.zeros((model.d, 2))
        expected[np.arange(model.d), np.tile([0, 1], model.m)] = np.clip(
            diag.ravel(), 0, 1
        )
        np.testing.assert_allclose(model.mu_init.numpy(), expected, atol=1e-15)

    def test_torch_losses_are_float64_and_reach_mu_and_Z(self):
        model = self.model
        for loss in (
            model.loss_mu(),
            model.loss_inv_mu(l2=0.3),
            model.loss_l2(l2=np.full(model.m, 0.5)),
        ):
            self.assertEqual(loss.dtype, torch.float64)
            model.mu.grad = None
            loss.backward()
            self.assertEqual(model.mu.grad.dtype, torch.float32)
            self.assertEqual(model.mu.grad.shape, model.mu.shape)
        loss = model.loss_inv_Z()
        self.assertEqual(loss.dtype, torch.float64)
        model.Z.grad = None
        loss.backward()
        self.assertEqual(model.Z.grad.dtype, torch.float32)
        model.mu.grad = model.Z.grad = None

    def test_loss_mu_equals_the_fitted_objective(self):
        """``loss_mu`` and the NumPy objective of the fit agree in float64."""
        np.random.seed(3)
        data = SingleTaskTreeDepsGenerator(2000, 5, k=3)
        model = LabelModel(k=3, verbose=False, seed=0)
        fits = record_mu_fits(model)
        model.train_model(data.L, l2=0.2, n_epochs=30)
        _, result = fits[-1]
        model.mu = torch.nn.Parameter(torch.from_numpy(result))
        mu, O, p = result, model.O.numpy(), model.p
        mask = model.mask.numpy()
        expected = np.sum(((O - mu @ np.diag(p) @ mu.T)[mask]) ** 2)
        expected += np.sum((mu @ p - np.diag(O)) ** 2)
        expected += 0.2**2 * np.sum((mu - model.mu_init.numpy()) ** 2)
        self.assertAlmostEqual(model.loss_mu(l2=0.2).item(), expected, places=14)


class LabelSymmetryTest(unittest.TestCase):
    def test_prec_init_decides_the_labelling(self):
        """Five accurate and five adversarial sources are symmetric under a label
        flip; prec_init says which sources are the accurate ones."""
        rng = np.random.default_rng(0)
        Y = rng.integers(1, 3, 20000)
        L = np.stack(
            [make_votes(Y, 0.8, 0.5, 2, rng) for _ in range(5)]
            + [make_votes(Y, 0.2, 0.5, 2, rng) for _ in range(5)],
            axis=1,
        )
        right = LabelModel(k=2, verbose=False, seed=0, prec_init=[0.8] * 5 + [0.2] * 5)
        right.train_model(L)
        self.assertGreater(right.score((L, Y), verbose=False), 0.9)
        flipped = LabelModel(
            k=2, verbose=False, seed=0, prec_init=[0.2] * 5 + [0.8] * 5
        )
        flipped.train_model(L)
        self.assertLess(flipped.score((L, Y), verbose=False), 0.1)

    def test_best_permutation_detects_swapped_columns(self):
        np.random.seed(0)
        data = SingleTaskTreeDepsGenerator(3000, 6, k=3)
        model = LabelModel(k=3, verbose=False, seed=0)
        model.train_model(data.L)
        mu = model.mu.detach().double().numpy()
        self.assertIsNone(model._best_label_permutation(mu))
        swapped = mu[:, [2, 0, 1]]
        permutation = model._best_label_permutation(swapped)
        np.testing.assert_array_equal(swapped[:, permutation], mu)


class DependencyTest(unittest.TestCase):
    def test_junction_tree_posterior_on_correlated_pair(self):
        """A pair of near-copies must count about once, not twice."""
        rng = np.random.default_rng(1)
        n = 20000
        Y = rng.integers(1, 3, n)
        independent = [make_votes(Y, 0.75, 0.6, 2, rng) for _ in range(6)]
        base = make_votes(Y, 0.65, 0.9, 2, rng)
        copy = np.where(rng.random(n) < 0.97, base, make_votes(Y, 0.65, 0.9, 2, rng))
        L = np.stack(independent + [base, copy], axis=1)
        deps = [(6, 7)]
        junction = LabelModel(k=2, verbose=False, seed=0)
        junction.train_model(L, deps=deps)
        unary = NoJunctionTree(k=2, verbose=False, seed=0)
        unary.train_model(L, deps=deps)
        block = junction._blocks[0]
        self.assertEqual(block["members"], (6, 7))
        self.assertEqual(tuple(junction.mu_higher.shape), (4, 2))
        tables = junction.mu_higher.numpy()
        self.assertTrue(np.all(tables >= 0))
        self.assertTrue(np.all(tables.sum(axis=0) <= 1 + 1e-6))
        # Given Y = y the copies mostly agree: the (y, y) patterns dominate.
        self.assertGreater(tables[0, 0], 5 * tables[1, 0])
        self.assertGreater(tables[3, 1], 5 * tables[2, 1])
        y_jt = junction.score((L, Y), verbose=False)
        y_un = unary.score((L, Y), verbose=False)
        self.assertGreaterEqual(y_jt, y_un)

    def test_unipolar_sources_with_deps(self):
        """Sources that only ever vote one class leave zero rows in O; the
        dependency fit must still work."""
        rng = np.random.default_rng(2)
        n = 5000
        Y = rng.integers(1, 3, n)
        cols = []
        for label, acc in ((1, 0.8), (2, 0.85), (1, 0.7), (2, 0.75), (2, 0.8)):
            fire = rng.random(n) < 0.4
            correct = rng.random(n) < acc
            hit = fire & (((Y == label) & correct) | ((Y != label) & ~correct))
            cols.append(np.where(hit, label, 0))
        L = np.stack(cols, axis=1)
        model = LabelModel(k=2, verbose=False, seed=0)
        model.train_model(L, deps=[(1, 3)])
        probs = model.predict_proba(L)
        self.assertTrue(np.all(np.isfinite(probs)))
        mu = model.mu.detach().numpy()
        # Never-emitted (source, value) rows stay exactly zero.
        self.assertTrue(np.all(mu[0 * 2 + 1] == 0))
        self.assertTrue(np.all(mu[1 * 2 + 0] == 0))

    def test_get_Q_formula(self):
        np.random.seed(0)
        data = SingleTaskTreeDepsGenerator(3000, 6, k=2, edge_prob=1.0)
        model = LabelModel(k=2, verbose=False, seed=0)
        model.train_model(data.L, deps=data.E)
        Z = model.Z.detach().double().numpy()
        O = model.O.double().numpy()
        expected = O @ Z @ np.linalg.inv(np.eye(2) + Z.T @ O @ Z) @ Z.T @ O
        np.testing.assert_allclose(model.get_Q(), expected, atol=1e-5)
        self.assertGreaterEqual(model.loss_inv_Z().item(), 0)
        self.assertGreaterEqual(model.loss_inv_mu().item(), 0)

    def test_full_coverage_sources_with_deps_raise_clearly(self):
        rng = np.random.default_rng(0)
        Y = rng.integers(1, 3, 1000)
        L = np.stack([make_votes(Y, 0.8, 1.0, 2, rng) for _ in range(4)], axis=1)
        with self.assertRaisesRegex(ValueError, "never abstain"):
            LabelModel(k=2, verbose=False).train_model(L, deps=[(0, 1)])


def votes_with_labels(n, m, k, seed, coverage=0.6, accuracy=0.75):
    """``(L, Y)``: m independent sources over k classes."""
    rng = np.random.default_rng(seed)
    Y = rng.integers(1, k + 1, n)
    L = np.stack([make_votes(Y, accuracy, coverage, k, rng) for _ in range(m)], 1)
    return L, Y


def majority_accuracy(L, Y):
    return MajorityLabelVoter(k=int(Y.max()), verbose=False).score(
        (L, Y), verbose=False
    )


class DependencyScaleTest(unittest.TestCase):
    """Cliques at large k: tables sized by the vote patterns that occur, a
    clear refusal beyond ``MAX_ARRAY_BYTES``, and a default Z fit that
    converges without the L-BFGS fallback."""

    ALL_PAIRS = [(i, j) for i in range(5) for j in range(i + 1, 5)]

    def test_one_clique_of_five_sources_at_k50(self):
        # A dense table would be k**5 x k = 62.5 GB; only observed patterns
        # (at most n per clique) are kept.
        L, Y = votes_with_labels(2000, 5, 50, 0)
        model = LabelModel(k=50, verbose=False, seed=1)
        model.train_model(L, deps=self.ALL_PAIRS)
        self.assertEqual(len(model._blocks), 1)
        self.assertEqual(model._blocks[0]["members"], (0, 1, 2, 3, 4))
        voted_all = int(np.all(L > 0, axis=1).sum())
        self.assertLessEqual(model.mu_higher.shape[0], voted_all)
        self.assertEqual(model.mu_higher.shape[1], 50)
        self.assertGreater(model.score((L, Y), verbose=False), 0.8)
        # the dense augmented matrix would have k**5 columns per row: refused
        with self.assertRaisesRegex(ValueError, r"GB.*\[0, 1, 2, 3, 4\]"):
            model._get_augmented_label_matrix(L, higher_order=True)

    def test_rare_values_tied_together_are_named(self):
        # n=200 and k=50: single votes of two sources on one item make equal
        # columns of O; the error says so instead of blaming coverage
        L, _ = votes_with_labels(200, 5, 50, 0)
        with self.assertRaisesRegex(
            ValueError, r"occur on exactly the same few items \(source \d voting"
        ):
            LabelModel(k=50, verbose=False).train_model(L, deps=self.ALL_PAIRS)

    def test_tables_over_the_limit_are_refused_before_allocation(self):
        L, _ = votes_with_labels(2000, 5, 50, 0)
        model = LabelModel(k=50, verbose=False, seed=1)
        with mock.patch.object(label_model, "MAX_ARRAY_BYTES", 10**4):
            with self.assertRaisesRegex(
                ValueError, r"GB.*clique of sources \[0, 1, 2, 3, 4\]"
            ):
                model.train_model(L, deps=self.ALL_PAIRS)

    def test_unseen_patterns_take_the_floor(self):
        L, _ = votes_with_labels(3000, 6, 3, 4)
        model = LabelModel(k=3, verbose=False, seed=1)
        model.train_model(L, deps=[(0, 1)])
        seen = {tuple(r) for r in L[:, :2] if r.all()}
        unseen = [(a, b) for a in (1, 2, 3) for b in (1, 2, 3) if (a, b) not in seen]
        L_new = L[:5].copy()
        L_new[:, :2] = unseen[0] if unseen else (1, 1)
        probs = model.predict_proba(L_new)
        self.assertTrue(np.all(np.isfinite(probs)))
        np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-6)

    def test_default_fit_converges_without_fallback(self):
        for k, deps in ((3, [(0, 1)]), (3, [(0, 1), (2, 3)]), (50, [(0, 1)])):
            with self.subTest(k=k, deps=deps):
                L, Y = votes_with_labels(5000, 6, k, 2)
                model = LabelModel(k=k, verbose=False, seed=1)
                with warnings.catch_warnings():
                    warnings.simplefilter("error")
                    model.train_model(L, deps=deps)
                independent = LabelModel(k=k, verbose=False, seed=1)
                independent.train_model(L)
                score = model.score((L, Y), verbose=False)
                self.assertGreater(score, majority_accuracy(L, Y) - 0.01)
                self.assertGreater(
                    score, independent.score((L, Y), verbose=False) - 0.01
                )

    def test_z_fit_recovers_parameters_with_deps(self):
        np.random.seed(3)
        data = SingleTaskTreeDepsGenerator(10000, 8, k=3, edge_prob=0.5)
        model = LabelModel(k=3, verbose=False, seed=0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model.train_model(data.L, deps=data.E)
        self.assertLess(param_error(model, data), 0.1)


class DuplicateSourcesTest(unittest.TestCase):
    """An exact copy of a source, declared dependent on it, counts once; a
    copy that is not declared (or any other cause of a singular O) is named."""

    @classmethod
    def setUpClass(cls):
        cls.L, cls.Y = votes_with_labels(3000, 6, 3, 1)
        cls.base = LabelModel(k=3, verbose=False, seed=1)
        cls.base.train_model(cls.L)
        cls.L_copy = np.hstack([cls.L, cls.L[:, :1], cls.L[:, :1]])

    def test_declared_copy_counts_once(self):
        for deps in ([(0, 6)], [(0, 6), (6, 7)], [(0, 6), (0, 7)]):
            with self.subTest(deps=deps):
                L = self.L_copy[:, : 1 + max(max(e) for e in deps)]
                model = LabelModel(k=3, verbose=False, seed=1)
                model.train_model(L, deps=deps)
                copies = {j: 0 for j in range(6, L.shape[1])}
                self.assertEqual(model._folds, copies)
                mu = model.mu.detach().numpy()
                for copy in copies:
                    np.testing.assert_array_equal(mu[3 * copy : 3 * copy + 3], mu[:3])
                # as if the copies were not there
                gap = np.abs(model.predict_proba(L) - self.base.predict_proba(self.L))
                self.assertLess(gap.max(), 0.05)
                self.assertGreaterEqual(
                    model.score((L, self.Y), verbose=False),
                    self.base.score((self.L, self.Y), verbose=False) - 0.005,
                )

    def test_copy_with_other_dependencies(self):
        L = self.L_copy[:, :7]
        model = LabelModel(k=3, verbose=False, seed=1)
        model.train_model(L, deps=[(0, 6), (6, 2)])
        self.assertEqual(model._folds, {6: 0})
        # 6 depends on 2, so its original does too: their entries are not fitted
        mask = model._folded_mask(model.mask.numpy())
        self.assertFalse(mask[0:3, 6:9].any())
        self.assertGreater(
            model.score((L, self.Y), verbose=False), majority_accuracy(L, self.Y)
        )

    def test_folds_survive_save_and_load(self):
        L = self.L_copy[:, :7]
        model = LabelModel(k=3, verbose=False, seed=1)
        model.train_model(L, deps=[(0, 6)])
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "lm.pth")
            model.save(path)
            loaded = LabelModel.load(path)
        self.assertEqual(loaded._folds, {6: 0})
        np.testing.assert_allclose(
            loaded.predict_proba(L), model.predict_proba(L), atol=1e-6
        )

    def test_undeclared_copy_is_named(self):
        with self.assertRaisesRegex(
            ValueError, r"sources 0 and 6 vote exactly alike.*\(0, 6\)"
        ):
            LabelModel(k=3, verbose=False).train_model(
                self.L_copy[:, :7], deps=[(1, 2)]
            )

    def test_relabelled_copy_is_named(self):
        relabelled = self.L[:, :1].copy()
        relabelled[relabelled > 0] = 4 - relabelled[relabelled > 0]
        with self.assertRaisesRegex(ValueError, "sources 0 and 6 determine each"):
            LabelModel(k=3, verbose=False).train_model(
                np.hstack([self.L, relabelled]), deps=[(1, 2)]
            )

    def test_full_coverage_sources_are_named(self):
        L = self.L.copy()
        L[L[:, 0] == 0, 0] = 1
        L[L[:, 3] == 0, 3] = 2
        with self.assertRaisesRegex(ValueError, r"sources \[0, 3\] never abstain"):
            LabelModel(k=3, verbose=False).train_model(L, deps=[(1, 2)])

    def test_damaged_folds_are_refused(self):
        L = self.L_copy[:, :7]
        model = LabelModel(k=3, verbose=False, seed=1)
        model.train_model(L, deps=[(0, 6)], n_epochs=5)
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "lm.pth")
            model.save(path)
            bundle = torch.load(path, weights_only=True)
            bundle["extra_state"]["folds"] = [[9, 0]]
            torch.save(bundle, path)
            with self.assertRaisesRegex(ValueError, "is damaged.*folded copy 9"):
                LabelModel.load(path)


class OverlapCountingTest(unittest.TestCase):
    """The overlap counts by pairs of (source, value) (used from k=16 on)
    equal the dense one-hot product, with abstains, for any k and m."""

    @staticmethod
    def dense_reference(L, k):
        """Source-major counts ``L_ind^T L_ind`` by the definition."""
        n, m = L.shape
        X = np.zeros((n, m * k))
        for i in range(m):
            for v in range(k):
                X[:, i * k + v] = L[:, i] == v + 1
        return X.T @ X

    def test_pairwise_counts_equal_the_dense_product(self):
        rng = np.random.default_rng(0)
        cpu = torch.device("cpu")
        for k in (2, 3, 16, 41):
            for m in (1, 2, 7, 40):
                with self.subTest(k=k, m=m):
                    L = rng.integers(0, k + 1, (2500, m)).astype(np.int16)
                    L[rng.random(L.shape) < 0.4] = 0  # abstains
                    L[:, 0][:10] = 0  # rows where some sources abstain
                    chunks = [L[:700], L[700:701], L[701:]]
                    counts, n = label_model._pairwise_overlaps(iter(chunks), k, m, cpu)
                    self.assertEqual(n, 2500)
                    self.assertTrue(sparse.issparse(counts))
                    counts = counts.toarray()
                    # value-major column v*m + i is source-major i*k + v
                    j = np.arange(m * k)
                    order = (j % m) * k + j // m
                    expected = self.dense_reference(L, k)
                    np.testing.assert_array_equal(
                        counts, expected[np.ix_(order, order)]
                    )

    def test_overlap_matrix_for_many_classes(self):
        rng = np.random.default_rng(1)
        k = 20
        Y = rng.integers(1, k + 1, 4000)
        L = np.stack([make_votes(Y, 0.7, 0.5, k, rng) for _ in range(6)], axis=1)
        for deps in ([], [(0, 1)]):
            with self.subTest(deps=deps):
                model = LabelModel(k=k, verbose=False, seed=0)
                model.train_model(L, deps=deps, n_epochs=5)
                np.testing.assert_array_equal(
                    model.O.numpy(), self.dense_reference(L, k) / len(L)
                )
        with mock.patch.object(label_model, "_PAIRWISE_MIN_K", 10**6):
            dense = LabelModel(k=k, verbose=False, seed=0)
            dense.train_model(L, n_epochs=5)
        pairwise = LabelModel(k=k, verbose=False, seed=0)
        pairwise.train_model(L, n_epochs=5)
        np.testing.assert_array_equal(dense.mu.detach(), pairwise.mu.detach())


REFERENCE_FITS = os.path.join(os.path.dirname(__file__), "data", "mu_reference.npz")

# The cases of data/mu_reference.npz: (LabelModel arguments, train_model
# arguments). Their label matrices are in the file with the float64 mu that
# the fit gave before the objective was factored (commit e1306b0, which formed
# the dense [d, d] residual at every step).
REFERENCE_CASES = {
    "k2_default": (dict(k=2, seed=0), {}),
    "k3_l2_sources": (
        dict(k=3, seed=1),
        dict(l2=[0.1, 0.5, 0, 0.2, 0.3, 0.0, 1.0, 0.05]),
    ),
    "k5_adam": (dict(k=5, seed=2), dict(optimizer="adam", lr=0.005, n_epochs=60)),
    "k20_pairwise": (dict(k=20, seed=3), {}),
    "k40_pairwise_l2": (dict(k=40, seed=4), dict(l2=0.3)),
    "k3_deps": (dict(k=3, seed=5), dict(deps=[(0, 1), (2, 3)])),
    "k3_lbfgs": (dict(k=3, seed=6), dict(optimizer="lbfgs", n_epochs=200)),
    "k4_balance": (dict(k=4, seed=7), dict(class_balance=[0.1, 0.2, 0.3, 0.4])),
    "k4_unused_value": (dict(k=4, seed=8), {}),
    "k3_low_prec": (dict(k=3, seed=9), dict(prec_init=0.2)),
    "k20_deps": (dict(k=20, seed=10), dict(deps=[(1, 2)])),
}


def stored_sparse(columns=1):
    """Patch the label model to keep O sparse beyond ``columns`` indicator
    columns, however filled it is (small test data fills O)."""
    return mock.patch.multiple(
        label_model, _DENSE_O_MAX_COLUMNS=columns, _SPARSE_O_MAX_FILL=1.0
    )


def fitted_mu(L, init, train):
    """The float64 mu that ``train_model`` hands to ``_set_mu`` last."""
    recorded = []
    original = LabelModel._set_mu

    def spy(self, mu):
        recorded.append(np.array(mu, dtype=np.float64))
        original(self, mu)

    with mock.patch.object(LabelModel, "_set_mu", spy):
        LabelModel(verbose=False, **init).train_model(L, **train)
    return recorded[-1]


def dense_masked_objective(model, target, mask, x):
    """The objective by its definition (dense [d, d] residual), for reference."""
    d, k, p = model.d, model.k, model.p
    mu = x.reshape(d, k)
    l2 = model._l2_rows(model.config["train_config"]["l2"])[:, None]
    R = (target - (mu * p) @ mu.T) * mask
    e = (mu * p).sum(axis=1) - model._diag_O()
    D = l2 * (mu - model._stat("mu_init"))
    f = np.sum(R * R) + e @ e + np.sum(D * D)
    g = -4.0 * R @ (mu * p) + 2.0 * e[:, None] * p + 2.0 * l2 * D
    return f, g.ravel()


class ManyClassesTest(unittest.TestCase):
    """The many-classes machinery (sparse O for large d, the factored mu
    objective, posteriors by summed rows) computes what the dense
    definitions do."""

    def test_fitted_mu_equals_the_former_implementation(self):
        reference = np.load(REFERENCE_FITS)
        for dense_limit in (label_model._DENSE_O_MAX_COLUMNS, 1):
            for name, (init, train) in REFERENCE_CASES.items():
                with self.subTest(case=name, dense_limit=dense_limit):
                    L = reference[f"{name}/L"]
                    with stored_sparse(dense_limit):
                        mu = fitted_mu(L, init, train)
                    np.testing.assert_allclose(
                        mu, reference[f"{name}/mu"], rtol=0, atol=1e-8
                    )

    def _trained(self, k, m, deps=(), n=3000, seed=0, **train):
        rng = np.random.default_rng(seed)
        Y = rng.integers(1, k + 1, n)
        L = np.stack([make_votes(Y, 0.7, 0.6, k, rng) for _ in range(m)], axis=1)
        model = LabelModel(k=k, verbose=False, seed=seed)
        model.train_model(L, deps=list(deps), n_epochs=3, **train)
        return model, L, Y

    def test_objective_equals_the_dense_definition(self):
        rng = np.random.default_rng(3)
        for k, m, l2 in ((2, 5, 0.0), (3, 6, 0.4), (17, 4, 0.0), (30, 3, 0.2)):
            model, _, _ = self._trained(k, m, l2=l2)
            O = model._stat("O")
            excluded_cases = {
                "own blocks": np.eye(m, dtype=bool),
                "own blocks and a pair": np.eye(m, dtype=bool),
                "nothing": np.zeros((m, m), dtype=bool),
                "one own block": np.zeros((m, m), dtype=bool),
            }
            excluded_cases["own blocks and a pair"][[0, 1], [1, 0]] = True
            excluded_cases["one own block"][1, 1] = True
            for dense_limit in (label_model._DENSE_O_MAX_COLUMNS, 1):
                for label, excluded in excluded_cases.items():
                    with self.subTest(k=k, case=label, dense_limit=dense_limit):
                        with stored_sparse(dense_limit):
                            model._set_O(O)
                            target = model._fit_target(excluded)
                        source = np.repeat(np.arange(m), k)
                        mask = ~excluded[np.ix_(source, source)]
                        objective = model._mu_objective(target, excluded)
                        x = rng.random(model.d * k) * 0.3
                        f, g = objective(x)
                        f_ref, g_ref = dense_masked_objective(model, O, mask, x)
                        self.assertAlmostEqual(f, f_ref, delta=1e-12 * max(1, f_ref))
                        np.testing.assert_allclose(g, g_ref, rtol=0, atol=1e-12)

    def test_Z_objective_equals_the_dense_definition(self):
        """The dependency form's Z objective from Grams of row blocks of
        unequal sizes (an empty one included) equals ||A + (W W^T)[mask]||^2."""
        rng = np.random.default_rng(8)
        sizes, k = [3, 0, 5, 2, 4], 3
        blocks, start = [], 0
        for size in sizes:
            blocks.append(slice(start, start + size))
            start += size
        r = start
        group_of = np.repeat(np.arange(len(sizes)), sizes)
        for pairs in ([], [(0, 2)], [(0, 2), (2, 3), (1, 4)]):
            excluded = np.eye(len(sizes), dtype=bool)
            for a, b in pairs:
                excluded[a, b] = excluded[b, a] = True
            mask = ~excluded[np.ix_(group_of, group_of)]
            A = rng.normal(size=(r, r))
            A = (A + A.T) * mask
            residual = label_model._masked_gram_residual(
                label_model._FitTarget(A), blocks, excluded, 1.0, k
            )
            W = rng.normal(size=(r, k))
            R = A + (W @ W.T) * mask
            f, g = residual(W)
            with self.subTest(pairs=pairs):
                self.assertAlmostEqual(f, np.sum(R * R), places=9)
                np.testing.assert_allclose(g, 4 * R @ W, atol=1e-10)

    def test_low_rank_Q_target_equals_the_dense_Q(self):
        """The dependency form fits mu to Q through its factors B inner B^T."""
        model, _, _ = self._trained(4, 6, deps=[(0, 1), (2, 3)])
        B, inner = model._Q_factors()
        low_rank = label_model._LowRankTarget(B, inner)
        dense = label_model._FitTarget(model._stat("Q"))
        np.testing.assert_allclose(model._stat("Q"), model.get_Q(), atol=1e-12)
        self.assertAlmostEqual(low_rank.squared_norm, dense.squared_norm, places=10)
        X = np.random.default_rng(7).random((model.d, model.k))
        np.testing.assert_allclose(
            low_rank.times(X, np.empty_like(X)),
            dense.times(X, np.empty_like(X)),
            rtol=0,
            atol=1e-12,
        )

    def test_statistics_equal_the_dense_ones(self):
        """O (stored sparse beyond _DENSE_O_MAX_COLUMNS), its diagonal and the
        losses equal the dense one-hot definitions, with abstains, with and
        without dependencies."""
        for k, m, deps in ((16, 5, ()), (23, 4, [(0, 1)]), (40, 3, ())):
            with self.subTest(k=k, deps=deps):
                model, L, _ = self._trained(k, m, deps)
                dense_O = OverlapCountingTest.dense_reference(L, k) / len(L)
                np.testing.assert_array_equal(model.O.numpy(), dense_O)
                with stored_sparse(1):
                    stored, _, _ = self._trained(k, m, deps)
                self.assertEqual(stored.O.layout, torch.sparse_coo)
                np.testing.assert_array_equal(stored.O.to_dense().numpy(), dense_O)
                np.testing.assert_array_equal(stored._diag_O(), np.diag(dense_O))
                np.testing.assert_allclose(
                    stored.mu.detach().numpy(), model.mu.detach().numpy(), atol=1e-6
                )
                np.testing.assert_allclose(
                    stored.predict_proba(L), model.predict_proba(L), atol=1e-6
                )
                loss = stored.loss_inv_mu() if deps else stored.loss_mu()
                expected = model.loss_inv_mu() if deps else model.loss_mu()
                self.assertAlmostEqual(loss.item(), expected.item(), places=8)

    def test_summed_rows_equal_the_one_hot_product(self):
        rng = np.random.default_rng(4)
        for k, m in ((16, 1), (20, 7), (64, 3)):
            L = torch.from_numpy(rng.integers(0, k + 1, (900, m)).astype(np.int16))
            L[:5] = 0  # rows where every source abstains
            table = torch.randn(m * k, k)
            np.testing.assert_allclose(
                label_model._summed_rows(L, table, m).numpy(),
                (label_model._one_hot(L, k) @ table).numpy(),
                rtol=0,
                atol=1e-5,
            )

    def test_many_classes_match_or_beat_majority_vote(self):
        """k=60 with a sparse O: the default fit (100 small SGD steps, which
        barely move mu when k is large: the objective scales like 1/k**2) is
        as good as majority vote; L-BFGS, run to the optimum, beats it."""
        k, m, n = 60, 8, 8000
        rng = np.random.default_rng(5)
        Y = rng.integers(1, k + 1, n)
        accuracies = np.linspace(0.45, 0.9, m)
        L = np.stack([make_votes(Y, a, 0.5, k, rng) for a in accuracies], axis=1)
        majority = np.mean(MajorityLabelVoter(k=k, seed=0).predict(L) == Y)
        with stored_sparse(256):
            default = LabelModel(k=k, verbose=False, seed=0)
            default.train_model(L)
            optimum = LabelModel(k=k, verbose=False, seed=0)
            optimum.train_model(L, optimizer="lbfgs", n_epochs=300)
        self.assertEqual(default.O.layout, torch.sparse_coo)
        self.assertGreater(np.mean(default.predict(L) == Y), majority - 0.005)
        self.assertGreater(np.mean(optimum.predict(L) == Y), majority + 0.01)

    def test_sparse_O_round_trips_and_damaged_entries_are_refused(self):
        with stored_sparse(1):
            model, L, _ = self._trained(20, 4)
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "many.pth")
            model.save(path)
            loaded = LabelModel.load(path)
            self.assertEqual(loaded.O.layout, torch.sparse_coo)
            self.assertTrue(loaded.O.is_coalesced())
            np.testing.assert_array_equal(loaded.O.to_dense(), model.O.to_dense())
            np.testing.assert_array_equal(
                loaded.predict_proba(L), model.predict_proba(L)
            )
            bundle = torch.load(path, weights_only=True)
            O = bundle["state_dict"]["O"]
            damaged = {}
            indices = O.indices().clone()
            indices[1, 0] = 80
            damaged["outside its shape"] = torch.sparse_coo_tensor(
                indices, O.values(), O.shape, check_invariants=False
            )
            values = O.values().clone()
            values[0] = float("nan")
            damaged["non-finite"] = torch.sparse_coo_tensor(
                O.indices(), values, O.shape, check_invariants=False
            )
            for reason, value in damaged.items():
                with self.subTest(reason=reason):
                    bundle["state_dict"]["O"] = value
                    bad = os.path.join(folder, "bad.pth")
                    torch.save(bundle, bad)
                    with self.assertRaisesRegex(ValueError, f"bad.pth.*{reason}"):
                        LabelModel.load(bad)
            bundle["state_dict"]["O"] = O
            bundle["state_dict"]["mu_init"] = bundle["state_dict"][
                "mu_init"
            ].to_sparse()
            torch.save(bundle, bad)
            with self.assertRaisesRegex(ValueError, "'mu_init'.*must be dense"):
                LabelModel.load(bad)

    def test_a_well_filled_O_stays_dense(self):
        """Beyond _DENSE_O_MAX_COLUMNS, O is stored sparse only while at most
        _SPARSE_O_MAX_FILL of it is non-zero."""
        rng = np.random.default_rng(6)
        L = rng.integers(0, 17, (4000, 30)).astype(np.int16)  # d=480, ~full O
        for fill, layout in ((0.1, torch.strided), (1.0, torch.sparse_coo)):
            with self.subTest(fill=fill):
                with mock.patch.multiple(
                    label_model, _DENSE_O_MAX_COLUMNS=100, _SPARSE_O_MAX_FILL=fill
                ):
                    model = LabelModel(k=16, verbose=False, seed=0)
                    model.train_model(L, n_epochs=2)
                self.assertEqual(model.O.layout, layout)

    def test_dependencies_with_a_sparse_O_respect_the_array_limit(self):
        with stored_sparse(1):
            with mock.patch.object(label_model, "MAX_ARRAY_BYTES", 1000):
                with self.assertRaisesRegex(ValueError, "O .*MAX_ARRAY_BYTES"):
                    self._trained(20, 4, deps=[(0, 1)])


class LabelModelBadInputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        np.random.seed(0)
        cls.data = SingleTaskTreeDepsGenerator(500, 5, k=2)

    def assertBadL(self, L, pattern):
        with self.assertRaisesRegex(ValueError, pattern):
            LabelModel(k=2, verbose=False).train_model(L)

    def test_bad_label_matrices(self):
        self.assertBadL(np.array([[0, 1], [3, 1]]), "larger than k=2")
        self.assertBadL(np.array([[0, -1], [1, 1]]), "-1 is an abstain")
        self.assertBadL(sparse.csr_matrix(np.array([[0, -1], [1, 1]])), "negative")
        self.assertBadL(np.array([[0.5, 1.0]]), "fractional")
        self.assertBadL(np.array([[np.nan, 1.0]]), "NaN")
        self.assertBadL(np.zeros((0, 3)), "at least one row")
        self.assertBadL(np.array([1, 2, 0]), "2-D")
        self.assertBadL([[1, 2], [1]], "2-D")
        self.assertBadL(np.array([["a", "b"]]), "numeric")
        self.assertBadL(None, "None")

    def test_bad_arguments(self):
        L = self.data.L
        cases = [
            (dict(class_balance=[0.5, 0.6]), "sum to 1"),
            (dict(class_balance=[1.0]), "length k=2"),
            (dict(Y_dev=[1, 3]), "Y_dev"),
            (dict(Y_dev=[0, 0]), "Y_dev"),
            (dict(deps=[(0, 12)]), "source 12"),
            (dict(deps=[(1, 1)]), "self-loop"),
            (dict(deps=[(0, 1, 2)]), "pairs"),
            (dict(prec_init=np.ones(3)), "prec_init"),
            (dict(prec_init=1.5), "prec_init"),
            (dict(l2=np.ones(7)), "l2"),
            (dict(l2=-1.0), "l2"),
            (dict(optimizer="newton"), "optimizer"),
            (dict(lr_scheduler="exponential"), "lr_scheduler"),
            (dict(n_epochs=-1), "n_epochs"),
        ]
        for kwargs, pattern in cases:
            with self.subTest(kwargs=kwargs):
                with self.assertRaisesRegex(ValueError, pattern):
                    LabelModel(k=2, verbose=False).train_model(L, **kwargs)

    def test_bad_constructor_arguments(self):
        with self.assertWarnsRegex(UserWarning, "LabelModel .*'foo'.*no effect"):
            LabelModel(k=2, foo=1)
        with self.assertRaisesRegex(ValueError, "k"):
            LabelModel(k=1)
        with self.assertRaisesRegex(ValueError, "k"):
            LabelModel(k="2")
        with self.assertRaisesRegex(ValueError, "^seed must be an integer"):
            LabelModel(k=2, seed=2**70)
        with self.assertRaisesRegex(ValueError, "^seed must be an integer"):
            LabelModel(k=2, verbose=False).train_model(self.data.L, seed=2**70)
        for seed in (-3, 2**40):  # beyond NumPy's range: reduced mod 2**32
            LabelModel(k=2, verbose=False, seed=seed).train_model(self.data.L)

    def test_predict_errors(self):
        model = LabelModel(k=2, verbose=False)
        with self.assertRaisesRegex(ValueError, "not trained"):
            model.predict_proba(self.data.L)
        model.train_model(self.data.L)
        with self.assertRaisesRegex(ValueError, "trained on m=5"):
            model.predict_proba(self.data.L[:, :4])
        with self.assertRaisesRegex(ValueError, "larger than k=2"):
            model.predict_proba(np.full((2, 5), 3))
        with self.assertRaisesRegex(ValueError, "break_ties"):
            model.predict(self.data.L, break_ties="coin")
        with self.assertRaisesRegex(ValueError, "metric"):
            model.score((self.data.L, self.data.Y), metric="nope", verbose=False)
        with self.assertRaisesRegex(ValueError, "same number of items"):
            model.score((self.data.L, self.data.Y[:10]), verbose=False)


class LabelModelPersistenceTest(unittest.TestCase):
    def _round_trip(self, model):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "label_model.pth")
            model.save(path)
            return LabelModel.load(path)

    def test_save_and_load(self):
        np.random.seed(0)
        data = SingleTaskTreeDepsGenerator(2000, 6, k=3)
        model = LabelModel(k=3, verbose=False, seed=11)
        model.train_model(data.L)
        loaded = self._round_trip(model)
        self.assertEqual(loaded.seed, 11)
        self.assertEqual((loaded.m, loaded.k), (6, 3))
        np.testing.assert_array_equal(
            loaded.predict_proba(data.L), model.predict_proba(data.L)
        )
        np.testing.assert_array_equal(
            loaded.get_conditional_probs(), model.get_conditional_probs()
        )

    def test_loads_files_with_float32_statistics(self):
        """Files written when the statistics were float32 buffers load into
        float64 buffers and predict exactly as the saved model."""
        np.random.seed(4)
        data = SingleTaskTreeDepsGenerator(3000, 6, k=2, edge_prob=1.0)
        for deps in ([], data.E):
            model = LabelModel(k=2, verbose=False, seed=3)
            model.train_model(data.L, deps=deps, class_balance=[0.3, 0.7])
            with tempfile.TemporaryDirectory() as folder:
                path = os.path.join(folder, "current.pth")
                model.save(path)
                bundle = torch.load(path, weights_only=True)
                for name in ("O", "O_inv", "mu_init", "Q", "P"):
                    if name in bundle["state_dict"]:
                        self.assertEqual(
                            bundle["state_dict"][name].dtype, torch.float64
                        )
                        bundle["state_dict"][name] = bundle["state_dict"][name].float()
                old_path = os.path.join(folder, "float32.pth")
                torch.save(bundle, old_path)
                loaded = LabelModel.load(old_path)
            with self.subTest(deps=bool(deps)):
                self.assertEqual(loaded.inv_form, bool(deps))
                for name in ("O", "mu_init", "P") + (("O_inv", "Q") if deps else ()):
                    self.assertEqual(getattr(loaded, name).dtype, torch.float64)
                    np.testing.assert_allclose(
                        getattr(loaded, name).numpy(),
                        getattr(model, name).numpy(),
                        rtol=1e-6,
                        atol=1e-7,
                    )
                np.testing.assert_array_equal(loaded.p, [0.3, 0.7])
                np.testing.assert_array_equal(
                    loaded.predict_proba(data.L), model.predict_proba(data.L)
                )
                self.assertAlmostEqual(
                    loaded.loss_mu().item(), model.loss_mu().item(), places=6
                )

    def test_save_and_load_with_deps(self):
        np.random.seed(1)
        data = SingleTaskTreeDepsGenerator(3000, 6, k=2, edge_prob=1.0)
        model = LabelModel(k=2, verbose=False, seed=2)
        model.train_model(data.L, deps=data.E)
        loaded = self._round_trip(model)
        self.assertTrue(loaded.inv_form)
        np.testing.assert_allclose(
            loaded.predict_proba(data.L), model.predict_proba(data.L)
        )

    def test_load_refuses_code_execution(self):
        class Exploit:
            def __reduce__(self):
                return (os.system, ("echo pwned > /dev/null",))

        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "evil.pth")
            with open(path, "wb") as f:
                pickle.dump({"format": "snorkel-metal/1", "payload": Exploit()}, f)
            with self.assertRaisesRegex(ValueError, "evil.pth"):
                LabelModel.load(path)


class LabelModelInputFormsTest(unittest.TestCase):
    """Every documented form of L gives exactly the int8 form's fit and
    posteriors, on any number of threads; bad values raise in every form."""

    @classmethod
    def setUpClass(cls):
        rng = np.random.default_rng(5)
        n = 2 * label_model._CHUNK_ROWS + 1234  # three chunks per pass
        Y = rng.integers(1, 4, n)
        accuracy = [0.9, 0.8, 0.75, 0.7, 0.65, 0.6]
        votes = [make_votes(Y, a, 0.3, 3, rng) for a in accuracy]
        cls.L = np.stack(votes, axis=1).astype(np.int8)

    def forms(self):
        L = self.L
        return [
            ("int64", L.astype(np.int64)),
            ("int32", L.astype(np.int32)),
            ("float64", L.astype(np.float64)),
            ("float32 Fortran order", np.asfortranarray(L.astype(np.float32))),
            ("csr", sparse.csr_matrix(L.astype(np.float64))),
            ("csc", sparse.csc_matrix(L)),
            ("coo", sparse.coo_matrix(L.astype(np.int64))),
            ("torch int64", torch.from_numpy(L.astype(np.int64))),
            ("torch sparse", torch.from_numpy(L).to_sparse()),
        ]

    def fit(self, L, **kwargs):
        model = LabelModel(k=3, verbose=False)
        model.train_model(L, seed=1, **kwargs)
        return model, model.predict_proba(L)

    def assertSameFit(self, fitted, reference):
        (model, probs), (ref_model, ref_probs) = fitted, reference
        self.assertTrue(torch.equal(model.mu, ref_model.mu))
        self.assertTrue(torch.equal(model.O, ref_model.O))
        np.testing.assert_array_equal(probs, ref_probs)

    def test_every_form_gives_the_int8_result(self):
        reference = self.fit(self.L)
        for name, L in self.forms():
            with self.subTest(form=name):
                self.assertSameFit(self.fit(L), reference)

    def test_every_form_gives_the_int8_result_with_deps(self):
        reference = self.fit(self.L, deps=[(0, 1), (1, 2)])
        for name, L in self.forms()[::2]:
            with self.subTest(form=name):
                self.assertSameFit(self.fit(L, deps=[(0, 1), (1, 2)]), reference)

    def test_threads_do_not_change_the_result_and_are_restored(self):
        threads = torch.get_num_threads()
        self.addCleanup(torch.set_num_threads, threads)
        results = {}
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            model = LabelModel(k=3, verbose=False)
            self.assertEqual(model._pass_workers(self.L), count)
            results[count] = self.fit(self.L)
            self.assertEqual(torch.get_num_threads(), count)
        self.assertSameFit(results[2], results[1])
        self.assertSameFit(results[3], results[1])

    def test_chunks_are_shared_among_workers(self):
        """Each chunk goes to exactly one worker, with its first row; torch runs
        on one thread inside the workers."""
        threads = torch.get_num_threads()
        self.addCleanup(torch.set_num_threads, threads)
        torch.set_num_threads(2)
        chunks = [np.full((size, 2), i) for i, size in enumerate([5, 5, 5, 2])]

        def drain(shared):
            return [
                (start, int(c[0, 0]), torch.get_num_threads()) for start, c in shared
            ]

        results = label_model._share_chunks(drain, iter(chunks), len, workers=3)
        seen = sorted(item for part in results for item in part)
        self.assertEqual(seen, [(0, 0, 1), (5, 1, 1), (10, 2, 1), (15, 3, 1)])
        self.assertEqual(torch.get_num_threads(), 2)

    def test_sparse_L_is_densified_one_chunk_at_a_time(self):
        with recorded_densifications() as rows:
            self.fit(sparse.csc_matrix(self.L))
        self.assertEqual(len(rows), 6)  # three chunks for O, three to predict
        self.assertLessEqual(max(rows), label_model._CHUNK_ROWS)

    def test_bad_values_raise_in_every_form(self):
        trained, _ = self.fit(self.L)
        for bad, message in ((4, "larger than k=3"), (-1, "negative"), (2.5, "")):
            L = self.L.astype(np.float64)
            L[-7, 2] = bad
            message = message or "fractional value 2.5"
            for name, value in bad_forms(L):
                with self.subTest(bad=bad, form=name):
                    with self.assertRaisesRegex(ValueError, f"^L must .*{message}"):
                        LabelModel(k=3, verbose=False).train_model(value)
                    with self.assertRaisesRegex(ValueError, f"^L must .*{message}"):
                        trained.predict_proba(value)


class LabelModelFileTestCase(BundleChecks, unittest.TestCase):
    """``LabelModel.load`` on damaged, malicious and foreign files (the checks
    of ``tests.test_classifier.BundleChecks``)."""

    KIND = "label_model"
    WRONG_KIND = {
        "classifier": "holds a model of class FixedVoter, not LabelModel",
        "end_model": "holds a model of class EndModel, not LabelModel",
        "mmtl": "holds a bare state dict, not a model file",
        "checkpoint": "is a training checkpoint, not a model file",
    }

    def make_model(self):
        L = np.random.RandomState(0).randint(0, 3, (200, 4))
        model = LabelModel(k=2, verbose=False, seed=1)
        model.train_model(L, n_epochs=5)
        return model

    def load(self, path):
        return LabelModel.load(path)

    def damaged_contents(self, bundle):
        def with_extra(**changes):
            extra = dict(bundle["extra_state"], **changes)
            return dict(bundle, extra_state=extra)

        def with_tensors(**changes):
            state = dict(bundle["state_dict"])
            for name, value in changes.items():
                if value is None:
                    del state[name]
                else:
                    state[name] = value
            return dict(bundle, state_dict=state)

        no_m = dict(bundle["extra_state"])
        del no_m["m"]
        return [
            ("no source count", dict(bundle, extra_state=no_m)),
            ("class balance not numbers", with_extra(p="abc")),
            ("dependencies not a list", with_extra(deps=5)),
            ("k not a number", dict(bundle, init_kwargs={"k": "two"})),
            ("no mu", with_tensors(mu=None)),
            ("mu of the wrong shape", with_tensors(mu=torch.zeros(3, 2))),
            ("no overlap matrix", with_tensors(O=None)),
            ("class balance of the wrong shape", with_tensors(P=torch.eye(3))),
        ]

    def test_baseline_files_load(self):
        path = os.path.join(self.dir, "voter.pth")
        MajorityLabelVoter(k=2, verbose=False).save(path)
        self.assertIsInstance(LabelModel.load(path), MajorityLabelVoter)


if __name__ == "__main__":
    unittest.main()
