import contextlib
import io
import os
import pickle
import tempfile
import unittest
from unittest import mock

import numpy as np
import torch

from metal.classifier import Classifier
from metal.end_model import EndModel
from metal.label_model import LabelModel
from metal.mmtl import MultitaskClassifier
from tests.mmtl.helpers import two_op_task
from tests.test_io import BadFileChecks, assert_load_refused

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DATA_CODE = """
np.random.seed(1)
X = np.random.random((2000, 2)) * 2 - 1
Y = (X[:, 0] > X[:, 1] + 0.25).astype(int) + 1
X, Y = torch.tensor(X, dtype=torch.float), torch.tensor(Y)
train = (X[:1000], Y[:1000])
valid = (X[1000:1500], Y[1000:1500])
test = (X[1500:], Y[1500:])
"""


def make_data():
    namespace = {"np": np, "torch": torch}
    exec(DATA_CODE, namespace)
    return namespace["train"], namespace["valid"], namespace["test"]


class RunsCode:
    """Unpickling this calls ``os.mkdir(path)``: a stand-in for malicious code."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


class FixedVoter(Classifier):
    """A Classifier that learns nothing: the estimator base alone."""

    def __init__(self, k=3, **kwargs):
        super().__init__(k, {"seed": None, "verbose": False, **kwargs})
        self._record_init_kwargs(k=k, **kwargs)

    def predict_proba(self, X):
        X = np.asarray(X, dtype=np.float64)
        return X / X.sum(axis=1, keepdims=True)


class EstimatorBaseTestCase(unittest.TestCase):
    """predict_proba -> predict -> score, and save/load, with no training."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def test_predict_and_score_follow_predict_proba(self):
        model = FixedVoter()
        X = [[3, 1, 1], [1, 1, 3], [1, 3, 1], [2, 2, 1]]
        np.testing.assert_array_equal(
            model.predict(X, break_ties="abstain"), [1, 3, 2, 0]
        )
        np.testing.assert_array_equal(
            model.predict(X, break_ties="first"), [1, 3, 2, 1]
        )
        Y = [1, 3, 1, 0]  # the last item has no gold label
        self.assertAlmostEqual(model.score((X, Y), verbose=False), 2 / 3)
        soft = np.eye(3)[[0, 2, 1, 1]]  # probabilistic gold labels: 1, 3, 2, 2
        self.assertAlmostEqual(
            model.score((X, soft), break_ties="first", verbose=False), 0.75
        )
        self.assertFalse(hasattr(model, "train_model"))

    def test_save_and_load_without_training(self):
        model = FixedVoter(k=3, seed=5)
        path = os.path.join(self.tmp.name, "voter.pth")
        model.save(path)
        loaded = Classifier.load(path)
        self.assertIsInstance(loaded, FixedVoter)
        self.assertEqual((loaded.k, loaded.seed), (3, 5))


class DataTestCase(unittest.TestCase):
    """The ``make_data`` splits, with one torch thread (restored after)."""

    @classmethod
    def setUpClass(cls):
        cls.threads = torch.get_num_threads()
        torch.set_num_threads(1)
        cls.train, cls.valid, cls.test = make_data()

    @classmethod
    def tearDownClass(cls):
        torch.set_num_threads(cls.threads)


class ClassifierPredictionTestCase(DataTestCase):
    def test_predict_and_break_ties(self):
        em = EndModel([2, 10, 2], verbose=False, seed=1, checkpoint=False)
        em.train_model(self.train, n_epochs=3)
        Y_p, Y_s = em.predict(self.test[0], return_probs=True)
        self.assertEqual(Y_p.dtype, np.int64)
        self.assertEqual(set(np.unique(Y_p)) <= {1, 2}, True)
        np.testing.assert_array_equal(Y_p, Y_s.argmax(axis=1) + 1)
        ties = np.array([[0.5, 0.5], [0.2, 0.8]])
        self.assertEqual(em._break_ties(ties, "abstain").tolist(), [0, 2])
        self.assertEqual(em._break_ties(ties, 2).tolist(), [2, 2])
        with self.assertRaises(ValueError):
            em._break_ties(ties, "coin")

    def test_score_prints_only_when_verbose(self):
        em = EndModel([2, 10, 2], verbose=False, seed=1, checkpoint=False)
        em.train_model(self.train, n_epochs=2)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            scores = em.score(self.test, metric=["accuracy", "f1"], verbose=False)
        self.assertEqual(out.getvalue(), "")
        self.assertEqual(len(scores), 2)
        with contextlib.redirect_stdout(out):
            em.score(self.test, verbose=True)
        self.assertIn("Accuracy:", out.getvalue())


class PersistenceTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.train, self.valid, self.test = make_data()

    def tearDown(self):
        self.tmp.cleanup()

    def test_save_load_round_trip(self):
        em = EndModel(
            [2, 10, 2], seed=7, verbose=False, middle_batchnorm=True, checkpoint=False
        )
        em.train_model(self.train, n_epochs=2)
        path = os.path.join(self.tmp.name, "model.pth")
        em.save(path)
        loaded = EndModel.load(path)
        self.assertEqual(loaded.seed, 7)
        self.assertEqual(loaded.config["train_config"]["n_epochs"], 2)
        np.testing.assert_array_equal(
            em.predict_proba(self.test[0]), loaded.predict_proba(self.test[0])
        )
        state = torch.load(path)  # plain data: the weights_only default suffices
        self.assertIn("state_dict", state)

    def test_malicious_pickle_is_refused(self):
        target = os.path.join(self.tmp.name, "pwned")
        path = os.path.join(self.tmp.name, "evil.pth")
        with open(path, "wb") as f:
            pickle.dump(
                {"format": "snorkel-metal/1", "x": RunsCode(target)}, f, protocol=2
            )
        with self.assertRaises(ValueError):
            EndModel.load(path)
        self.assertFalse(os.path.exists(target))


# ------------------------------------------------ bad files given to a loader
def other_model_files(folder):
    """``{kind: path}``: a small file, in ``folder``, of each kind metal
    writes: model files of a Classifier (``FixedVoter``), an EndModel and a
    LabelModel, a MultitaskClassifier's weights and a training checkpoint."""
    end_model = EndModel([2, 3, 2], seed=1, verbose=False)
    models = {
        "classifier": FixedVoter(k=3, seed=5),
        "end_model": end_model,
        "label_model": LabelModel(k=2, verbose=False, seed=1),
        "mmtl": MultitaskClassifier([two_op_task("task1")]),
    }
    paths = {kind: os.path.join(folder, f"{kind}.pth") for kind in models}
    for kind, model in models.items():
        model.save(paths[kind])
    paths["checkpoint"] = os.path.join(folder, "checkpoint.pth")
    optimizer = torch.optim.SGD(end_model.parameters(), lr=0.1)
    torch.save(
        {
            "iteration": 1,
            "model": end_model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "lr_scheduler": None,
            "score": 0.5,
        },
        paths["checkpoint"],
    )
    return paths


class ModelFileChecks(BadFileChecks):
    """A loader on every kind of bad file: damaged, malicious, a folder, a
    missing path, a file of another kind; and ``save`` is atomic.

    (The damaged, malicious and folder cases are ``BadFileChecks``'.) A
    ``unittest.TestCase`` mixes this in and defines ``make_model()`` (a small
    model of the loader's kind, with a ``save`` method), ``load(path)`` and
    ``WRONG_KIND``: for each kind of ``other_model_files`` but its own, a
    fragment of the message that refuses such a file, or None for a kind the
    loader accepts.
    """

    KIND = None
    WRONG_KIND = {}
    WHAT = "model file"

    def setUp(self):
        super().setUp()
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.dir = tmp.name
        self.model = self.make_model()
        self.good = os.path.join(self.dir, "good.pth")
        self.model.save(self.good)

    def assert_refused(self, path, *fragments):
        return assert_load_refused(self, self.load, path, *fragments)

    def test_good_file_loads_in_zip_and_legacy_format(self):
        legacy = os.path.join(self.dir, "legacy.pth")
        contents = torch.load(self.good, weights_only=True)
        torch.save(contents, legacy, _use_new_zipfile_serialization=False)
        for path in (self.good, legacy):
            with self.subTest(path=path):
                self.load(path)

    def test_missing_path(self):
        path = os.path.join(self.dir, "missing.pth")
        with self.assertRaises(FileNotFoundError) as ctx:
            self.load(path)
        self.assertIn(repr(path), str(ctx.exception))

    def test_file_of_another_kind(self):
        folder = os.path.join(self.dir, "others")
        os.mkdir(folder)
        for kind, path in other_model_files(folder).items():
            if kind == self.KIND:
                continue
            with self.subTest(kind):
                fragment = self.WRONG_KIND[kind]
                if fragment is None:
                    self.load(path)
                else:
                    self.assert_refused(path, fragment)

    def test_crash_mid_save_keeps_the_old_file(self):
        before = _read_bytes(self.good)
        fresh = os.path.join(self.dir, "fresh.pth")

        for error in (OSError("disk full"), KeyboardInterrupt()):

            def crash(obj, f, *args, **kwargs):
                f.write(before[: len(before) // 2])
                raise error

            with self.subTest(error=type(error).__name__):
                with mock.patch("torch.save", crash):
                    for path in (self.good, fresh):
                        with self.assertRaises(type(error)):
                            self.model.save(path)
                self.assertEqual(_read_bytes(self.good), before)
                self.assertFalse(os.path.exists(fresh))
                self.assertEqual(sorted(os.listdir(self.dir)), ["good.pth"])
                self.load(self.good)


class BundleChecks(ModelFileChecks):
    """``ModelFileChecks`` for ``Classifier.load`` and its subclasses' loads,
    plus the structure of a model file: its entries and their types.

    The ``TestCase`` also defines ``damaged_contents(bundle)``: ``[(case,
    bundle)]``, copies of its model's file contents that read but cannot be
    restored."""

    ENTRIES = ("format", "class", "init_kwargs", "config", "state_dict", "extra_state")

    def write(self, name, contents):
        path = os.path.join(self.dir, name + ".pth")
        torch.save(contents, path)
        return path

    def bundle(self):
        return torch.load(self.good, weights_only=True)

    def test_missing_entries(self):
        for key in self.ENTRIES[1:]:
            with self.subTest(key):
                bundle = self.bundle()
                del bundle[key]
                path = self.write("no_" + key, bundle)
                self.assert_refused(path, "is damaged", f"lacks its {key!r} entry")

    def test_entries_of_the_wrong_type(self):
        tensors = {"w": torch.ones(2)}
        for key, value, fragment in [
            ("class", 3, "'class' entry is of type int, not str"),
            ("class", None, "'class' entry is of type NoneType, not str"),
            ("state_dict", [1, 2], "'state_dict' entry is of type list, not dict"),
            ("state_dict", {"w": 1.0}, "'state_dict' entry is not a state dict"),
            ("state_dict", {0: tensors["w"]}, "'state_dict' entry is not a state dict"),
            ("config", [1], "'config' entry is of type list, not dict"),
            (
                "init_kwargs",
                "k=2",
                "'init_kwargs' entry is of type str, not dict or None",
            ),
            ("extra_state", [1], "'extra_state' entry is of type list, not dict"),
        ]:
            with self.subTest(key=key, value=value):
                path = self.write("bad_" + key, dict(self.bundle(), **{key: value}))
                self.assert_refused(path, "is damaged", fragment)

    def test_not_a_model_file(self):
        bundle = self.bundle()
        for name, contents in [
            ("list", [1, 2]),
            ("tensor", torch.ones(3)),
            ("empty dict", {}),
            ("other format", dict(bundle, format="another/2")),
            ("no format", {k: v for k, v in bundle.items() if k != "format"}),
        ]:
            with self.subTest(name):
                path = self.write(name.replace(" ", "_"), contents)
                self.assert_refused(path, "is not a model file written by")

    def test_unknown_class(self):
        for name in ("metal.nothing:Nope", "os:system", "builtins:eval", "garbage"):
            with self.subTest(name):
                path = self.write("class", dict(self.bundle(), **{"class": name}))
                self.assert_refused(path, f"Model class {name!r} is not available")

    def test_contents_that_cannot_be_restored(self):
        for case, bundle in self.damaged_contents(self.bundle()):
            with self.subTest(case):
                path = self.write("damaged", bundle)
                self.assert_refused(path, "is damaged: its")


def _read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


class ClassifierFileTestCase(BundleChecks, unittest.TestCase):
    """``Classifier.load`` (any model class) on bad files."""

    KIND = "classifier"
    WRONG_KIND = {
        "end_model": None,
        "label_model": None,
        "mmtl": "holds a bare state dict, not a model file",
        "checkpoint": "is a training checkpoint, not a model file",
    }

    def make_model(self):
        return FixedVoter(k=3, seed=5)

    def load(self, path):
        return Classifier.load(path)

    def damaged_contents(self, bundle):
        return [("unknown weights", dict(bundle, state_dict={"w": torch.ones(2)}))]

    def test_subclass_loader_refuses_other_classes(self):
        path = os.path.join(self.dir, "end_model.pth")
        EndModel([2, 2], verbose=False).save(path)
        with self.assertRaises(ValueError) as ctx:
            FixedVoter.load(path)
        self.assertIn(
            "holds a model of class EndModel, not FixedVoter; load it with "
            "EndModel.load",
            str(ctx.exception),
        )


if __name__ == "__main__":
    unittest.main()
