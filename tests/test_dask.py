"""Dask arrays as label matrices (``metal/_dask.py``): the label model, the
baselines and ``metal.analysis`` reduce them block by block on the active
scheduler, predict lazily, and match the in-memory results."""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np
import torch

from metal import analysis
from metal._dask import (
    dask_label_matrix,
    is_dask_array,
    lazy_break_ties,
    map_row_blocks,
    reduce_row_blocks,
)
from metal.label_model import (
    LabelModel,
    MajorityClassVoter,
    MajorityLabelVoter,
    RandomVoter,
)
from metal.labels import ONE_BASED, break_ties
from tests.label_model.test_label_model import stored_sparse

HAS_DASK = all(
    importlib.util.find_spec(name) is not None for name in ("dask", "distributed")
)
HAS_ZARR = importlib.util.find_spec("zarr") is not None
if HAS_DASK:
    import dask
    import dask.array as da

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ATOL = 1e-6


def make_votes(n, m, k, seed=0, coverage=0.6):
    """``(L [n, m], Y [n])``: sources correct with probability 0.6..0.85 when
    they vote; source m-1 copies source m-2 where it votes (a dependency)."""
    rng = np.random.default_rng(seed)
    Y = rng.integers(1, k + 1, n)
    L = np.zeros((n, m), dtype=np.int64)
    for j, accuracy in enumerate(np.linspace(0.6, 0.85, m)):
        wrong = (Y - 1 + rng.integers(1, k, n)) % k + 1
        votes = np.where(rng.random(n) < accuracy, Y, wrong)
        L[:, j] = np.where(rng.random(n) < coverage, votes, 0)
    L[:, m - 1] = np.where(L[:, m - 2] > 0, L[:, m - 2], L[:, m - 1])
    return L, Y


def fit(L, k, **kwargs):
    model = LabelModel(k=k, verbose=False, seed=3)
    model.train_model(L, **kwargs)
    return model


def mu_of(model):
    return model.mu.detach().double().numpy()


@unittest.skipUnless(HAS_DASK, "dask and distributed are not installed")
class DaskThreadedTestCase(unittest.TestCase):
    """Runs its tests on Dask's local threaded scheduler."""

    @classmethod
    def setUpClass(cls):
        cls._scheduler = dask.config.set(scheduler="threads")
        cls._scheduler.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls._scheduler.__exit__(None, None, None)


class DaskSeamTest(DaskThreadedTestCase):
    def test_is_dask_array(self):
        self.assertTrue(is_dask_array(da.zeros((3, 2))))
        self.assertFalse(is_dask_array(np.zeros((3, 2))))
        self.assertFalse(is_dask_array(torch.zeros(3, 2)))

    def test_reduce_row_blocks_sums_in_a_tree(self):
        X = da.arange(1000, chunks=7)  # 143 blocks: three levels of merges

        def block_sum(block, start=0):
            return np.array([block.sum(), len(block), start == block[0]])

        total = reduce_row_blocks(X, block_sum)
        self.assertEqual(total.tolist(), [499500, 1000, 143])

    def test_map_row_blocks_gets_each_blocks_first_row(self):
        X = da.zeros((10, 3), chunks=(4, 3))
        starts = map_row_blocks(
            X, lambda b, start=0: np.full(len(b), start), dtype=np.int64
        )
        self.assertEqual(starts.chunks, ((4, 4, 2),))
        self.assertEqual(starts.compute().tolist(), [0] * 4 + [4] * 4 + [8] * 2)

    def test_label_matrix_checks(self):
        with self.assertRaisesRegex(ValueError, "L must be a 2-D label matrix"):
            dask_label_matrix(da.zeros(5))
        with self.assertRaisesRegex(ValueError, "L must hold numeric labels"):
            dask_label_matrix(da.from_array(np.array([["a", "b"]])))
        with self.assertRaisesRegex(ValueError, "at least one row"):
            dask_label_matrix(da.zeros((0, 3)))
        columns = dask_label_matrix(da.zeros((10, 6), chunks=(3, 2)))
        self.assertEqual(columns.chunks, ((3, 3, 3, 1), (6,)))
        X = da.ones((10, 2), chunks=(3, 2))
        unknown = X[X[:, 0] > 0]
        self.assertTrue(np.isnan(unknown.shape[0]))
        self.assertEqual(dask_label_matrix(unknown).shape, (10, 2))

    def test_torch_threads_restored_after_blocks(self):
        threads = torch.get_num_threads()
        seen = reduce_row_blocks(
            da.zeros(40, chunks=5),
            lambda block, start=0: np.array([torch.get_num_threads()]),
            combine=lambda parts: np.maximum.reduce(parts),
        )
        self.assertEqual(seen.tolist(), [1])
        self.assertEqual(torch.get_num_threads(), threads)

    def test_lazy_break_ties_matches_in_memory(self):
        probs = np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8], [0.5, 0.5]] * 25)
        lazy = da.from_array(probs, chunks=7)
        for policy in ("hash", "first", "abstain", 2):
            expected = break_ties(probs, policy, ONE_BASED)
            found = lazy_break_ties(lazy, policy, ONE_BASED).compute()
            np.testing.assert_array_equal(found, expected)
        with self.assertRaisesRegex(ValueError, "break_ties must be one of"):
            lazy_break_ties(lazy, "coin", ONE_BASED)

    def test_random_ties_are_deterministic_per_array(self):
        probs = da.from_array(np.full((400, 3), 1 / 3), chunks=50)
        np.random.seed(7)
        labels = lazy_break_ties(probs, "random", ONE_BASED)
        first, again = labels.compute(), labels.compute()
        np.testing.assert_array_equal(first, again)
        self.assertEqual(set(first.tolist()), {1, 2, 3})
        np.random.seed(7)
        reseeded = lazy_break_ties(probs, "random", ONE_BASED).compute()
        np.testing.assert_array_equal(first, reseeded)


class DaskLabelModelTest(DaskThreadedTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.k = 3
        cls.L, cls.Y = make_votes(12000, 7, cls.k)
        cls.L_dask = da.from_array(cls.L, chunks=(2500, 7))
        cls.deps = [(5, 6), (0, 1)]
        cls.models = {
            "no deps": (fit(cls.L, cls.k), fit(cls.L_dask, cls.k)),
            "deps": (
                fit(cls.L, cls.k, deps=cls.deps),
                fit(cls.L_dask, cls.k, deps=cls.deps),
            ),
        }

    def assert_same_fit(self, expected, found):
        np.testing.assert_allclose(mu_of(found), mu_of(expected), atol=ATOL)
        np.testing.assert_allclose(found.O.numpy(), expected.O.numpy(), atol=1e-12)

    def test_fit_and_predict_match_in_memory(self):
        for name, (memory, lazy) in self.models.items():
            with self.subTest(name):
                self.assert_same_fit(memory, lazy)
                probs = lazy.predict_proba(self.L_dask)
                self.assertTrue(is_dask_array(probs))
                self.assertEqual(probs.chunks, (self.L_dask.chunks[0], (self.k,)))
                self.assertEqual(probs.dtype, np.float64)
                expected = memory.predict_proba(self.L)
                np.testing.assert_allclose(probs.compute(), expected, atol=ATOL)
                for policy in ("hash", "first", "abstain"):
                    labels = lazy.predict(self.L_dask, break_ties=policy)
                    self.assertTrue(is_dask_array(labels))
                    self.assertEqual(labels.dtype, np.int64)
                    np.testing.assert_array_equal(
                        labels.compute(), memory.predict(self.L, break_ties=policy)
                    )

    def test_dependency_tables_match(self):
        memory, lazy = self.models["deps"]
        for name in ("mu_higher", "clique_patterns", "clique_pattern_counts"):
            np.testing.assert_allclose(
                getattr(lazy, name).double().numpy(),
                getattr(memory, name).double().numpy(),
                atol=ATOL,
            )

    def test_uneven_and_column_chunks(self):
        memory = self.models["deps"][0]
        chunked = da.from_array(self.L, chunks=((100, 5000, 3, 6897), (2, 4, 1)))
        lazy = fit(chunked, self.k, deps=self.deps)
        self.assert_same_fit(memory, lazy)
        probs = lazy.predict_proba(chunked)
        self.assertEqual(probs.chunks[0], (100, 5000, 3, 6897))
        np.testing.assert_allclose(
            probs.compute(), memory.predict_proba(self.L), atol=ATOL
        )

    def test_many_classes_match_in_memory(self):
        """k=20: sparse overlap counts per block (summed as sparse matrices),
        O stored sparse, posteriors by summed rows; the same as in memory."""
        L, _ = make_votes(6000, 5, 20, seed=4)
        L_dask = da.from_array(L, chunks=(1700, 5))
        for deps in ([], [(3, 4)]):
            with self.subTest(deps=deps):
                with stored_sparse(50):
                    memory, lazy = fit(L, 20, deps=deps), fit(L_dask, 20, deps=deps)
                self.assertEqual(lazy.O.layout, torch.sparse_coo)
                np.testing.assert_array_equal(
                    lazy.O.to_dense().numpy(), memory.O.to_dense().numpy()
                )
                np.testing.assert_allclose(mu_of(lazy), mu_of(memory), atol=ATOL)
                np.testing.assert_allclose(
                    lazy.predict_proba(L_dask).compute(),
                    memory.predict_proba(L),
                    atol=ATOL,
                )

    def test_predict_with_probs_and_score(self):
        memory, lazy = self.models["no deps"]
        labels, probs = lazy.predict(self.L_dask, break_ties="hash", return_probs=True)
        self.assertTrue(is_dask_array(labels) and is_dask_array(probs))
        Y_dask = da.from_array(self.Y, chunks=3000)
        for Y in (self.Y, Y_dask):
            score = lazy.score((self.L_dask, Y), break_ties="hash", verbose=False)
            expected = memory.score((self.L, self.Y), break_ties="hash", verbose=False)
            self.assertAlmostEqual(score, expected)

    def test_class_balance_from_dask_Y_dev(self):
        Y_dev = self.Y.copy()
        Y_dev[::3] = 0
        memory = fit(self.L, self.k, Y_dev=Y_dev)
        lazy = fit(self.L_dask, self.k, Y_dev=da.from_array(Y_dev, chunks=999))
        np.testing.assert_allclose(lazy.p, memory.p, atol=1e-15)
        self.assert_same_fit(memory, lazy)
        with self.assertRaisesRegex(ValueError, "Y_dev must have values in 0..3"):
            bad = Y_dev.copy()
            bad[5000] = 4
            fit(self.L_dask, self.k, Y_dev=da.from_array(bad, chunks=999))

    def test_bad_values_raise_naming_L(self):
        cases = {
            "larger than k=3": (7000, 2, 4),
            "negative value -1": (11999, 0, -1),
            "fractional value 1.5": (3, 3, 1.5),
            "NaN or infinite": (5, 5, np.nan),
        }
        for message, (row, column, value) in cases.items():
            with self.subTest(message):
                bad = self.L.astype(np.float64)
                bad[row, column] = value
                L_bad = da.from_array(bad, chunks=2500)
                with self.assertRaisesRegex(ValueError, f"^L must .*{message}"):
                    fit(L_bad, self.k)
                lazy = self.models["no deps"][1]
                probs = lazy.predict_proba(L_bad)  # lazy: raises when computed
                with self.assertRaisesRegex(ValueError, f"^L must .*{message}"):
                    probs.compute()

    def test_wrong_number_of_sources(self):
        lazy = self.models["no deps"][1]
        with self.assertRaisesRegex(ValueError, "L has 6 sources"):
            lazy.predict_proba(self.L_dask[:, :6])

    def test_shards_from_npy_stack_and_zarr(self):
        memory = self.models["no deps"][0]
        with tempfile.TemporaryDirectory() as folder:
            stack = os.path.join(folder, "stack")
            da.to_npy_stack(stack, self.L_dask.astype(np.int8), axis=0)
            readers = {"npy stack": lambda: da.from_npy_stack(stack)}
            if HAS_ZARR:
                store = os.path.join(folder, "votes.zarr")
                da.to_zarr(da.from_array(self.L, chunks=(3000, 4)), store)
                readers["zarr"] = lambda: da.from_zarr(store)
            for name, read in readers.items():
                with self.subTest(name):
                    L = read()
                    lazy = fit(L, self.k)
                    self.assert_same_fit(memory, lazy)
                    np.testing.assert_allclose(
                        lazy.predict_proba(L).compute(),
                        memory.predict_proba(self.L),
                        atol=ATOL,
                    )

    def test_unknown_chunk_sizes(self):
        memory = self.models["no deps"][0]
        kept = self.L_dask[self.L_dask[:, 0] >= 0]  # every row, sizes unknown
        self.assertTrue(np.isnan(kept.shape[0]))
        self.assert_same_fit(memory, fit(kept, self.k))

    def test_L_is_never_gathered(self):
        calls = []
        original = da.Array.__array__

        def spy(array, *args, **kwargs):
            calls.append(array.shape)
            return original(array, *args, **kwargs)

        da.Array.__array__ = spy
        try:
            lazy = fit(self.L_dask, self.k, deps=self.deps)
            lazy.predict_proba(self.L_dask)
            analysis.lf_summary(self.L_dask, self.Y)
        finally:
            da.Array.__array__ = original
        self.assertEqual(calls, [])


class DaskBaselinesTest(DaskThreadedTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.L, cls.Y = make_votes(5000, 6, 3, seed=1, coverage=0.3)
        cls.L_dask = da.from_array(cls.L, chunks=1300)

    def test_majority_label_voter(self):
        model = MajorityLabelVoter(k=3)
        probs = model.predict_proba(self.L_dask)
        self.assertTrue(is_dask_array(probs))
        self.assertEqual(probs.chunks[0], self.L_dask.chunks[0])
        np.testing.assert_array_equal(probs.compute(), model.predict_proba(self.L))
        for policy in ("hash", "first", "abstain"):
            np.testing.assert_array_equal(
                model.predict(self.L_dask, break_ties=policy).compute(),
                model.predict(self.L, break_ties=policy),
            )
        bad = self.L.copy()
        bad[4000, 1] = 5
        with self.assertRaisesRegex(ValueError, "^L must .*larger than k=3"):
            model.predict_proba(da.from_array(bad, chunks=1300)).compute()

    def test_majority_class_and_random_voters(self):
        model = MajorityClassVoter(k=3)
        model.train_model([0.2, 0.5, 0.3])
        np.testing.assert_array_equal(
            model.predict_proba(self.L_dask).compute(), model.predict_proba(self.L)
        )
        np.random.seed(0)
        probs = RandomVoter(k=3).predict_proba(self.L_dask)
        self.assertTrue(is_dask_array(probs))
        values = probs.compute()
        np.testing.assert_array_equal(values, probs.compute())
        np.testing.assert_allclose(values.sum(axis=1), 1.0)


class DaskAnalysisTest(DaskThreadedTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        L, Y = make_votes(6000, 6, 3, seed=2, coverage=0.4)
        L[:, 4] = np.where(L[:, 4] > 0, 2, 0)  # one polarity
        L[:, 5] = 0  # never votes
        Y[::4] = 0  # no gold label
        cls.L, cls.Y = L, Y
        cls.L_dask = da.from_array(L, chunks=(1100, 4))
        cls.Y_dask = da.from_array(Y, chunks=2000)

    def test_matrix_fractions(self):
        for name in ("label_coverage", "label_overlap", "label_conflict"):
            with self.subTest(name):
                function = getattr(analysis, name)
                self.assertEqual(function(self.L_dask), function(self.L))

    def test_per_source_statistics(self):
        calls = {
            "lf_polarities": {},
            "lf_coverages": {},
            "lf_overlaps": {"normalize_by_coverage": True},
            "lf_conflicts": {"normalize_by_overlaps": True},
        }
        for name, kwargs in calls.items():
            with self.subTest(name):
                function = getattr(analysis, name)
                expected = function(self.L, **kwargs)
                found = function(self.L_dask, **kwargs)
                if name == "lf_polarities":
                    self.assertEqual(found, expected)
                else:
                    np.testing.assert_array_equal(found, expected)
        np.testing.assert_array_equal(
            analysis.lf_overlaps(self.L_dask), analysis.lf_overlaps(self.L)
        )
        np.testing.assert_array_equal(
            analysis.lf_conflicts(self.L_dask), analysis.lf_conflicts(self.L)
        )

    def test_with_gold_labels(self):
        expected = analysis.lf_empirical_accuracies(self.L, self.Y)
        for Y in (self.Y, self.Y_dask):
            found = analysis.lf_empirical_accuracies(self.L_dask, Y)
            np.testing.assert_array_equal(found, expected)
        names = [f"lf{j}" for j in range(6)]
        summary = analysis.lf_summary(
            self.L_dask, self.Y_dask, lf_names=names, est_accs=np.ones(6)
        )
        expected = analysis.lf_summary(
            self.L, self.Y, lf_names=names, est_accs=np.ones(6)
        )
        self.assertTrue(summary.equals(expected))
        self.assertTrue(
            analysis.lf_summary(self.L_dask).equals(analysis.lf_summary(self.L))
        )

    def test_bad_gold_labels(self):
        bad = self.Y.copy()
        bad[4321] = -1
        with self.assertRaisesRegex(ValueError, "found the value -1 at item 4321"):
            analysis.lf_summary(self.L_dask, da.from_array(bad, chunks=1000))
        with self.assertRaisesRegex(ValueError, "Y must have 6000 labels; found 10"):
            analysis.lf_empirical_accuracies(self.L_dask, da.zeros(10, dtype=int))


_IMPORT_CHECK = """
import json, sys
import metal, metal.label_model, metal.analysis, metal.classifier
from metal.label_model import LabelModel
LabelModel(k=2, verbose=False).train_model([[1, 2], [2, 2], [1, 0]])
print(json.dumps(sorted(n for n in sys.modules if n.split(".")[0] in
                        ("dask", "distributed"))))
"""


class DaskImportTest(unittest.TestCase):
    def test_metal_never_imports_dask(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
        done = subprocess.run(
            [sys.executable, "-c", _IMPORT_CHECK],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        self.assertEqual(json.loads(done.stdout.strip().splitlines()[-1]), [])


def _synthetic_dask_votes(n, m, k, rows_per_block, seed=0):
    """Votes ``[n, m]`` (int8) built lazily by dask's own random generators,
    so that the blocks are generated on the workers, never in the client."""
    state = da.random.RandomState(seed)
    chunks = (rows_per_block, m)
    Y = state.randint(1, k + 1, size=(n, 1), chunks=(rows_per_block, 1))
    accuracy = np.linspace(0.6, 0.9, m)
    right = state.random_sample((n, m), chunks=chunks) < accuracy
    wrong = (Y - 1 + state.randint(1, k, size=(n, m), chunks=chunks)) % k + 1
    votes = da.where(right, Y, wrong)
    voted = state.random_sample((n, m), chunks=chunks) < 0.3
    return da.where(voted, votes, 0).astype(np.int8)


def _worker_of_block(block, start=0):
    from distributed import get_worker

    return {get_worker().address}


@unittest.skipUnless(HAS_DASK, "dask and distributed are not installed")
class DaskDistributedTest(unittest.TestCase):
    """Two worker processes of a ``distributed.LocalCluster``."""

    @classmethod
    def setUpClass(cls):
        from distributed import Client, LocalCluster

        cls.cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        )
        cls.client = Client(cls.cluster)
        cls.workers = set(cls.client.scheduler_info()["workers"])

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.cluster.close()

    def test_fit_matches_in_memory(self):
        L, _ = make_votes(20000, 6, 2, seed=4)
        L_dask = da.from_array(L, chunks=2500)
        for deps in ([], [(4, 5)]):
            with self.subTest(deps=deps):
                memory = fit(L, 2, deps=deps)
                lazy = fit(L_dask, 2, deps=deps)
                np.testing.assert_allclose(mu_of(lazy), mu_of(memory), atol=ATOL)
                np.testing.assert_allclose(
                    lazy.predict_proba(L_dask).compute(),
                    memory.predict_proba(L),
                    atol=ATOL,
                )
        self.assertEqual(
            analysis.lf_summary(L_dask).to_dict(), analysis.lf_summary(L).to_dict()
        )

    def test_blocks_run_on_both_workers(self):
        from distributed import get_task_stream

        L = _synthetic_dask_votes(400_000, 10, 2, 25_000, seed=1)
        seen = reduce_row_blocks(
            L, _worker_of_block, combine=lambda parts: set().union(*parts)
        )
        self.assertEqual(seen, self.workers)
        with get_task_stream(self.client) as stream:
            fit(L, 2)
        ran = {task["worker"] for task in stream.data if "_run_block" in task["key"]}
        self.assertEqual(ran, self.workers)

    def test_millions_of_rows_fit_and_predict_lazily(self):
        start = time.perf_counter()
        n, m = 3_000_000, 20
        L = _synthetic_dask_votes(n, m, 2, 250_000, seed=2)
        model = fit(L, 2)
        accuracies = model.get_conditional_probs()[1::3, 0]  # P(vote 1 | Y = 1)
        self.assertTrue(np.all(np.diff(accuracies) > -0.05))
        probs = model.predict_proba(L)
        self.assertTrue(is_dask_array(probs))
        self.assertEqual(probs.shape, (n, 2))
        mean = probs.mean(axis=0).compute()
        np.testing.assert_allclose(mean.sum(), 1.0)
        np.testing.assert_allclose(mean, [0.5, 0.5], atol=0.01)
        labels = model.predict(L, break_ties="first")
        self.assertEqual(labels.blocks[3].compute().shape, (250_000,))
        self.assertLess(time.perf_counter() - start, 120)


if __name__ == "__main__":
    unittest.main()
