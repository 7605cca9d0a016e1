import os
import tempfile
import unittest

import numpy as np
import scipy.sparse as sparse
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from metal.end_model import IdentityModule
from metal.metrics import METRICS
from metal.multitask import (
    MTEndModel,
    MultiXYDataset,
    MultiYDataset,
    TaskGraph,
    TaskHierarchy,
)


def make_data():
    """The spec's fixture: numpy seed 1, n=1200, X ~ U[-1, 1]^2, task 0 label
    1 + [x0 > x1 + 0.5], task 1 label 1 + [x0 > x1 + 0.25] (float arrays),
    split 1000/100/100."""
    np.random.seed(1)
    n = 1200
    X = np.random.random((n, 2)) * 2 - 1
    Y = [
        (X[:, 0] > X[:, 1] + 0.5).astype(float) + 1,
        (X[:, 0] > X[:, 1] + 0.25).astype(float) + 1,
    ]
    X = torch.tensor(X, dtype=torch.float)
    cuts = [(0, 1000), (1000, 1100), (1100, 1200)]
    Xs = [X[a:b] for a, b in cuts]
    Ys = [[Y_t[a:b] for Y_t in Y] for a, b in cuts]
    return Xs, Ys


class MTEndModelTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
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
        base = {"seed": 1, "verbose": False, "checkpoint_dir": self.tmp.name}
        base.update(extra)
        return base

    def split_columns(self, X):
        return [X[:, 0], X[:, 1]]

    # ----------------------------------------------------- the spec's tests
    def test_multitask_top(self):
        em = MTEndModel(
            layer_out_dims=[2, 8, 4], task_graph=TaskGraph([2, 2]), **self.kwargs()
        )
        self.assertEqual(len(em.task_map[2]), em.t)
        em.train_model(self.train, valid_data=self.valid, n_epochs=10)
        self.assertGreater(em.score(self.test, verbose=False), 0.95)

    def test_multitask_custom_attachments(self):
        em = MTEndModel(
            layer_out_dims=[2, 8, 4],
            task_graph=TaskHierarchy([2, 2], [(0, 1)]),
            task_head_layers=[1, 2],
            **self.kwargs(),
        )
        self.assertEqual(em.task_map[1][0], 0)
        self.assertEqual(em.task_map[2][0], 1)
        em.train_model(self.train, valid_data=self.valid, n_epochs=10)
        self.assertGreater(em.score(self.test, verbose=False), 0.95)

    def test_multitask_two_modules(self):
        em = MTEndModel(
            layer_out_dims=[2, 8, 4],
            input_modules=[IdentityModule(), IdentityModule()],
            task_graph=TaskGraph([2, 2]),
            **self.kwargs(),
        )
        train = (self.split_columns(self.Xs[0]), self.Ys[0])
        valid = (self.split_columns(self.Xs[1]), self.Ys[1])
        test = (self.split_columns(self.Xs[2]), self.Ys[2])
        em.train_model(train, valid_data=valid, n_epochs=10)
        self.assertGreater(em.score(test, verbose=False), 0.95)
        # The batch size is counted in items (not tasks), so epochs are logged.
        self.assertEqual(em.logger.example_total, 10 * 1000)
        self.assertEqual(em.logger.log_count, 10)

    def test_multitask_custom_heads(self):
        em = MTEndModel(
            layer_out_dims=[2, 8, 4],
            head_modules=[nn.Linear(8, 2), nn.Linear(4, 2)],
            task_graph=TaskHierarchy([2, 2], [(0, 1)]),
            task_head_layers=[1, 2],
            **self.kwargs(),
        )
        em.train_model(self.train, valid_data=self.valid, n_epochs=10)
        self.assertGreater(em.score(self.test, verbose=False), 0.95)

    def test_scoring(self):
        em = MTEndModel(
            layer_out_dims=[2, 8, 4],
            task_graph=TaskHierarchy([2, 2], [(0, 1)]),
            task_head_layers=[1, 2],
            **self.kwargs(),
        )
        em.train_model(self.train, valid_data=self.valid, n_epochs=3, validation_task=0)
        tc = em.config["train_config"]
        self.assertEqual(tc["validation_scoring_kwargs"], {"validation_task": 0})
        for metric in METRICS:
            scores = em.score(self.test, metric=metric, reduce=None, verbose=False)
            for t in range(2):
                task_score = em.score_task(
                    self.Xs[2], self.Ys[2], t=t, metric=metric, verbose=False
                )
                self.assertEqual(
                    scores[t],
                    em.score(
                        self.test, metric=metric, validation_task=t, verbose=False
                    ),
                    msg=f"{metric}, task {t} (score_task: {task_score})",
                )
                self.assertEqual(scores[t], task_score)

    # --------------------------------------------------------------- fixes
    def test_per_task_input_modules_are_registered_and_trained(self):
        inputs = [nn.Linear(1, 3), nn.Linear(1, 5)]
        em = MTEndModel(
            layer_out_dims=[8, 8, 4],
            input_modules=inputs,
            task_graph=TaskGraph([2, 2]),
            **self.kwargs(),
        )
        self.assertIsInstance(em.input_layer, nn.ModuleList)
        names = list(em.state_dict())
        self.assertIn("input_layer.0.0.weight", names)
        self.assertIn("input_layer.1.0.weight", names)
        params = {id(p) for p in em.parameters()}
        self.assertTrue(all(id(p) in params for m in inputs for p in m.parameters()))
        before = inputs[0].weight.detach().clone()
        X = [[x[:, :1], x[:, 1:]] for x in self.Xs]
        em.train_model((X[0], self.Ys[0]), valid_data=(X[1], self.Ys[1]), n_epochs=5)
        self.assertFalse(torch.equal(before, inputs[0].weight.detach()))
        self.assertGreater(em.score((X[2], self.Ys[2]), verbose=False), 0.9)
        # Per-task outputs [n, 3] and [n, 5] are concatenated to [n, 8].
        self.assertEqual([p.shape for p in em.predict_proba(X[2])], [(100, 2)] * 2)
        em.to(torch.device("cpu"))
        self.assertEqual(em.input_layer[1][0].weight.device.type, "cpu")

    def test_pass_predictions(self):
        em = MTEndModel(
            layer_out_dims=[2, 8, 4],
            task_graph=TaskHierarchy([2, 2], [(0, 1)]),
            task_head_layers=[1, 2],
            pass_predictions=True,
            **self.kwargs(),
        )
        # Task 1's head reads layer 2 (width 4) concatenated with task 0's
        # logits (K_0 = 2).
        self.assertEqual(tuple(em.heads[1].weight.shape), (2, 6))
        self.assertEqual(tuple(em.heads[0].weight.shape), (2, 8))
        logits = em(self.Xs[2])
        self.assertEqual([tuple(x.shape) for x in logits], [(100, 2), (100, 2)])
        em.train_model(self.train, valid_data=self.valid, n_epochs=10)
        self.assertGreater(em.score(self.test, verbose=False), 0.95)

    def test_pass_predictions_feeds_parent_logits(self):
        em = MTEndModel(
            layer_out_dims=[2, 3],
            task_graph=TaskHierarchy([2, 2], [(0, 1)]),
            task_head_layers=[0, 1],
            pass_predictions=True,
            **self.kwargs(),
        )
        x = self.Xs[2][:5]
        parent, child = em(x)
        hidden = em.middle_layers[0](x)
        expected = em.heads[1](torch.cat([hidden, em.heads[0](x)], dim=1))
        self.assertTrue(torch.allclose(child, expected))
        self.assertTrue(torch.allclose(parent, em.heads[0](x)))

    def test_single_layer_is_multitask_logistic_regression(self):
        em = MTEndModel(layer_out_dims=[2], K=[2, 2], **self.kwargs())
        self.assertEqual(len(em.middle_layers), 0)
        self.assertEqual(em.task_map[0], [0, 1])
        em.train_model(self.train, valid_data=self.valid, n_epochs=10, lr=0.1)
        self.assertGreater(em.score(self.test, verbose=False), 0.95)

    def test_hard_labels_through_a_data_loader(self):
        """Labels from a loader are used as given by the batch: hard labels are
        converted per batch."""
        Y = [torch.tensor(Y_t).long() for Y_t in self.Ys[0]]
        loader = DataLoader(MultiYDataset(self.Xs[0], Y), batch_size=32, shuffle=True)
        em = MTEndModel(layer_out_dims=[2, 8, 4], K=[2, 2], **self.kwargs())
        em.train_model(loader, valid_data=self.valid, n_epochs=5)
        self.assertGreater(em.score(self.test, verbose=False), 0.95)
        test_loader = DataLoader(MultiYDataset(*self.test), batch_size=7)
        self.assertEqual(
            em.score(test_loader, verbose=False, break_ties="abstain"),
            em.score(self.test, verbose=False, break_ties="abstain"),
        )

    def test_soft_labels(self):
        soft = [np.eye(2)[Y_t.astype(int) - 1] * 0.9 + 0.05 for Y_t in self.Ys[0]]
        em = MTEndModel(layer_out_dims=[2, 8, 4], K=[2, 2], **self.kwargs())
        em.train_model((self.Xs[0], soft), valid_data=self.valid, n_epochs=10)
        self.assertGreater(em.score(self.test, verbose=False), 0.95)

    def test_per_task_inputs_through_a_data_loader(self):
        X = self.split_columns(self.Xs[0])
        loader = DataLoader(MultiXYDataset(X, self.Ys[0]), batch_size=32)
        em = MTEndModel(
            layer_out_dims=[2, 8, 4],
            input_modules=[IdentityModule(), IdentityModule()],
            K=[2, 2],
            **self.kwargs(),
        )
        em.train_model(loader, n_epochs=1, checkpoint=False)
        self.assertEqual(em.logger.example_total, 1000)

    def test_predict_proba(self):
        em = MTEndModel(layer_out_dims=[2, 8, 4], K=[2, 3], **self.kwargs())
        probs = em.predict_proba(self.Xs[2].numpy().astype(np.float64))
        self.assertEqual([p.shape for p in probs], [(100, 2), (100, 3)])
        for p in probs:
            np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)
        np.testing.assert_array_equal(em.predict_task_proba(self.Xs[2], t=1), probs[1])
        from_sparse = em.predict_proba(sparse.csr_matrix(self.Xs[2].numpy()))
        for a, b in zip(probs, from_sparse):
            np.testing.assert_allclose(a, b, rtol=1e-6)
        self.assertFalse(em.training)

    def test_determinism_and_save_load(self):
        def train():
            em = MTEndModel(
                layer_out_dims=[2, 8, 4],
                task_graph=TaskHierarchy([2, 2], [(0, 1)]),
                task_head_layers=[1, 2],
                pass_predictions=True,
                **self.kwargs(seed=123),
            )
            em.train_model(self.train, valid_data=self.valid, n_epochs=2)
            return em

        em = train()
        again = train()
        for a, b in zip(em.predict_proba(self.Xs[2]), again.predict_proba(self.Xs[2])):
            np.testing.assert_array_equal(a, b)
        path = os.path.join(self.tmp.name, "mt_end_model.pth")
        em.save(path)
        loaded = MTEndModel.load(path)
        self.assertIsInstance(loaded.task_graph, TaskHierarchy)
        self.assertEqual(loaded.task_graph, em.task_graph)
        self.assertEqual(loaded.config["pass_predictions"], True)
        self.assertEqual(loaded.seed, 123)
        for a, b in zip(em.predict_proba(self.Xs[2]), loaded.predict_proba(self.Xs[2])):
            np.testing.assert_array_equal(a, b)

    def test_save_load_with_custom_modules_needs_a_model(self):
        def build():
            return MTEndModel(
                layer_out_dims=[8, 4],
                input_modules=[nn.Linear(1, 4), nn.Linear(1, 4)],
                K=[2, 2],
                **self.kwargs(),
            )

        em = build()
        path = os.path.join(self.tmp.name, "custom.pth")
        em.save(path)
        with self.assertRaisesRegex(ValueError, "model="):
            MTEndModel.load(path)
        loaded = MTEndModel.load(path, model=build())
        X = [self.Xs[2][:, :1], self.Xs[2][:, 1:]]
        for a, b in zip(em.predict_proba(X), loaded.predict_proba(X)):
            np.testing.assert_array_equal(a, b)

    def test_resume_training(self):
        with tempfile.TemporaryDirectory() as folder:
            kwargs = self.kwargs(checkpoint_dir=folder)
            em = MTEndModel([2, 8, 4], K=[2, 2], checkpoint_every=1, **kwargs)
            em.train_model(self.train, valid_data=self.valid, n_epochs=3)
            resumed = MTEndModel([2, 8, 4], K=[2, 2], **kwargs)
            resumed.resume_training(
                self.train,
                model_path=os.path.join(folder, "model_checkpoint_1.pth"),
                valid_data=self.valid,
            )
            for a, b in zip(
                em.predict_proba(self.Xs[2]), resumed.predict_proba(self.Xs[2])
            ):
                np.testing.assert_array_equal(a, b)

    @unittest.skipUnless(torch.cuda.is_available(), "needs CUDA")
    def test_cuda(self):
        em = MTEndModel(
            layer_out_dims=[8, 8, 4],
            input_modules=[nn.Linear(1, 4), nn.Linear(1, 4)],
            task_graph=TaskHierarchy([2, 2], [(0, 1)]),
            task_head_layers=[1, 2],
            pass_predictions=True,
            **self.kwargs(device="cuda"),
        )
        self.assertEqual(em.input_layer[0][0].weight.device.type, "cuda")
        X = [[x[:, :1], x[:, 1:]] for x in self.Xs]
        em.train_model((X[0], self.Ys[0]), valid_data=(X[1], self.Ys[1]), n_epochs=5)
        self.assertGreater(em.score((X[2], self.Ys[2]), verbose=False), 0.9)

    # ------------------------------------------------------------- errors
    def test_constructor_errors(self):
        cases = [
            (dict(), "K .*task_graph"),
            (dict(K=[2, 3], task_graph=TaskGraph([2, 2])), "disagrees"),
            (dict(K=[2, 2], task_head_layers="bottom"), "task_head_layers"),
            (dict(K=[2, 2], task_head_layers=[1]), "one layer index per task"),
            (dict(K=[2, 2], task_head_layers=[1, 3]), r"task_head_layers\[1\]"),
            (dict(K=[2, 2], task_head_layers=[1, 1]), "top layer 2"),
            (
                dict(
                    task_graph=TaskHierarchy([2, 2], [(0, 1)]),
                    task_head_layers=[2, 2],
                    pass_predictions=True,
                ),
                "below its child",
            ),
            (dict(K=[2, 2], input_modules=[IdentityModule()]), "one module per task"),
            (
                dict(
                    K=[2, 2],
                    input_modules=[IdentityModule(), IdentityModule()],
                    task_head_layers=[0, 2],
                ),
                "pass head_modules",
            ),
            (dict(K=[2, 3], head_modules=nn.Linear(4, 2)), "Task 1's head emits 2"),
            (dict(K=[2, 2], head_modules=[nn.Linear(4, 2)]), "one head per"),
            (dict(K=[2, 2], loss_fn_reduction="bogus"), "loss_fn_reduction"),
        ]
        for kwargs, message in cases:
            with self.subTest(kwargs=kwargs):
                with self.assertRaisesRegex(ValueError, message):
                    MTEndModel([2, 8, 4], **self.kwargs(**kwargs))

    def test_bad_features(self):
        em = MTEndModel(layer_out_dims=[2, 8, 4], K=[2, 2], **self.kwargs())
        X, Y = self.train
        X_nan = X.clone()
        X_nan[3, 0] = float("nan")
        with self.assertRaisesRegex(ValueError, r"^train_data X has NaN .*row 3"):
            em.train_model((X_nan, Y), n_epochs=1)
        with self.assertRaisesRegex(ValueError, "^train_data X must have 2 features"):
            em.train_model((torch.rand(len(X), 3), Y), n_epochs=1)
        with self.assertRaisesRegex(ValueError, "train_data X must have at least one"):
            em.train_model((X[:0], [y[:0] for y in Y]), n_epochs=1)
        with self.assertRaisesRegex(ValueError, r"^X has NaN .*row 3"):
            em.predict_proba(X_nan)
        with self.assertRaisesRegex(ValueError, r"^X must have 2 features"):
            em.predict(torch.rand(4, 5))

    def test_training_data_errors_name_the_task(self):
        em = MTEndModel(layer_out_dims=[2, 8, 4], K=[2, 2], **self.kwargs())
        X, (Y0, Y1) = self.train
        cases = [
            ((X, [Y0]), r"t=2\); found 1"),
            ((X, Y0), "one entry per task"),
            ((X, [Y0, Y1[:900]]), r"Y\[1\] \(task 1\) has 900 labels"),
            ((X[:900], [Y0, Y1]), "X has 900 items"),
            ((X, [Y0, Y1 + 1]), r"Y\[1\] \(task 1\).*1\.\.2"),
            ((X, [Y0 - 1, Y1]), r"Y\[0\] \(task 0\).*1\.\.2"),
            ((X, [Y0, np.ones((1000, 3)) / 3]), r"Y\[1\] \(task 1\).*k=2 columns"),
        ]
        for data, message in cases:
            with self.subTest(message=message):
                with self.assertRaisesRegex(ValueError, message):
                    em.train_model(data, n_epochs=1)
        with self.assertRaisesRegex(ValueError, r"valid_data Y\[1\] \(task 1\)"):
            em.train_model(self.train, valid_data=(X, [Y0, Y1 + 2]), n_epochs=1)
        with self.assertWarnsRegex(UserWarning, "'bogus'.*no effect"):
            em.train_model(self.train, n_epochs=1, bogus=3)

    def test_per_task_input_errors(self):
        em = MTEndModel(
            layer_out_dims=[2, 4],
            input_modules=[IdentityModule(), IdentityModule()],
            K=[2, 2],
            **self.kwargs(),
        )
        X = self.split_columns(self.Xs[0])
        with self.assertRaisesRegex(ValueError, r"X\[1\] \(task 1\) has 999 items"):
            em.train_model(([X[0], X[1][:999]], self.Ys[0]), n_epochs=1)
        with self.assertRaisesRegex(ValueError, "list of 2 per-task inputs"):
            em.train_model((self.Xs[0], self.Ys[0]), n_epochs=1)
        with self.assertRaisesRegex(ValueError, "list of 2 per-task inputs"):
            em.predict_proba(self.Xs[0])


if __name__ == "__main__":
    unittest.main()
