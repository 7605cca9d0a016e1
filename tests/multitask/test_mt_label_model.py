import itertools
import os
import tempfile
import unittest

import numpy as np
import scipy.sparse as sparse
import torch

from metal.label_model import LabelModel
from metal.multitask import MTLabelModel, TaskGraph, TaskHierarchy
from metal.synthetic.generate import HierarchicalMultiTaskTreeDepsGenerator

FEASIBLE = np.array([[1, 1, 3], [1, 2, 3], [2, 3, 1], [2, 3, 2]])


def flatten_votes(L, feasible=FEASIBLE):
    """Map full per-task vote vectors to flat labels 1..k (0 = abstain)."""
    votes = np.stack([np.asarray(sparse.csr_matrix(L_s).toarray()) for L_s in L], -1)
    flat = np.zeros(votes.shape[:2], dtype=np.int64)
    for index, vector in enumerate(feasible, start=1):
        flat[np.all(votes == vector, axis=-1)] = index
    return flat


def reference_L_ind(L, feasible):
    """Column j*k + yi is 1 iff source j voted on some task and each of its votes
    is 0 or the feasible vector's component (a plain loop, for checking)."""
    n, m = L[0].shape
    k = len(feasible)
    out = np.zeros((n, m * k))
    for i, j in itertools.product(range(n), range(m)):
        votes = [L_s[i, j] for L_s in L]
        if not any(votes):
            continue
        for yi, vector in enumerate(feasible):
            if all(v == 0 or v == y for v, y in zip(votes, vector)):
                out[i, j * k + yi] = 1
    return out


class MTLabelModelTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Small problems: one thread avoids OpenMP contention on busy machines.
        cls.threads = torch.get_num_threads()
        torch.set_num_threads(1)
        cls.tmp = tempfile.TemporaryDirectory()
        np.random.seed(0)
        cls.data = HierarchicalMultiTaskTreeDepsGenerator(10000, 10, edge_prob=0.0)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()
        torch.set_num_threads(cls.threads)

    def test_multitask(self):
        """The spec's test: parameters recovered and accuracy above 0.95."""
        np.random.seed(0)
        data = HierarchicalMultiTaskTreeDepsGenerator(10000, 10, edge_prob=0.0)
        label_model = MTLabelModel(task_graph=data.task_graph, verbose=False)
        label_model.train_model(
            data.L, deps=data.E, class_balance=data.p, n_epochs=1000
        )
        c_probs_est = label_model.get_conditional_probs()
        err = np.mean(np.abs(data.c_probs - c_probs_est))
        self.assertLess(err, 0.025)
        self.assertEqual(label_model.k, 4)
        score = label_model.score((data.L, data.Y), verbose=False)
        self.assertGreater(score, 0.95)

    def test_equals_flat_label_model_on_full_vote_vectors(self):
        """Sources that vote whole feasible vectors make the model the
        single-task LabelModel over the k feasible vectors."""
        data = self.data
        flat = flatten_votes(data.L)
        mt = MTLabelModel(task_graph=data.task_graph, verbose=False, seed=3)
        mt.train_model(data.L, class_balance=data.p, n_epochs=300)
        st = LabelModel(k=4, verbose=False, seed=3)
        st.train_model(flat, class_balance=data.p, n_epochs=300)
        np.testing.assert_allclose(
            mt.mu.detach().numpy(), st.mu.detach().numpy(), atol=1e-5
        )
        flat_probs = st.predict_proba(flat)
        np.testing.assert_allclose(
            mt.predict_feasible_proba(data.L), flat_probs, atol=1e-5
        )
        # Per-task marginals: sum the posterior over the vectors with y[s] = v.
        probs = mt.predict_proba(data.L)
        self.assertEqual([p.shape for p in probs], [(10000, 2), (10000, 3), (10000, 3)])
        for s, P_s in enumerate(probs):
            expected = np.stack(
                [flat_probs[:, FEASIBLE[:, s] == v].sum(axis=1) for v in (1, 2, 3)],
                axis=1,
            )[:, : P_s.shape[1]]
            np.testing.assert_allclose(P_s, expected, atol=1e-5)
            np.testing.assert_allclose(P_s.sum(axis=1), 1.0, atol=1e-9)

    def test_indicator_matrix_with_partial_votes(self):
        """Votes on some tasks only, infeasible combinations and abstains."""
        hierarchy = TaskHierarchy([2, 3, 3], [(0, 1), (0, 2)])
        model = MTLabelModel(task_graph=hierarchy, verbose=False)
        rng = np.random.RandomState(0)
        L = [rng.randint(0, K_s + 1, size=(60, 4)) for K_s in (2, 3, 3)]
        L[1][:20] = 0
        L[2][:20] = 0
        expected = reference_L_ind(L, FEASIBLE)
        np.testing.assert_array_equal(model._create_L_ind(L), expected)
        # Task 0 alone: vote 1 fits the first two feasible vectors.
        one = model._create_L_ind([np.array([[1]]), np.array([[0]]), np.array([[0]])])
        np.testing.assert_array_equal(one, [[1, 1, 0, 0]])
        # The comparison path (used when the lookup table would be too large).
        model._lookup = None
        np.testing.assert_array_equal(model._create_L_ind(L), expected)
        sparse_L = [sparse.csr_matrix(L_s) for L_s in L]
        np.testing.assert_array_equal(model._create_L_ind(sparse_L), expected)

    def test_indicator_matrix_of_plain_task_graph(self):
        graph = TaskGraph([2, 2])
        model = MTLabelModel(task_graph=graph, verbose=False)
        rng = np.random.RandomState(1)
        L = [rng.randint(0, 3, size=(40, 3)) for _ in range(2)]
        feasible = np.array(list(graph.feasible_set()))
        np.testing.assert_array_equal(
            model._create_L_ind(L), reference_L_ind(L, feasible)
        )

    def test_sources_voting_on_some_tasks(self):
        np.random.seed(1)
        data = HierarchicalMultiTaskTreeDepsGenerator(10000, 10)
        L = [L_s.toarray() for L_s in data.L]
        for s in (1, 2):  # half the sources only vote on the root task
            L[s][:, :5] = 0
        model = MTLabelModel(task_graph=data.task_graph, verbose=False, seed=0)
        model.train_model(L, n_epochs=1000)
        self.assertGreater(model.score((L, data.Y), verbose=False), 0.88)

    def test_dependencies(self):
        np.random.seed(2)
        data = HierarchicalMultiTaskTreeDepsGenerator(10000, 8, edge_prob=1.0)
        self.assertTrue(data.E)
        flat = flatten_votes(data.L)
        mt = MTLabelModel(task_graph=data.task_graph, verbose=False, seed=0)
        mt.train_model(
            data.L, deps=data.E, class_balance=data.p, n_epochs=300, optimizer="lbfgs"
        )
        st = LabelModel(k=4, verbose=False, seed=0)
        st.train_model(
            flat, deps=data.E, class_balance=data.p, n_epochs=300, optimizer="lbfgs"
        )
        np.testing.assert_allclose(
            mt.mu.detach().numpy(), st.mu.detach().numpy(), atol=1e-4
        )
        # The dependency-aware fit: parameters recovered; the posterior treats
        # the sources as independent given the label vector.
        self.assertLess(
            np.mean(np.abs(mt.get_conditional_probs() - data.c_probs)), 0.02
        )
        self.assertGreater(mt.score((data.L, data.Y), verbose=False), 0.9)

    def test_class_balance_from_Y_dev(self):
        data = self.data
        model = MTLabelModel(task_graph=data.task_graph, verbose=False, seed=0)
        Y_dev = [Y_s[:1000] for Y_s in data.Y]
        model.train_model(data.L, Y_dev=Y_dev, n_epochs=10)
        counts = np.bincount(flatten_votes([y[:, None] for y in Y_dev])[:, 0] - 1)
        np.testing.assert_allclose(model.p, counts / 1000)
        self.assertEqual(len(model.p), 4)

    def test_class_balance_skips_Y_dev_items_without_gold(self):
        data = self.data
        model = MTLabelModel(task_graph=data.task_graph, verbose=False, seed=0)
        Y_dev = [Y_s[:1000].copy() for Y_s in data.Y]
        Y_dev[1][:300] = 0  # no gold label on task 1 for the first 300 items
        model.train_model(data.L, Y_dev=Y_dev, n_epochs=10)
        kept = [y[300:, None] for y in Y_dev]
        counts = np.bincount(flatten_votes(kept)[:, 0] - 1, minlength=4)
        np.testing.assert_allclose(model.p, counts / 700)
        unlabeled = [np.zeros(10, int) for _ in Y_dev]
        with self.assertRaisesRegex(ValueError, "Y_dev must contain at least one"):
            model.train_model(data.L, Y_dev=unlabeled, n_epochs=1)

    def test_K_builds_a_plain_task_graph(self):
        data = self.data
        model = MTLabelModel(K=[2, 3, 3], verbose=False, seed=0)
        self.assertEqual(model.task_graph, TaskGraph([2, 3, 3]))
        self.assertEqual(model.k, 18)
        model.train_model(data.L, n_epochs=200)
        probs = model.predict_proba(data.L)
        self.assertEqual([p.shape[1] for p in probs], [2, 3, 3])
        self.assertGreater(model.score((data.L, data.Y), verbose=False), 0.9)

    def test_input_forms(self):
        data = self.data
        model = MTLabelModel(task_graph=data.task_graph, verbose=False, seed=0)
        dense = [L_s.toarray().astype(np.int64) for L_s in data.L]
        model.train_model(dense, n_epochs=50)
        from_dense = model.predict_proba(dense)
        from_sparse = model.predict_proba(data.L)
        from_torch = model.predict_proba([torch.from_numpy(L_s) for L_s in dense])
        for a, b, c in zip(from_dense, from_sparse, from_torch):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)

    def test_save_and_load(self):
        data = self.data
        model = MTLabelModel(task_graph=data.task_graph, verbose=False, seed=5)
        model.train_model(data.L, class_balance=data.p, n_epochs=100)
        path = os.path.join(self.tmp.name, "mt_label_model.pth")
        model.save(path)
        loaded = MTLabelModel.load(path)
        self.assertIsInstance(loaded.task_graph, TaskHierarchy)
        self.assertEqual(loaded.task_graph, data.task_graph)
        self.assertEqual((loaded.k, loaded.t, loaded.K), (4, 3, [2, 3, 3]))
        np.testing.assert_array_equal(
            loaded.get_conditional_probs(), model.get_conditional_probs()
        )
        for a, b in zip(loaded.predict_proba(data.L), model.predict_proba(data.L)):
            np.testing.assert_array_equal(a, b)

    def test_statistics_are_float64_buffers(self):
        """The flat-space statistics are LabelModel's single float64 buffers;
        ``p`` (over the feasible vectors) is the diagonal of ``P``."""
        data = self.data
        model = MTLabelModel(task_graph=data.task_graph, verbose=False, seed=5)
        model.train_model(data.L, class_balance=data.p, n_epochs=20)
        buffers = dict(model.named_buffers())
        for name in ("O", "mu_init", "P"):
            self.assertEqual(buffers[name].dtype, torch.float64, name)
        self.assertEqual(tuple(model.O.shape), (10 * 4, 10 * 4))
        np.testing.assert_array_equal(model.p, data.p)
        self.assertTrue(np.shares_memory(model.p, model.P.numpy()))
        X = model._create_L_ind(data.L).astype(np.float64)
        np.testing.assert_allclose(model.O.numpy(), X.T @ X / len(X), atol=1e-15)

    @unittest.skipUnless(torch.cuda.is_available(), "needs CUDA")
    def test_cuda(self):
        data = self.data
        cpu = MTLabelModel(task_graph=data.task_graph, verbose=False, seed=0)
        cpu.train_model(data.L, class_balance=data.p, n_epochs=100)
        gpu = MTLabelModel(
            task_graph=data.task_graph, verbose=False, seed=0, device="cuda"
        )
        gpu.train_model(data.L, class_balance=data.p, n_epochs=100)
        for a, b in zip(cpu.predict_proba(data.L), gpu.predict_proba(data.L)):
            np.testing.assert_allclose(a, b, atol=1e-4)

    # ------------------------------------------------------------- errors
    def test_constructor_errors(self):
        with self.assertRaisesRegex(ValueError, "K .*task_graph"):
            MTLabelModel()
        with self.assertWarnsRegex(UserWarning, "MTLabelModel .*'bogus'"):
            MTLabelModel(K=[2, 2], bogus=1)
        with self.assertRaisesRegex(ValueError, "disagrees"):
            MTLabelModel(K=[2, 2], task_graph=TaskGraph([2, 3]))
        with self.assertRaisesRegex(ValueError, "only 1 feasible"):
            MTLabelModel(task_graph=TaskHierarchy([2, 2], [(0, 1)]))

    def test_label_matrix_errors_name_the_task(self):
        data = self.data
        L = [L_s.toarray() for L_s in data.L]
        model = MTLabelModel(task_graph=data.task_graph, verbose=False)
        cases = [
            (L[0], "list of t=3 label matrices"),
            (L[:2], "2 label matrices but the task graph has t=3"),
            ([L[0], L[1][:9000], L[2]], r"L\[1\] \(task 1\) has 9000 rows"),
            ([L[0], L[1], L[2][:, :9]], r"L\[2\] \(task 2\) has 9 sources"),
            ([L[0] * 2, L[1], L[2]], r"L\[0\] \(task 0\).*larger than k=2"),
            ([L[0], L[1] - 1, L[2]], r"L\[1\] \(task 1\).*negative"),
        ]
        for bad, message in cases:
            with self.subTest(message=message):
                with self.assertRaisesRegex(ValueError, message):
                    model.train_model(bad, n_epochs=1)
        with self.assertRaisesRegex(ValueError, "not trained"):
            model.predict_proba(L)
        model.train_model(L, n_epochs=1)
        with self.assertRaisesRegex(ValueError, r"L\[2\] \(task 2\) has 9999 rows"):
            model.predict_proba([L[0], L[1], L[2][:9999]])
        with self.assertRaisesRegex(ValueError, "trained on m=10"):
            model.predict_proba([L_s[:, :5] for L_s in L])

    def test_infeasible_labels_name_the_task(self):
        data = self.data
        model = MTLabelModel(task_graph=data.task_graph, verbose=False)
        Y_dev = [Y_s[:100].copy() for Y_s in data.Y]
        Y_dev[2][Y_dev[0] == 1] = 1  # task 2 applies only under root label 2
        with self.assertRaisesRegex(ValueError, r"Y_dev.*not feasible.*task"):
            model.train_model(data.L, Y_dev=Y_dev, n_epochs=1)
        bad_range = [Y_s[:100] for Y_s in data.Y]
        bad_range[1] = bad_range[1] + 1
        with self.assertRaisesRegex(ValueError, r"Y_dev\[1\] \(task 1\)"):
            model.train_model(data.L, Y_dev=bad_range, n_epochs=1)
        with self.assertRaisesRegex(ValueError, "t=3"):
            model.train_model(data.L, Y_dev=data.Y[:2], n_epochs=1)
        model.train_model(data.L, n_epochs=10)
        Y = [Y_s.copy() for Y_s in data.Y]
        Y[1][Y[0] == 2] = 1  # task 1 applies only under root label 1
        with self.assertRaisesRegex(ValueError, r"Y: the label vector.*task 1"):
            model.score((data.L, Y), verbose=False)
        with self.assertRaisesRegex(ValueError, "class_balance must have length k=4"):
            model.train_model(data.L, class_balance=[0.5, 0.5], n_epochs=1)


if __name__ == "__main__":
    unittest.main()
