import itertools
import unittest

import networkx as nx
import numpy as np
import scipy.sparse as sparse
import torch

from metal.multitask import TaskHierarchy
from metal.synthetic.generate import (
    HierarchicalMultiTaskTreeDepsGenerator,
    SingleTaskTreeDepsGenerator,
    bags_to_counts,
    choose_other_label,
    copying_sources,
    gaussian_bags_of_words,
    indpm,
    logistic_fn,
    singletask_synthetic,
)
from metal.synthetic.words1k import vocab1k


def recount_conditional_probs(L, Y, k):
    """Direct (loop) recount of P(L_i = l | Y = y) in the [m*(k+1), k] layout."""
    n, m = L.shape
    table = np.zeros((m * (k + 1), k))
    for i in range(m):
        for y in range(1, k + 1):
            rows = Y == y
            for v in range(k + 1):
                table[i * (k + 1) + v, y - 1] = np.mean(L[rows, i] == v)
    return table


def no_dependency_probs(t, k):
    """Theoretical (P(correct), P(abstain or a given wrong label)) for strength t."""
    z = np.exp(t) + k * np.exp(-t)
    return np.exp(t) / z, np.exp(-t) / z


class TestHelpers(unittest.TestCase):
    def test_logistic_fn(self):
        self.assertAlmostEqual(logistic_fn(0), 0.5)
        self.assertAlmostEqual(logistic_fn(2.0), 1 / (1 + np.exp(-2.0)))
        np.testing.assert_allclose(
            logistic_fn(np.array([-1.0, 0.0, 1.0])),
            [1 / (1 + np.e), 0.5, 1 / (1 + np.exp(-1))],
        )

    def test_indpm(self):
        self.assertEqual(indpm(2, 2), 1)
        self.assertEqual(indpm(0, 2), -1)
        self.assertEqual(indpm(1, 3), -1)

    def test_choose_other_label_is_uniform_over_other_labels(self):
        np.random.seed(0)
        draws = [choose_other_label(4, 2) for _ in range(3000)]
        self.assertEqual(set(draws), {1, 3, 4})
        counts = np.bincount(draws, minlength=5)[[1, 3, 4]] / len(draws)
        np.testing.assert_allclose(counts, [1 / 3] * 3, atol=0.04)
        self.assertEqual({choose_other_label(2, 1) for _ in range(20)}, {2})


class TestSingleTaskTreeDepsGenerator(unittest.TestCase):
    def test_shapes_dtypes_and_ranges(self):
        np.random.seed(1)
        n, m, k = 500, 6, 3
        data = SingleTaskTreeDepsGenerator(n, m, k=k)
        self.assertEqual((data.n, data.m, data.k), (n, m, k))
        self.assertIsInstance(data.L, sparse.csr_matrix)
        self.assertEqual(data.L.shape, (n, m))
        self.assertTrue(np.issubdtype(data.L.dtype, np.integer))
        L = data.L.toarray()
        self.assertGreaterEqual(L.min(), 0)
        self.assertLessEqual(L.max(), k)
        self.assertEqual(set(np.unique(L)), set(range(k + 1)))
        self.assertIsInstance(data.Y, np.ndarray)
        self.assertEqual(data.Y.dtype, np.int64)
        self.assertEqual(data.Y.shape, (n,))
        self.assertEqual(set(np.unique(data.Y)), {1, 2, 3})
        self.assertEqual(data.c_probs.shape, (m * (k + 1), k))
        np.testing.assert_allclose(data.p, np.full(k, 1 / k))

    def test_default_k_is_binary(self):
        np.random.seed(2)
        data = SingleTaskTreeDepsGenerator(100, 3)
        self.assertEqual(data.k, 2)
        self.assertLessEqual(data.L.toarray().max(), 2)

    def test_reproducible_with_seed(self):
        runs = []
        for _ in range(2):
            np.random.seed(123)
            runs.append(SingleTaskTreeDepsGenerator(300, 5, k=3, edge_prob=0.5))
        a, b = runs
        self.assertEqual(a.E, b.E)
        self.assertEqual(a.parent, b.parent)
        np.testing.assert_array_equal(a.L.toarray(), b.L.toarray())
        np.testing.assert_array_equal(a.Y, b.Y)
        np.testing.assert_array_equal(a.c_probs, b.c_probs)
        for i in range(5):
            np.testing.assert_array_equal(a.theta[i], b.theta[i])

        np.random.seed(124)
        c = SingleTaskTreeDepsGenerator(300, 5, k=3, edge_prob=0.5)
        self.assertFalse(np.array_equal(a.L.toarray(), c.L.toarray()))

    def test_theta_ranges(self):
        np.random.seed(3)
        data = SingleTaskTreeDepsGenerator(
            50, 8, k=3, theta_range=(0.5, 2.0), edge_prob=1.0, theta_edge_range=(-2, -1)
        )
        for i in range(8):
            self.assertEqual(data.theta[i].shape, (4,))
            self.assertTrue(np.all((data.theta[i] >= 0.5) & (data.theta[i] <= 2.0)))
        for i, j in data.E:
            self.assertEqual(data.theta[(i, j)], data.theta[(j, i)])
            self.assertTrue(-2 <= data.theta[(i, j)] <= -1)
        # Missing keys (pairs without an edge) read as 0.0.
        self.assertEqual(data.theta[(0, 0)], 0.0)

    def test_edge_prob_one_gives_tree_over_all_sources(self):
        np.random.seed(4)
        m = 12
        data = SingleTaskTreeDepsGenerator(50, m, edge_prob=1.0)
        self.assertEqual(len(data.E), m - 1)
        for parent, child in data.E:
            self.assertLess(parent, child)
            self.assertEqual(data.parent[child], parent)
        self.assertEqual(sorted(data.parent), list(range(1, m)))
        G = nx.Graph()
        G.add_nodes_from(range(m))
        G.add_edges_from(data.E)
        self.assertTrue(nx.is_tree(G))

    def test_edge_prob_zero_gives_no_edges(self):
        np.random.seed(5)
        data = SingleTaskTreeDepsGenerator(50, 10, edge_prob=0.0)
        self.assertEqual(data.E, [])
        self.assertEqual(data.parent, {})

    def test_accuracies_match_theory_without_dependencies(self):
        np.random.seed(6)
        n, m, k = 30000, 4, 3
        data = SingleTaskTreeDepsGenerator(n, m, k=k, theta_range=(0, 1.5))
        L = data.L.toarray()
        for i in range(m):
            for y in range(1, k + 1):
                correct, other = no_dependency_probs(data.theta[i][y], k)
                votes = L[data.Y == y, i]
                self.assertAlmostEqual(np.mean(votes == y), correct, delta=0.03)
                for v in set(range(k + 1)) - {y}:
                    self.assertAlmostEqual(np.mean(votes == v), other, delta=0.03)

    def test_vote_distribution_matches_scalar_model(self):
        np.random.seed(7)
        k = 3
        data = SingleTaskTreeDepsGenerator(10, 4, k=k, edge_prob=1.0)
        for j in range(1, 4):
            pj = data.parent[j]
            pairs = list(itertools.product(range(1, k + 1), range(k + 1)))
            Y = np.array([y for y, _ in pairs])
            lp = np.array([v for _, v in pairs])
            dist = data._vote_distribution(j, Y, lp)
            for row, (y, v) in enumerate(pairs):
                prob_y = data.P_conditional(j, y, pj, v, y)
                prob_0 = data.P_conditional(j, 0, pj, v, y)
                expected = np.full(k + 1, (1 - prob_y - prob_0) / (k - 1))
                expected[0] = prob_0
                expected[y] = prob_y
                np.testing.assert_allclose(dist[row], expected, rtol=1e-12)

    def test_dependent_source_follows_conditional_model(self):
        np.random.seed(8)
        k = 2
        data = SingleTaskTreeDepsGenerator(
            40000, 2, k=k, edge_prob=1.0, theta_edge_range=(1.0, 1.5)
        )
        self.assertEqual(data.E, [(0, 1)])
        L = data.L.toarray()
        checked = 0
        for y in range(1, k + 1):
            for v in range(k + 1):
                rows = (data.Y == y) & (L[:, 0] == v)
                if rows.sum() < 2000:
                    continue
                prob_y = data.P_conditional(1, y, 0, v, y)
                prob_0 = data.P_conditional(1, 0, 0, v, y)
                self.assertAlmostEqual(np.mean(L[rows, 1] == y), prob_y, delta=0.04)
                self.assertAlmostEqual(np.mean(L[rows, 1] == 0), prob_0, delta=0.04)
                checked += 1
        self.assertGreaterEqual(checked, 3)

    def test_c_probs_columns_sum_to_one_and_match_recount(self):
        np.random.seed(9)
        n, m, k = 2000, 5, 3
        data = SingleTaskTreeDepsGenerator(n, m, k=k, edge_prob=0.5)
        blocks = data.c_probs.reshape(m, k + 1, k)
        np.testing.assert_allclose(blocks.sum(axis=1), np.ones((m, k)))
        expected = recount_conditional_probs(data.L.toarray(), data.Y, k)
        np.testing.assert_allclose(data.c_probs, expected)

    def test_class_balance_respected(self):
        np.random.seed(10)
        p = [0.7, 0.2, 0.1]
        data = SingleTaskTreeDepsGenerator(20000, 3, k=3, class_balance=p)
        np.testing.assert_allclose(data.p, p)
        freqs = np.bincount(data.Y, minlength=4)[1:] / data.n
        np.testing.assert_allclose(freqs, p, atol=0.02)

    def test_class_balance_summing_to_one_within_tolerance(self):
        np.random.seed(13)
        data = SingleTaskTreeDepsGenerator(50, 2, k=3, class_balance=[0.3333333] * 3)
        np.testing.assert_allclose(data.p, np.full(3, 1 / 3))
        self.assertAlmostEqual(data.p.sum(), 1.0, places=12)

    def test_missing_class_gives_zero_column(self):
        np.random.seed(11)
        data = SingleTaskTreeDepsGenerator(200, 2, k=3, class_balance=[0.5, 0.5, 0.0])
        self.assertNotIn(3, set(data.Y))
        np.testing.assert_array_equal(data.c_probs[:, 2], 0.0)

    def test_extra_kwargs_are_ignored(self):
        np.random.seed(12)
        data = SingleTaskTreeDepsGenerator(20, 2, k=2, vocab=["a"], unused=3)
        self.assertEqual(data.L.shape, (20, 2))

    def test_bad_arguments_raise(self):
        cases = [
            (dict(n=0, m=3), "n"),
            (dict(n=10.5, m=3), "n"),
            (dict(n=10, m=0), "m"),
            (dict(n=10, m=3, k=0), "k"),
            (dict(n=10, m=3, k=2, class_balance=[1.0]), "class_balance"),
            (dict(n=10, m=3, k=2, class_balance=[0.6, 0.6]), "class_balance"),
            (dict(n=10, m=3, theta_range=(2, 1)), "theta_range"),
            (dict(n=10, m=3, theta_range=5), "theta_range"),
            (dict(n=10, m=3, theta_edge_range=("a", 1)), "theta_edge_range"),
            (dict(n=10, m=3, edge_prob=1.5), "edge_prob"),
            (dict(n=10, m=3, edge_prob="x"), "edge_prob"),
        ]
        for kwargs, name in cases:
            with self.subTest(kwargs=kwargs):
                with self.assertRaisesRegex(ValueError, name):
                    SingleTaskTreeDepsGenerator(**kwargs)


class TestHierarchicalMultiTaskTreeDepsGenerator(unittest.TestCase):
    FEASIBLE = [[1, 1, 3], [1, 2, 3], [2, 3, 1], [2, 3, 2]]

    def setUp(self):
        np.random.seed(0)
        self.data = HierarchicalMultiTaskTreeDepsGenerator(3000, 6, edge_prob=0.5)

    def stacked_votes(self, data):
        """[n, m, t] per-task votes."""
        return np.stack([L_s.toarray() for L_s in data.L], axis=-1)

    def test_task_graph_and_flat_space(self):
        data = self.data
        self.assertIsInstance(data.task_graph, TaskHierarchy)
        self.assertEqual(data.task_graph.K, [2, 3, 3])
        self.assertEqual(data.task_graph.edges, [(0, 1), (0, 2)])
        self.assertEqual(data.k, 4)
        np.testing.assert_allclose(data.p, np.full(4, 0.25))
        self.assertEqual(data.c_probs.shape, (6 * 5, 4))

    def test_label_matrices_and_labels_per_task(self):
        data = self.data
        self.assertIsInstance(data.L, list)
        self.assertIsInstance(data.Y, list)
        self.assertEqual(len(data.L), 3)
        self.assertEqual(len(data.Y), 3)
        for s, K_s in enumerate([2, 3, 3]):
            self.assertIsInstance(data.L[s], sparse.csr_matrix)
            self.assertEqual(data.L[s].shape, (3000, 6))
            L_s = data.L[s].toarray()
            np.testing.assert_array_equal(L_s, np.round(L_s))
            self.assertTrue(np.all((L_s >= 0) & (L_s <= K_s)))
            self.assertEqual(data.Y[s].shape, (3000,))
            self.assertTrue(np.issubdtype(data.Y[s].dtype, np.integer))
            self.assertTrue(np.all((data.Y[s] >= 1) & (data.Y[s] <= K_s)))

    def test_votes_and_labels_are_feasible_vectors(self):
        votes = self.stacked_votes(self.data).reshape(-1, 3)
        voted = np.any(votes != 0, axis=1)
        # Abstains are zero in every task at once.
        np.testing.assert_array_equal(votes[~voted], 0)
        found = {tuple(int(v) for v in row) for row in np.unique(votes[voted], axis=0)}
        self.assertEqual(found, {tuple(f) for f in self.FEASIBLE})
        labels = np.stack(self.data.Y, axis=1)
        found = {tuple(int(v) for v in row) for row in np.unique(labels, axis=0)}
        self.assertEqual(found, {tuple(f) for f in self.FEASIBLE})

    def test_flat_c_probs_consistent_with_task_labels(self):
        data = self.data
        fs = np.array(self.FEASIBLE)
        votes = self.stacked_votes(data)
        flat_L = np.zeros(votes.shape[:2], dtype=np.int64)
        for index, vector in enumerate(fs, start=1):
            flat_L[np.all(votes == vector, axis=-1)] = index
        labels = np.stack(data.Y, axis=1)
        flat_Y = np.zeros(labels.shape[0], dtype=np.int64)
        for index, vector in enumerate(fs, start=1):
            flat_Y[np.all(labels == vector, axis=-1)] = index
        self.assertTrue(np.all(flat_Y > 0))
        expected = recount_conditional_probs(flat_L, flat_Y, 4)
        np.testing.assert_allclose(data.c_probs, expected)

    def test_reproducible_with_seed(self):
        np.random.seed(0)
        again = HierarchicalMultiTaskTreeDepsGenerator(3000, 6, edge_prob=0.5)
        self.assertEqual(again.E, self.data.E)
        for s in range(3):
            np.testing.assert_array_equal(
                again.L[s].toarray(), self.data.L[s].toarray()
            )
            np.testing.assert_array_equal(again.Y[s], self.data.Y[s])

    def test_custom_hierarchy(self):
        np.random.seed(1)
        data = HierarchicalMultiTaskTreeDepsGenerator(
            500, 3, cardinalities=[3, 3, 3, 3], edges=[(0, 1), (0, 2), (0, 3)]
        )
        self.assertEqual(data.k, 6)
        self.assertEqual(len(data.L), 4)
        labels = np.stack(data.Y, axis=1)
        for row in np.unique(labels, axis=0):
            self.assertTrue(data.task_graph.is_feasible(row))

    def test_bad_hierarchy_raises(self):
        with self.assertRaisesRegex(ValueError, "tree"):
            HierarchicalMultiTaskTreeDepsGenerator(
                10, 2, cardinalities=[2, 2, 2], edges=[(0, 1)]
            )


class TestGaussianBagsOfWords(unittest.TestCase):
    def test_shapes_indices_and_strings(self):
        np.random.seed(0)
        Y = np.random.randint(1, 4, size=300)
        X, items = gaussian_bags_of_words(Y)
        self.assertEqual(len(X), 300)
        self.assertEqual(len(items), 300)
        for bag, text in zip(X, items):
            self.assertIsInstance(bag, torch.Tensor)
            self.assertEqual(bag.dtype, torch.int64)
            self.assertEqual(bag.dim(), 1)
            self.assertTrue(bool(((bag >= 0) & (bag < len(vocab1k))).all()))
            self.assertEqual(text, " ".join(vocab1k[w] for w in bag.tolist()))

    def test_bag_lengths_cover_25_to_49(self):
        np.random.seed(1)
        X, _ = gaussian_bags_of_words(np.ones(2000, dtype=int))
        lengths = {len(bag) for bag in X}
        self.assertEqual(lengths, set(range(25, 50)))

    def test_custom_bag_size_and_vocab(self):
        np.random.seed(2)
        vocab = ["red", "green", "blue"]
        X, items = gaussian_bags_of_words([1, 2, 1, 2], vocab=vocab, bag_size=[4, 3])
        self.assertTrue(all(len(bag) == 3 for bag in X))
        for text in items:
            self.assertEqual(len(text.split()), 3)
            self.assertTrue(set(text.split()) <= set(vocab))

    def test_per_label_distributions_differ(self):
        np.random.seed(3)
        Y = np.repeat([1, 2], 600)
        X, _ = gaussian_bags_of_words(Y)
        counts = bags_to_counts(X, len(vocab1k)).numpy()

        def freqs(rows):
            total = counts[rows].sum(axis=0)
            return total / total.sum()

        def tv(a, b):
            return 0.5 * np.abs(a - b).sum()

        first_half_1, second_half_1 = freqs(slice(0, 300)), freqs(slice(300, 600))
        label_1, label_2 = freqs(slice(0, 600)), freqs(slice(600, 1200))
        self.assertGreater(tv(label_1, label_2), 2 * tv(first_half_1, second_half_1))
        self.assertGreater(tv(label_1, label_2), 0.3)

    def test_reproducible_with_seed(self):
        results = []
        for _ in range(2):
            np.random.seed(4)
            results.append(gaussian_bags_of_words([1, 2, 2, 3], sigma=2))
        for a, b in zip(results[0][0], results[1][0]):
            self.assertTrue(torch.equal(a, b))
        self.assertEqual(results[0][1], results[1][1])

    def test_accepts_tensor_labels(self):
        np.random.seed(5)
        X, items = gaussian_bags_of_words(torch.tensor([1, 2, 1]))
        self.assertEqual(len(X), 3)

    def test_bad_arguments_raise(self):
        cases = [
            (dict(sigma=0), "sigma"),
            (dict(sigma=-1), "sigma"),
            (dict(sigma="a"), "sigma"),
            (dict(bag_size=[5, 5]), "bag_size"),
            (dict(bag_size=[-1, 5]), "bag_size"),
            (dict(bag_size=[2.5, 5]), "bag_size"),
            (dict(bag_size=3), "bag_size"),
            (dict(vocab=[]), "vocab"),
        ]
        for kwargs, name in cases:
            with self.subTest(kwargs=kwargs):
                with self.assertRaisesRegex(ValueError, name):
                    gaussian_bags_of_words([1, 2], **kwargs)


class TestBagsToCounts(unittest.TestCase):
    def test_counts(self):
        bags = [torch.tensor([0, 2, 2]), torch.tensor([], dtype=torch.long)]
        bags.append(torch.tensor([3, 3, 3, 1]))
        counts = bags_to_counts(bags, 5)
        self.assertEqual(counts.dtype, torch.float32)
        expected = torch.tensor(
            [[1, 0, 2, 0, 0], [0, 0, 0, 0, 0], [0, 1, 0, 3, 0]], dtype=torch.float32
        )
        self.assertTrue(torch.equal(counts, expected))

    def test_row_sums_are_bag_lengths(self):
        np.random.seed(0)
        X, _ = gaussian_bags_of_words(np.array([1, 2, 3, 1, 2]))
        counts = bags_to_counts(X, len(vocab1k))
        self.assertEqual(tuple(counts.shape), (5, 1000))
        self.assertEqual(counts.sum(dim=1).tolist(), [float(len(b)) for b in X])

    def test_empty_list(self):
        self.assertEqual(tuple(bags_to_counts([], 4).shape), (0, 4))

    def test_bad_arguments_raise(self):
        with self.assertRaisesRegex(ValueError, "word indices"):
            bags_to_counts([torch.tensor([0, 5])], 5)
        with self.assertRaisesRegex(ValueError, "word indices"):
            bags_to_counts([torch.tensor([-1])], 5)
        with self.assertRaisesRegex(ValueError, "vocab_size"):
            bags_to_counts([torch.tensor([0])], 0)


class TestSingletaskSynthetic(unittest.TestCase):
    def test_outputs(self):
        np.random.seed(0)
        D, L, X, Y, deps = singletask_synthetic(200, 4, 3, edge_prob=1.0)
        self.assertEqual(len(D), 200)
        self.assertIsInstance(L, sparse.csr_matrix)
        self.assertEqual(L.shape, (200, 4))
        self.assertLessEqual(L.toarray().max(), 3)
        self.assertEqual(tuple(X.shape), (200, len(vocab1k)))
        self.assertEqual(X.dtype, torch.float32)
        self.assertEqual(X.sum(dim=1).tolist(), [float(len(d.split())) for d in D])
        self.assertEqual(Y.shape, (200,))
        self.assertTrue(set(np.unique(Y)) <= {1, 2, 3})
        self.assertEqual(len(deps), 3)

    def test_kwargs_reach_bags(self):
        np.random.seed(1)
        vocab = ["a", "b", "c", "d"]
        D, L, X, Y, deps = singletask_synthetic(
            30, 2, 2, vocab=vocab, bag_size=[2, 3], class_balance=[0.5, 0.5]
        )
        self.assertEqual(tuple(X.shape), (30, 4))
        self.assertTrue(all(len(d.split()) == 2 for d in D))
        self.assertEqual(deps, [])


class CopyingSourcesTest(unittest.TestCase):
    def test_shapes_ranges_and_rates(self):
        L, Y = copying_sources(20000, 6, 3, seed=0)
        self.assertEqual(L.shape, (20000, 6))
        self.assertEqual(Y.shape, (20000,))
        self.assertTrue(set(np.unique(L)) <= {0, 1, 2, 3})
        self.assertTrue(set(np.unique(Y)) <= {1, 2, 3})
        coverage = (L > 0).mean(axis=0)
        self.assertTrue(np.all((coverage > 0.27) & (coverage < 0.73)))
        voted = L > 0
        correct = (L == Y[:, None]).sum(axis=0) / voted.sum(axis=0)
        self.assertTrue(np.all((correct > 0.57) & (correct < 0.88)))

    def test_copies_include_errors(self):
        L, Y = copying_sources(20000, 4, 2, [(0, 3, 0.9)], seed=1)
        both = (L[:, 0] > 0) & (L[:, 3] > 0)
        agree = np.mean(L[both, 0] == L[both, 3])
        self.assertGreater(agree, 0.9)
        wrong = both & (L[:, 0] != Y)
        self.assertGreater(np.mean(L[wrong, 3] == L[wrong, 0]), 0.85)
        independent = (L[:, 1] > 0) & (L[:, 2] > 0)
        self.assertLess(np.mean(L[independent, 1] == L[independent, 2]), 0.8)

    def test_seeded(self):
        a = copying_sources(100, 3, 2, [(0, 1, 0.5)], seed=4)
        b = copying_sources(100, 3, 2, [(0, 1, 0.5)], seed=4)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])

    def test_bad_arguments(self):
        cases = [
            (dict(n=0, m=3), "n"),
            (dict(n=10, m=3, k=1), "k"),
            (dict(n=10, m=3, copies=[(0, 3, 0.5)]), "copies source b"),
            (dict(n=10, m=3, copies=[(0, 0, 0.5)]), "two different sources"),
            (dict(n=10, m=3, copies=[(0, 1)]), r"\(a, b, p\) triples"),
            (dict(n=10, m=3, copies=[(0, 1, 2.0)]), "probability"),
            (dict(n=10, m=3, coverage_range=(0.5, 1.5)), "coverage_range"),
            (dict(n=10, m=3, accuracy_range=(0.9, 0.1)), "accuracy_range"),
        ]
        for kwargs, message in cases:
            with self.subTest(kwargs=kwargs):
                with self.assertRaisesRegex(ValueError, message):
                    copying_sources(**kwargs)


if __name__ == "__main__":
    unittest.main()
