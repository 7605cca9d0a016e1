import copy
import os
import tempfile
import unittest

import numpy as np
import scipy.sparse as sparse
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from metal.end_model import EndModel, IdentityModule, LogisticRegression
from metal.metrics import METRICS
from tests.test_classifier import BundleChecks


def make_data():
    """The spec's fixture: numpy seed 1, n=2000, X ~ U[-1, 1]^2,
    Y = 1 + [x0 > x1 + 0.25], split 1000/500/500."""
    np.random.seed(1)
    n = 2000
    X = np.random.random((n, 2)) * 2 - 1
    Y = (X[:, 0] > X[:, 1] + 0.25).astype(int) + 1
    X = torch.tensor(X, dtype=torch.float)
    Y = torch.tensor(Y, dtype=torch.long)
    Xs = [X[:1000], X[1000:1500], X[1500:]]
    Ys = [Y[:1000], Y[1000:1500], Y[1500:]]
    return Xs, Ys


class EndModelTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Tiny models: one thread avoids OpenMP contention on busy machines.
        cls.threads = torch.get_num_threads()
        torch.set_num_threads(1)
        cls.Xs, cls.Ys = make_data()
        cls.tmp = tempfile.TemporaryDirectory()
        cls.train = (cls.Xs[0], cls.Ys[0])
        cls.valid = (cls.Xs[1], cls.Ys[1])
        cls.test = (cls.Xs[2], cls.Ys[2])

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()
        torch.set_num_threads(cls.threads)

    def kwargs(self, **extra):
        """Quiet models whose checkpoints go to a temporary folder."""
        base = {"verbose": False, "checkpoint_dir": self.tmp.name}
        base.update(extra)
        return base

    def test_singletask(self):
        em = EndModel(
            seed=1,
            layer_out_dims=[2, 10, 2],
            input_batchnorm=False,
            middle_batchnorm=False,
            **self.kwargs(),
        )
        em.train_model(self.train, valid_data=self.valid, n_epochs=5)
        self.assertGreater(em.score(self.test, verbose=False), 0.95)

    def test_singletask_extras(self):
        em = EndModel(
            seed=1,
            layer_out_dims=[2, 10, 2],
            input_batchnorm=True,
            middle_batchnorm=True,
            middle_dropout=0.01,
            **self.kwargs(),
        )
        em.train_model(self.train, valid_data=self.valid, n_epochs=5)
        self.assertGreater(em.score(self.test, verbose=False), 0.95)
        self.assertFalse(em.training)

    def test_custom_modules(self):
        """MeTaL v0.5's test as written: ``layer_out_dims`` ends in 8 while the
        head emits 2 logits; the model warns and uses k=2, as MeTaL did."""
        input_module = nn.Sequential(IdentityModule(), nn.Linear(2, 10))
        middle_modules = [nn.Linear(10, 8), IdentityModule()]
        head_module = nn.Sequential(nn.Linear(8, 2), IdentityModule())
        with self.assertWarnsRegex(UserWarning, "head emits 2 logits.*k=2"):
            em = EndModel(
                seed=1,
                input_module=input_module,
                middle_modules=middle_modules,
                head_module=head_module,
                layer_out_dims=[10, 8, 8],
                input_batchnorm=False,
                middle_batchnorm=False,
                middle_dropout=0.0,
                **self.kwargs(),
            )
        self.assertEqual(em.k, 2)
        em.train_model(
            self.train,
            valid_data=self.valid,
            n_epochs=5,
            verbose=False,
            show_plots=False,
        )
        self.assertGreater(em.score(self.test, verbose=False), 0.95)
        self.assertEqual(em.predict_proba(self.test[0]).shape, (500, 2))
        self.assertLessEqual(set(em.predict(self.test[0]).tolist()), {1, 2})

    def test_head_wider_than_k(self):
        with self.assertRaisesRegex(ValueError, "head emits 3 logits but k=2"):
            EndModel(
                layer_out_dims=[10, 8, 2],
                input_module=nn.Linear(2, 10),
                head_module=nn.Sequential(nn.Linear(8, 3), IdentityModule()),
                **self.kwargs(),
            )

    def test_v05_keyword_arguments(self):
        """MeTaL v0.5 code passes ``batchnorm``, ``dropout`` and ``k``, which
        are not config keys: each is kept with a warning and changes nothing."""
        with self.assertWarns(UserWarning) as caught:
            em = EndModel(
                [2, 10, 2], batchnorm=True, dropout=0.1, seed=1, **self.kwargs()
            )
        messages = [str(w.message) for w in caught.warnings]
        self.assertEqual(len(messages), 2, messages)
        self.assertIn("did you mean 'middle_batchnorm'?", messages[0])
        self.assertIn("did you mean 'middle_dropout'?", messages[1])
        self.assertEqual(em.config["batchnorm"], True)  # inserted, as in MeTaL
        self.assertFalse(em.config["middle_layer_config"]["middle_batchnorm"])
        self.assertEqual(em.config["middle_layer_config"]["middle_dropout"], 0.0)
        em.train_model(self.train, valid_data=self.valid, n_epochs=5)
        self.assertGreater(em.score(self.test, verbose=False), 0.95)
        with self.assertWarnsRegex(UserWarning, "'k'.*no effect"):
            em = EndModel(layer_out_dims=[2, 10, 8], k=8, **self.kwargs())
        self.assertEqual(em.k, 8)
        with self.assertWarnsRegex(UserWarning, "'batchnorm'"):
            em.train_model(self.train, n_epochs=1, batchnorm=False)
        self.assertEqual(em.config["train_config"]["n_epochs"], 1)

    def test_head_width_mismatch_found_at_training(self):
        class Opaque(nn.Module):
            def __init__(self):
                super().__init__()
                self.linear = nn.Linear(10, 3)

            def forward(self, x):
                return self.linear(x)

        em = EndModel([2, 10, 2], head_module=Opaque(), **self.kwargs())
        with self.assertRaisesRegex(ValueError, "k=2"):
            em.train_model(self.train, n_epochs=1)
        with self.assertRaisesRegex(ValueError, "k=2"):
            em.predict_proba(self.Xs[2])

    def test_scoring(self):
        em = EndModel(seed=1, layer_out_dims=[2, 10, 2], **self.kwargs())
        em.train_model(self.train, valid_data=self.valid, n_epochs=5)
        metrics = list(METRICS.keys())
        scores = em.score(self.test, metric=metrics, verbose=False)
        self.assertIsInstance(scores, list)
        self.assertEqual(len(scores), len(metrics))
        for metric, score in zip(metrics, scores):
            self.assertGreater(score, 0.95, metric)

    def test_determinism(self):
        em = EndModel(seed=123, layer_out_dims=[2, 10, 2], **self.kwargs())
        em.train_model(self.train, valid_data=self.valid, n_epochs=1)
        score_1 = em.score(self.test, verbose=False)
        score_2 = em.score(self.test, verbose=False)
        self.assertEqual(score_1, score_2)
        em_2 = EndModel(seed=123, layer_out_dims=[2, 10, 2], **self.kwargs())
        em_2.train_model(self.train, valid_data=self.valid, n_epochs=1)
        self.assertEqual(score_1, em_2.score(self.test, verbose=False))
        for a, b in zip(em.parameters(), em_2.parameters()):
            self.assertTrue(torch.equal(a, b))

    def test_train_model_seed_reseeds(self):
        em = EndModel([2, 10, 2], middle_dropout=0.2, **self.kwargs())
        em_2 = EndModel([2, 10, 2], middle_dropout=0.2, **self.kwargs())
        em_2.load_state_dict(em.state_dict())
        em.train_model(self.train, n_epochs=1, seed=5)
        em_2.train_model(self.train, n_epochs=1, seed=5)
        for a, b in zip(em.parameters(), em_2.parameters()):
            self.assertTrue(torch.equal(a, b))

    def test_save_and_load(self):
        em = EndModel(seed=1337, layer_out_dims=[2, 10, 2], **self.kwargs())
        em.train_model(self.train, valid_data=self.valid, n_epochs=3)
        score = em.score(self.test, verbose=False)
        path = os.path.join(self.tmp.name, "test_save_model.pkl")
        em.save(path)
        em_2 = EndModel.load(path)
        self.assertEqual(em.seed, em_2.seed)
        self.assertEqual(score, em_2.score(self.test, verbose=False))
        np.testing.assert_array_equal(
            em.predict_proba(self.Xs[2]), em_2.predict_proba(self.Xs[2])
        )
        os.remove(path)

    def test_save_and_load_logreg_and_custom_modules(self):
        lr = LogisticRegression(input_dim=2, output_dim=3, **self.kwargs())
        path = os.path.join(self.tmp.name, "logreg.pth")
        lr.save(path)
        loaded = LogisticRegression.load(path)
        self.assertIsInstance(loaded, LogisticRegression)
        self.assertEqual(loaded.k, 3)
        np.testing.assert_array_equal(
            lr.predict_proba(self.Xs[2]), loaded.predict_proba(self.Xs[2])
        )
        custom = EndModel([2, 2], head_module=nn.Linear(2, 2), **self.kwargs())
        custom.save(path)
        with self.assertRaisesRegex(ValueError, "model="):
            EndModel.load(path)
        fresh = EndModel([2, 2], head_module=nn.Linear(2, 2), **self.kwargs())
        loaded = EndModel.load(path, model=fresh)
        np.testing.assert_array_equal(
            custom.predict_proba(self.Xs[2]), loaded.predict_proba(self.Xs[2])
        )

    def test_network_naming(self):
        em = EndModel([2, 10, 2], **self.kwargs())
        keys = set(em.state_dict())
        self.assertTrue(
            {"network.1.0.weight", "network.1.0.bias", "network.2.weight"} <= keys
        )
        lr = LogisticRegression(input_dim=2, **self.kwargs())
        self.assertIn("network.1.weight", lr.state_dict())
        weighted = EndModel([2, 10, 2], loss_weights=[1, 2], **self.kwargs())
        self.assertIn("criteria.weight", weighted.state_dict())

    def test_layer_assembly(self):
        em = EndModel(
            [2, 10, 10, 2],
            middle_batchnorm=True,
            middle_dropout=0.5,
            middle_relu=True,
            **self.kwargs(),
        )
        first_middle = em.network[1]
        self.assertIsInstance(em.network[0], IdentityModule)
        self.assertEqual(
            [type(m) for m in first_middle],
            [nn.Linear, nn.ReLU, nn.BatchNorm1d, nn.Dropout],
        )
        self.assertEqual(len(em.network), 4)
        skip = EndModel([2, 10, 3], skip_head=True, **self.kwargs())
        self.assertEqual(len(skip.network), 2)
        single = EndModel([2], skip_head=True, **self.kwargs())
        self.assertIsInstance(single.network, IdentityModule)

    def test_fresh_model_predicts_in_eval_mode(self):
        em = EndModel([2, 10, 2], middle_dropout=0.9, **self.kwargs())
        self.assertFalse(em.training)
        np.testing.assert_array_equal(
            em.predict_proba(self.Xs[2]), em.predict_proba(self.Xs[2])
        )

    def test_input_forms(self):
        """numpy (float64), scipy.sparse, lists, Datasets and DataLoaders all
        train and predict; hard, [n, 1] and soft labels are accepted."""
        X, Y = self.train
        X_np, Y_np = X.numpy().astype(np.float64), Y.numpy()
        soft = np.eye(2)[Y_np - 1] * 0.9 + 0.05
        forms = [
            (X_np, Y_np),
            (sparse.csr_matrix(X_np), Y_np.reshape(-1, 1)),
            (X_np.tolist(), soft),
            TensorDataset(X, Y),
            DataLoader(TensorDataset(X, torch.tensor(soft)), batch_size=64),
        ]
        for data in forms:
            em = EndModel([2, 10, 2], seed=1, **self.kwargs())
            em.train_model(data, valid_data=self.valid, n_epochs=3)
            self.assertGreater(em.score(self.test, verbose=False), 0.9, type(data))
        Xt = self.Xs[2]
        expected = em.predict_proba(Xt)
        self.assertEqual(expected.shape, (500, 2))
        np.testing.assert_allclose(
            em.predict_proba(Xt.numpy().astype(np.float64)), expected
        )
        np.testing.assert_allclose(
            em.predict_proba(sparse.csr_matrix(Xt.numpy())), expected
        )
        self.assertGreater(
            em.score(
                (sparse.csr_matrix(Xt.numpy()), self.Ys[2].numpy()), verbose=False
            ),
            0.9,
        )

    def test_predict_proba_in_chunks(self):
        from metal.end_model import end_model as em_module

        em = EndModel([2, 10, 2], **self.kwargs())
        whole = em.predict_proba(self.Xs[0])
        original = em_module.PREDICT_BATCH_SIZE
        em_module.PREDICT_BATCH_SIZE = 7
        try:
            chunked = em.predict_proba(self.Xs[0])
        finally:
            em_module.PREDICT_BATCH_SIZE = original
        np.testing.assert_allclose(whole, chunked, rtol=1e-6)
        self.assertAlmostEqual(float(whole.sum(axis=1).mean()), 1.0, places=5)

    def test_train_without_validation_writes_no_checkpoint(self):
        with tempfile.TemporaryDirectory() as folder:
            em = EndModel([2, 10, 2], verbose=False, checkpoint_dir=folder + "/ckpt")
            em.train_model(self.train, n_epochs=2)
            self.assertFalse(os.path.exists(folder + "/ckpt"))
        self.assertIsNone(em.checkpointer)

    def test_verbose_false_prints_nothing(self):
        import contextlib
        import io

        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            em = EndModel([2, 10, 2], **self.kwargs())
            em.train_model(self.train, valid_data=self.valid, n_epochs=2)
            em.score(self.test, verbose=False)
        self.assertEqual(out.getvalue(), "")

    def test_verbose_prints_logs_and_final_score(self):
        import contextlib
        import io

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            em = EndModel([2, 10, 2], verbose=True, checkpoint_dir=self.tmp.name)
            em.train_model(self.train, valid_data=self.valid, n_epochs=2)
        text = out.getvalue()
        self.assertIn("[1 epo]: TRAIN:[loss=", text)
        self.assertIn("VALID:[accuracy=", text)
        self.assertIn("Finished Training", text)
        self.assertIn("Accuracy:", text)

    def test_reset(self):
        em = EndModel([2, 10, 2], seed=1, **self.kwargs())
        before = em.network[2].weight.detach().clone()
        em.reset()
        self.assertFalse(torch.equal(before, em.network[2].weight))

    def test_update_config(self):
        em = EndModel([2, 10, 2], **self.kwargs())
        em.update_config({"n_epochs": 3, "train_config": {"l2": 0.5}})
        self.assertEqual(em.config["train_config"]["n_epochs"], 3)
        self.assertEqual(em.config["train_config"]["l2"], 0.5)
        with self.assertWarnsRegex(UserWarning, "'n_epoch'.*'n_epochs'"):
            em.update_config({"n_epoch": 3})
        self.assertNotIn("n_epoch", em.config)
        self.assertEqual(em.config["train_config"]["n_epochs"], 3)

    def test_default_num_workers_is_zero(self):
        em = EndModel([2, 10, 2], **self.kwargs())
        config = em.config["train_config"]["data_loader_config"]
        self.assertEqual(config["num_workers"], 0)


class EndModelBadInputTestCase(unittest.TestCase):
    """Every bad input raises ValueError naming the problem."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.em = EndModel([2, 4, 2], verbose=False, checkpoint_dir=self.tmp.name)
        self.X = torch.rand(20, 2)
        self.Y = torch.randint(1, 3, (20,))

    def tearDown(self):
        self.tmp.cleanup()

    def test_non_finite_features(self):
        X = self.X.clone()
        X[5, 1] = float("nan")
        self.assertBad(
            r"train_data X has NaN or infinite values \(first in row 5\)", (X, self.Y)
        )
        X_np = self.X.numpy().astype(np.float64)
        X_np[7, 0] = np.inf
        self.assertBad("train_data X .*row 7", (X_np, self.Y))
        self.assertBad("train_data X .*row 7", (sparse.csr_matrix(X_np), self.Y))
        self.assertBad(
            r"valid_data X .*row 5", (self.X, self.Y), valid_data=(X, self.Y)
        )
        self.em.train_model((self.X, self.Y), n_epochs=1)
        with self.assertRaisesRegex(ValueError, r"^X has NaN .*row 5"):
            self.em.predict_proba(X)
        with self.assertRaisesRegex(ValueError, r"^X has NaN .*row 5"):
            self.em.predict(X)

    def test_feature_width(self):
        wide = torch.rand(20, 3)
        message = r"must have 2 features per item .* found shape \(20, 3\)"
        self.assertBad("train_data X " + message, (wide, self.Y))
        self.assertBad(
            "valid_data X " + message, (self.X, self.Y), valid_data=(wide, self.Y)
        )
        with self.assertRaisesRegex(ValueError, "^X " + message):
            self.em.predict_proba(wide)
        with self.assertRaisesRegex(ValueError, "features per item"):
            self.em.predict_proba(torch.rand(20))  # one feature vector, not a batch
        loader = DataLoader(TensorDataset(wide, self.Y))
        self.assertBad(r"train_data \(its first item\) must have 2 features", loader)
        self.assertBad(
            r"valid_data \(its first item\)", (self.X, self.Y), valid_data=loader
        )
        # Inputs the first layer does not describe (token ids) are not checked.
        em = EndModel([3, 2], input_module=nn.Embedding(5, 3), verbose=False)
        self.assertEqual(em.predict_proba(torch.tensor([1, 2, 4])).shape, (3, 2))

    def test_empty_training_data(self):
        message = "train_data.* must have at least one item"
        self.assertBad(message, (torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)))
        self.assertBad(message, TensorDataset(torch.zeros(0, 2), torch.zeros(0)))
        self.assertBad(
            message, DataLoader(TensorDataset(torch.zeros(0, 2), torch.zeros(0)))
        )
        # Predicting on no items is fine.
        self.assertEqual(self.em.predict_proba(torch.zeros(0, 2)).shape, (0, 2))

    def test_layer_out_dims_must_be_positive_ints(self):
        for bad in ([4, 2.5, 2], "42", [4, True, 2], [], [4, 0, 2], [4, -2, 2], None):
            with self.subTest(layer_out_dims=bad):
                with self.assertRaisesRegex(ValueError, "^layer_out_dims must be"):
                    EndModel(bad, verbose=False)
        em = EndModel(np.array([2, 3, 2]), verbose=False)
        self.assertEqual(em.config["layer_out_dims"], [2, 3, 2])

    def test_seed_out_of_range(self):
        with self.assertRaisesRegex(ValueError, "^seed must be an integer"):
            EndModel([2, 2], seed=2**70, verbose=False)
        self.assertBad("^seed must be an integer", (self.X, self.Y), seed=2**70)

    def assertBad(self, pattern, *args, **kwargs):
        with self.assertRaisesRegex(ValueError, pattern):
            self.em.train_model(*args, n_epochs=1, **kwargs)

    def test_lengths(self):
        self.assertBad("same number of items", (self.X, self.Y[:10]))
        self.assertBad(
            "same number of items", (self.X, self.Y), valid_data=(self.X, self.Y[:5])
        )

    def test_hard_labels_outside_range(self):
        self.assertBad("1..2", (self.X, torch.zeros(20, dtype=torch.long)))
        self.assertBad("1..2", (self.X, torch.full((20,), 3)))
        self.assertBad("0..2", (self.X, self.Y), valid_data=(self.X, self.Y + 5))

    def test_probabilistic_labels(self):
        self.assertBad("sum to 1", (self.X, torch.full((20, 2), 0.7)))
        self.assertBad("k=2 columns", (self.X, torch.full((20, 3), 1 / 3)))
        self.assertBad("non-negative", (self.X, torch.tensor([[1.5, -0.5]] * 20)))

    def test_unknown_names(self):
        self.assertBad("optimizer", (self.X, self.Y), optimizer="adagrad")
        self.assertBad("lr scheduler", (self.X, self.Y), lr_scheduler="cosine")
        self.assertBad("metric", (self.X, self.Y), log_valid_metrics=["acc"])
        self.assertBad("validation_metric", (self.X, self.Y), validation_metric="acc")
        self.assertBad("log_unit", (self.X, self.Y), log_unit="minutes")
        self.assertBad("writer", (self.X, self.Y), writer="csv")

    def test_bad_values_of_known_keys_still_raise(self):
        with self.assertRaisesRegex(ValueError, "middle_dropout"):
            EndModel([2, 4, 2], middle_dropout=1.5)
        self.assertBad("lr", (self.X, self.Y), lr=-1.0)

    def test_bad_architecture_settings(self):
        with self.assertRaisesRegex(ValueError, "layer_out_dims"):
            EndModel([2])
        with self.assertRaisesRegex(ValueError, "layer_out_dims"):
            EndModel([2, 0, 2])
        with self.assertRaisesRegex(ValueError, "loss_weights"):
            EndModel([2, 2], loss_weights=[1, 2, 3])
        with self.assertRaisesRegex(ValueError, "loss_fn_reduction"):
            EndModel([2, 2], loss_fn_reduction="max")

    def test_bad_data_container(self):
        self.assertBad("train_data", "not data")
        self.assertBad("pair", (self.X, self.Y, self.Y))


class EndModelFileTestCase(BundleChecks, unittest.TestCase):
    """``EndModel.load`` on damaged, malicious and foreign files (the checks
    of ``tests.test_classifier.BundleChecks``)."""

    KIND = "end_model"
    WRONG_KIND = {
        "classifier": "holds a model of class FixedVoter, not EndModel",
        "label_model": "holds a model of class LabelModel, not EndModel",
        "mmtl": "holds a bare state dict, not a model file",
        "checkpoint": "is a training checkpoint, not a model file",
    }

    def make_model(self):
        return EndModel([2, 3, 2], seed=1, verbose=False)

    def load(self, path):
        return EndModel.load(path)

    def damaged_contents(self, bundle):
        reshaped = dict(bundle["state_dict"])
        reshaped["network.2.weight"] = torch.zeros(5, 5)
        renamed = dict(bundle["state_dict"])
        renamed["network.9.weight"] = renamed.pop("network.2.weight")
        return [
            ("weight of another shape", dict(bundle, state_dict=reshaped)),
            ("weight of another name", dict(bundle, state_dict=renamed)),
            ("unknown weight", dict(bundle, state_dict={"w": torch.ones(1)})),
            (
                "impossible layer sizes",
                dict(bundle, init_kwargs={"layer_out_dims": [2, -1]}),
            ),
        ]

    def test_given_model_that_does_not_fit(self):
        other = EndModel([2, 5, 2], verbose=False)
        with self.assertRaises(ValueError) as ctx:
            EndModel.load(self.good, model=other)
        message = str(ctx.exception)
        self.assertIn(repr(self.good), message)
        self.assertIn("does not fit the given EndModel", message)

    def test_given_model_is_untouched_when_the_file_does_not_fit(self):
        other = EndModel([2, 5, 2], verbose=False, seed=3, middle_dropout=0.25)
        config = copy.deepcopy(other.config)
        weights = {k: v.clone() for k, v in other.state_dict().items()}
        with self.assertRaises(ValueError):
            EndModel.load(self.good, model=other)
        self.assertEqual(other.config, config)
        for name, value in other.state_dict().items():
            self.assertTrue(torch.equal(value, weights[name]), name)

    def test_subclass_files_load(self):
        path = os.path.join(self.dir, "logreg.pth")
        LogisticRegression(input_dim=2, output_dim=2, verbose=False).save(path)
        self.assertIsInstance(EndModel.load(path), LogisticRegression)
        with self.assertRaises(ValueError) as ctx:
            LogisticRegression.load(self.good)
        self.assertIn(
            "holds a model of class EndModel, not LogisticRegression",
            str(ctx.exception),
        )


if __name__ == "__main__":
    unittest.main()
