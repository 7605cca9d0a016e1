import os
import tempfile
import unittest

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from metal.mmtl import (
    ClassificationTask,
    DictDataLoader,
    DictDataset,
    MultitaskClassifier,
    Operation,
    Task,
)
from tests.mmtl.helpers import identity_linear, points_loader, two_op_task
from tests.test_classifier import ModelFileChecks

NUM_EXAMPLES = 10


class CountingModule(nn.Module):
    """Identity that counts its calls."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x


class ParityVoter(nn.Module):
    """Logits voting for class ``x0 % 2`` (no parameters to train)."""

    def forward(self, x):
        odd = (x[:, 0].long() % 2).float()
        return torch.stack([1 - odd, odd], dim=1) * 10


class ModulePoolTest(unittest.TestCase):
    def test_pool_sizes(self):
        one = MultitaskClassifier([two_op_task("task1")])
        self.assertEqual(len(one.module_pool), 2)
        disjoint = MultitaskClassifier(
            [two_op_task("task1"), two_op_task("task2", "linear3", "linear4")]
        )
        self.assertEqual(len(disjoint.module_pool), 4)
        shared = MultitaskClassifier([two_op_task("task1"), two_op_task("task2")])
        self.assertEqual(len(shared.module_pool), 2)
        partial = MultitaskClassifier(
            [two_op_task("task1"), two_op_task("task2", "linear1", "linear3")]
        )
        self.assertEqual(len(partial.module_pool), 3)

    def test_modules_shared_by_name_are_one_module(self):
        task1, task2 = two_op_task("task1"), two_op_task("task2")
        model = MultitaskClassifier([task1, task2], dataparallel=False)
        self.assertIs(task2.module_pool["linear1"], model.module_pool["linear1"])
        self.assertIs(task1.module_pool["linear1"], model.module_pool["linear1"])
        self.assertEqual(len(list(model.parameters())), 4)

    def test_dataparallel_wrapping(self):
        model = MultitaskClassifier([two_op_task("task1")])
        self.assertIsInstance(model.module_pool["linear1"], nn.DataParallel)
        self.assertIn("module_pool.linear2.module.weight", model.state_dict())
        plain = MultitaskClassifier([two_op_task("task1")], dataparallel=False)
        self.assertIsInstance(plain.module_pool["linear1"], nn.Linear)

    def test_rebuilding_from_the_same_tasks_does_not_double_wrap(self):
        tasks = [two_op_task("task1"), two_op_task("task2")]
        MultitaskClassifier(tasks)
        again = MultitaskClassifier(tasks)
        self.assertIsInstance(again.module_pool["linear1"].module, nn.Linear)

    def test_bad_tasks(self):
        task1 = two_op_task("task1")
        with self.assertRaisesRegex(ValueError, "Found duplicate task"):
            MultitaskClassifier(tasks=[task1, task1])
        with self.assertRaisesRegex(ValueError, "Unrecognized task type"):
            MultitaskClassifier(tasks=[task1, {"fake_task": 42}])
        with self.assertRaises(TypeError):
            MultitaskClassifier([task1], colour="blue")
        with self.assertRaisesRegex(ValueError, "Unsuccessful operation"):
            task = two_op_task("task1")
            task.op_sequence[0].inputs[0] = (0, 0)
            model = MultitaskClassifier(tasks=[task])
            dataset = points_loader("task1").dataset
            model.calculate_loss(dataset.X_dict, dataset.Y_dict)

    def test_missing_input_field_names_op_and_key(self):
        model = MultitaskClassifier([two_op_task("task1", field="coords")])
        X = {"data": torch.zeros(2, 2)}
        with self.assertRaisesRegex(
            ValueError, r"Unsuccessful operation.*linear1.*'coords'"
        ):
            model(X, ["task1"])
        with self.assertRaisesRegex(ValueError, "Unknown task 'task9'"):
            model(X, ["task9"])

    def test_tasks_property_is_read_only_and_ordered(self):
        model = MultitaskClassifier([two_op_task("b"), two_op_task("a")])
        self.assertEqual(list(model.tasks), ["b", "a"])
        self.assertEqual(model.task_names, {"a", "b"})
        with self.assertRaises(TypeError):
            model.tasks["c"] = None

    def test_add_and_remove_tasks(self):
        model = MultitaskClassifier([two_op_task("task1")])
        model.add_task(two_op_task("task2", "linear1", "linear3"))
        self.assertEqual(len(model.module_pool), 3)
        model.remove_task("task2")
        self.assertEqual(sorted(model.module_pool), ["linear1", "linear2"])
        self.assertEqual(list(model.tasks), ["task1"])
        model.remove_task("task1")
        self.assertEqual(len(model.module_pool), 0)
        with self.assertRaisesRegex(ValueError, "task1"):
            model.remove_task("task1")

    def test_no_input_spec_gets_all_outputs(self):
        dataset = points_loader("task").dataset
        task = Task(
            "task",
            nn.ModuleDict({"identity": nn.Identity()}),
            [Operation("identity", [])],
        )
        model = MultitaskClassifier(tasks=[task], dataparallel=False)
        outputs = model.forward(dataset.X_dict, ["task"])
        self.assertIn("_input_", outputs["identity"])


class ForwardAndLossTest(unittest.TestCase):
    def test_ops_run_once_per_forward(self):
        counter = CountingModule()
        pool = {
            "trunk": counter,
            "head1": identity_linear(),
            "head2": identity_linear(),
        }
        tasks = [
            Task(
                name,
                nn.ModuleDict({"trunk": counter, head: pool[head]}),
                [Operation("trunk", [("_input_", "data")]), Operation(head, ["trunk"])],
            )
            for name, head in (("task1", "head1"), ("task2", "head2"))
        ]
        model = MultitaskClassifier(tasks)
        X = torch.ones(4, 2)
        Y = torch.LongTensor([0, 1, 0, 1])
        model.calculate_loss({"data": X}, {"task1": Y, "task2": Y})
        self.assertEqual(counter.calls, 1)

    def test_gradients_reach_the_shared_trunk_from_both_tasks(self):
        torch.manual_seed(0)
        trunk = nn.Linear(2, 4)
        tasks = [
            Task(
                name,
                nn.ModuleDict({"trunk": trunk, f"{name}_head": nn.Linear(4, 2)}),
                [
                    Operation("trunk", [("_input_", "data")]),
                    Operation(f"{name}_head", ["trunk"]),
                ],
            )
            for name in ("task1", "task2")
        ]
        model = MultitaskClassifier(tasks, dataparallel=False)
        X = {"data": torch.randn(6, 2)}
        Y = torch.LongTensor([0, 1, 0, 1, 1, 0])
        grads = []
        for name in ("task1", "task2"):
            model.zero_grad()
            loss_dict, _ = model.calculate_loss(X, {name: Y})
            loss_dict[name].backward()
            grads.append(trunk.weight.grad.clone())
            other = "task2" if name == "task1" else "task1"
            self.assertIsNone(model.module_pool[f"{other}_head"].weight.grad)
        self.assertGreater(grads[0].abs().sum().item(), 0)
        self.assertFalse(torch.allclose(grads[0], grads[1]))

    def test_unlabelled_rows(self):
        model = MultitaskClassifier([two_op_task("task1")])
        dataset = points_loader("task1", labels=[-1] * NUM_EXAMPLES).dataset
        loss_dict, count_dict = model.calculate_loss(dataset.X_dict, dataset.Y_dict)
        self.assertEqual((loss_dict, count_dict), ({}, {}))
        labels = [1] * NUM_EXAMPLES
        labels[0] = -1
        dataset = points_loader("task1", labels=labels).dataset
        loss_dict, count_dict = model.calculate_loss(dataset.X_dict, dataset.Y_dict)
        self.assertEqual(count_dict["task1"], 9)
        full = model.loss_funcs["task1"](
            model(dataset.X_dict, ["task1"])["linear2"][1:], dataset.Y_dict["task1"][1:]
        )
        self.assertAlmostEqual(loss_dict["task1"].item(), full.item(), 6)

    def test_label_length_must_match_inputs(self):
        model = MultitaskClassifier([two_op_task("task1")])
        with self.assertRaisesRegex(
            ValueError, "'task1' has 3 rows but the inputs have 4"
        ):
            model.calculate_loss(
                {"data": torch.zeros(4, 2)}, {"task1": torch.zeros(3).long()}
            )

    def test_probabilistic_labels(self):
        from metal.mmtl import cross_entropy_with_probs

        task = two_op_task("task1")
        task.loss_func = cross_entropy_with_probs
        model = MultitaskClassifier([task])
        X = {"data": torch.FloatTensor([[1, 0], [0, 1]])}
        probs = torch.FloatTensor([[0.9, 0.1], [0.2, 0.8]])
        loss_dict, count_dict = model.calculate_loss(X, {"task1": probs})
        expected = cross_entropy_with_probs(X["data"], probs)
        self.assertAlmostEqual(loss_dict["task1"].item(), expected.item(), 6)
        self.assertEqual(count_dict["task1"], 2)

    def test_one_and_zero_indexed_tasks_in_one_model(self):
        seed_task = two_op_task("seed_task")
        v05_task = ClassificationTask("v05_task", input_module=identity_linear())
        model = MultitaskClassifier([seed_task, v05_task])
        X = {"data": torch.FloatTensor([[2, 0], [0, 2], [1, 0]])}
        Y = {
            "seed_task": torch.LongTensor([0, 1, -1]),
            "v05_task": torch.LongTensor([[1], [2], [0]]),
        }
        loss_dict, count_dict = model.calculate_loss(X, Y)
        self.assertEqual(count_dict, {"seed_task": 2, "v05_task": 2})
        self.assertAlmostEqual(
            loss_dict["seed_task"].item(), loss_dict["v05_task"].item(), 6
        )
        loader = DictDataLoader(DictDataset("d", "test", X, Y), batch_size=2)
        scores = model.score([loader])
        self.assertEqual(scores["seed_task/d/test/accuracy"], 1.0)
        self.assertEqual(scores["v05_task/d/test/accuracy"], 1.0)
        preds = model.predict(loader, return_preds=True)["preds"]
        self.assertEqual(preds["seed_task"][:2].tolist(), [0, 1])
        self.assertEqual(preds["v05_task"][:2].tolist(), [1, 2])


class OpNameClashTest(unittest.TestCase):
    """Outputs are cached by op name: one name must mean one computation."""

    def test_one_op_name_for_two_modules_is_refused_at_build(self):
        task1 = two_op_task("task1", first="encoder", second="head1")
        task2 = Task(
            "task2",
            nn.ModuleDict({"encoder3": nn.Linear(2, 3), "head2": nn.Linear(3, 3)}),
            [
                Operation("encoder3", [("_input_", "data")], name="encoder"),
                Operation("head2", ["encoder"]),
            ],
        )
        message = r"op name 'encoder' is used in tasks 'task1' and 'task2'"
        with self.assertRaisesRegex(ValueError, message):
            MultitaskClassifier([task1, task2])
        model = MultitaskClassifier([task1])
        with self.assertRaisesRegex(ValueError, message):
            model.add_task(task2)
        self.assertEqual(list(model.tasks), ["task1"])

    def test_one_op_name_for_two_modules_within_a_task(self):
        with self.assertRaisesRegex(ValueError, "'step' is used twice"):
            Task(
                "task",
                nn.ModuleDict({"a": identity_linear(), "b": identity_linear()}),
                [
                    Operation("a", [("_input_", "data")], name="step"),
                    Operation("b", ["step"], name="step"),
                ],
            )

    def test_shared_name_on_other_inputs_runs_per_dataset_not_together(self):
        # One module applied to each task's own input field (the seed
        # tutorial's pattern) works when each forward pass runs one task.
        shared = identity_linear()
        tasks = [
            Task(
                name,
                nn.ModuleDict({"base": shared, f"head_{name}": identity_linear()}),
                [
                    Operation("base", [("_input_", field)]),
                    Operation(f"head_{name}", ["base"]),
                ],
            )
            for name, field in (("t1", "x1"), ("t2", "x2"))
        ]
        model = MultitaskClassifier(tasks)
        X = {"x1": torch.ones(3, 2), "x2": 2 * torch.ones(3, 2)}
        out1 = model.forward(X, ["t1"])
        out2 = model.forward(X, ["t2"])
        self.assertTrue(torch.equal(out2["head_t2"], 2 * out1["head_t1"]))
        with self.assertRaisesRegex(ValueError, "'t1' and 't2' both run an op named"):
            model.forward(X, ["t1", "t2"])


class PredictAndScoreTest(unittest.TestCase):
    def setUp(self):
        self.model = MultitaskClassifier([two_op_task("task1")])
        self.loader = points_loader("task1")

    def test_predict(self):
        results = self.model.predict(self.loader)
        self.assertEqual(sorted(results), ["golds", "probs"])
        np.testing.assert_array_equal(
            results["golds"]["task1"], self.loader.dataset.Y_dict["task1"].numpy()
        )
        np.testing.assert_array_equal(
            results["probs"]["task1"], np.ones((NUM_EXAMPLES, 2)) * 0.5
        )
        results = self.model.predict(self.loader, return_preds=True)
        self.assertEqual(sorted(results), ["golds", "preds", "probs"])
        np.testing.assert_array_equal(
            results["preds"]["task1"], [0, 1, 0, 1, 0, 0, 0, 0, 1, 1]
        )

    def test_score(self):
        metrics = self.model.score([self.loader])
        self.assertEqual(metrics, {"task1/dataset/train/accuracy": 0.4})
        df = self.model.score([self.loader], as_dataframe=True)
        self.assertIsInstance(df, pd.DataFrame)
        self.assertEqual(df["score"].tolist(), [0.4])

    def test_remapped_labels(self):
        X = torch.FloatTensor([[i, i] for i in range(NUM_EXAMPLES)])
        Y = torch.ones(NUM_EXAMPLES).long()
        dataset = DictDataset(
            "dataset", "train", {"data": X}, {"task1": Y, "other_task": Y}
        )
        loader = DictDataLoader(dataset, batch_size=2)
        loss_dict, _ = self.model.calculate_loss(dataset.X_dict, dataset.Y_dict)
        self.assertEqual(list(loss_dict), ["task1"])
        self.assertNotIn("other_task", self.model.predict(loader)["golds"])
        scores = self.model.score([loader])
        self.assertNotIn("other_task/dataset/train/accuracy", scores)
        results = self.model.predict(loader, remap_labels={"other_task": "task1"})
        self.assertIn("other_task", results["golds"])
        scores = self.model.score([loader], remap_labels={"other_task": "task1"})
        self.assertIn("other_task/dataset/train/accuracy", scores)
        scores = self.model.score([loader], remap_labels={"task1": None})
        self.assertEqual(scores, {})
        with self.assertRaisesRegex(ValueError, "'nope'"):
            self.model.score([loader], remap_labels={"other_task": "nope"})

    def test_shuffled_and_unshuffled_loaders_score_alike(self):
        task = Task(
            "task1",
            nn.ModuleDict({"voter": ParityVoter()}),
            [Operation("voter", [("_input_", "data")])],
        )
        model = MultitaskClassifier([task])
        labels = [0, 1, 0, 1, 0, 1, 1, 0, 1, 0]  # 6 of 10 match the parity
        for shuffle in (False, True):
            loader = points_loader("task1", labels=labels, shuffle=shuffle)
            self.assertAlmostEqual(
                model.score([loader])["task1/dataset/train/accuracy"], 0.6
            )

    def test_empty_loader_scores_nothing(self):
        empty = DictDataLoader(
            DictDataset("InvCircleDataset", "train", {}, {}), batch_size=32
        )
        self.assertEqual(self.model.score([empty]), {})

    def test_save_and_load(self):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "sub", "model.pth")
            self.model.save(path)
            other = MultitaskClassifier([two_op_task("task1")])
            with torch.no_grad():
                other.module_pool["linear2"].module.weight.add_(1.0)
            self.assertFalse(
                torch.equal(
                    other.module_pool["linear2"].module.weight,
                    self.model.module_pool["linear2"].module.weight,
                )
            )
            other.load(path)
            self.assertTrue(
                torch.equal(
                    other.module_pool["linear2"].module.weight,
                    self.model.module_pool["linear2"].module.weight,
                )
            )
            plain = MultitaskClassifier([two_op_task("task1")], dataparallel=False)
            plain.load(path)  # weights saved with DataParallel load without it
            self.assertTrue(
                torch.equal(plain.module_pool["linear2"].weight, torch.eye(2))
            )

    def test_load_refuses_pickled_code(self):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.pkl")
            torch.save(self.model, path)  # a whole-model pickle
            with self.assertRaises(ValueError):
                MultitaskClassifier([two_op_task("task1")]).load(path)


class MultitaskClassifierFileTest(ModelFileChecks, unittest.TestCase):
    """``MultitaskClassifier.load`` on damaged, malicious and foreign files
    (the checks of ``tests.test_classifier.ModelFileChecks``), and on weights
    that do not fit, which leave the model unchanged."""

    KIND = "mmtl"
    WRONG_KIND = {
        "classifier": "does not fit the model 'MultitaskClassifier': it lacks",
        "end_model": "does not fit the model 'MultitaskClassifier': it lacks",
        "label_model": "does not fit the model 'MultitaskClassifier': it lacks",
        "checkpoint": "does not fit the model 'MultitaskClassifier': it lacks",
    }

    def make_model(self):
        return MultitaskClassifier([two_op_task("task1")])

    def load(self, path):
        model = self.make_model()
        model.load(path)
        return model

    def write(self, name, contents):
        path = os.path.join(self.dir, name + ".pth")
        torch.save(contents, path)
        return path

    def weights(self):
        return torch.load(self.good, weights_only=True)

    def test_checkpoint_of_this_model_loads(self):
        path = self.write("checkpoint", {"model": self.weights(), "iteration": 2})
        self.load(path)

    def test_state_dict_entries_of_the_wrong_type(self):
        for name, contents in [
            ("model list", {"model": [1, 2], "iteration": 2}),
            ("model values", {"model": {"w": 1.0}}),
            ("state_dict string", {"class": "x", "state_dict": "weights"}),
            ("state_dict keys", {"state_dict": {0: torch.ones(2)}}),
        ]:
            with self.subTest(name):
                path = self.write(name.replace(" ", "_"), contents)
                self.assert_refused(path, "is damaged", "entry is not a state dict")

    def test_no_state_dict(self):
        for name, contents in [
            ("list", [1, 2]),
            ("tensor", torch.ones(2)),
            ("mixed dict", {"w": torch.ones(2), "note": "hello"}),
        ]:
            with self.subTest(name):
                path = self.write(name.replace(" ", "_"), contents)
                self.assert_refused(path, "holds no model state dict")

    def test_weights_that_do_not_fit_leave_the_model_unchanged(self):
        weights = self.weights()
        name = next(n for n in weights if n.endswith("linear2.module.weight"))
        reshaped = dict(weights, **{name: torch.zeros(3, 3)})
        missing = {k: v for k, v in weights.items() if k != name}
        extra = dict(weights, **{"module_pool.other.weight": torch.ones(2)})
        for case, contents, fragment in [
            ("reshaped", reshaped, f"it has {name} (3, 3) instead of (2, 2)"),
            ("missing", missing, f"it lacks {name}"),
            ("extra", extra, "it has unknown weights module_pool.other.weight"),
            ("empty", {}, "it lacks"),
        ]:
            with self.subTest(case):
                path = self.write(case, contents)
                model = self.make_model()
                with torch.no_grad():
                    for parameter in model.parameters():
                        parameter.fill_(7.0)
                with self.assertRaises(ValueError) as ctx:
                    model.load(path)
                self.assertIn(repr(path), str(ctx.exception))
                self.assertIn(fragment, str(ctx.exception))
                for parameter in model.parameters():
                    self.assertTrue(torch.all(parameter == 7.0))


if __name__ == "__main__":
    unittest.main()
