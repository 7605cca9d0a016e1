import contextlib
import io
import os
import tempfile
import unittest

import numpy as np
import torch
import torch.nn as nn

from metal.end_model import IdentityModule
from metal.mmtl import (
    ClassificationTask,
    MetalModel,
    MmtlDataLoader,
    MmtlDataset,
    Payload,
    Scorer,
)
from metal.mmtl.metal_model import model_defaults, probs_to_preds, validate_targets


class Counting(nn.Module):
    def __init__(self, module):
        super().__init__()
        self.module = module
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.module(x)


def fixed_linear(weight, bias=(0.0, 0.0)):
    layer = nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))
    return layer


class MetalModelTest(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        self.trunk = Counting(nn.Linear(2, 2))
        self.tasks = [
            ClassificationTask(
                "task0",
                input_module=self.trunk,
                head_module=fixed_linear([[1, 0], [0, 1]]),
            ),
            ClassificationTask(
                "task1",
                input_module=self.trunk,
                head_module=fixed_linear([[0, 1], [1, 0]]),
            ),
        ]
        self.model = MetalModel(self.tasks, verbose=False, device=-1)
        X = torch.FloatTensor([[2, 0], [0, 2], [1, 3], [3, 1]])
        self.dataset = MmtlDataset(
            {"data": X, "uids": ["a", "b", "c", "d"]},
            {
                "labelset0": torch.LongTensor([1, 2, 2, 0]),
                "labelset1": torch.LongTensor([0, 0, 0, 0]),
            },
        )
        self.payload = Payload(
            "payload0_valid",
            MmtlDataLoader(self.dataset, batch_size=2),
            {"labelset0": "task0", "labelset1": "task1"},
            "valid",
        )

    def test_config_and_structure(self):
        self.assertEqual(set(self.model.config), set(model_defaults))
        self.assertIsInstance(self.model.config["seed"], int)
        self.assertEqual(set(self.model.task_map), {"task0", "task1"})
        self.assertEqual(len(self.model.tasks), 2)
        # the shared input module is pooled once; middles are the shared default
        self.assertEqual(len(self.model.module_pool), 4)
        self.assertIs(
            self.model.input_modules["task0"], self.model.input_modules["task1"]
        )
        self.assertIsNot(
            self.model.head_modules["task0"], self.model.head_modules["task1"]
        )
        with self.assertWarnsRegex(UserWarning, "MetalModel .*'colour'"):
            model = MetalModel(self.tasks, verbose=False, colour="blue")
        self.assertEqual(model.config["colour"], "blue")  # inserted, as in MeTaL
        with self.assertRaises(NotImplementedError):
            MetalModel(self.tasks, verbose=False, fp16=True)
        self.model.update_config({"verbose": True})
        self.assertTrue(self.model.config["verbose"])

    def test_verbose_construction_prints(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            MetalModel(self.tasks, device=-1)
        self.assertIn("trainable parameters", out.getvalue())

    def test_forward_computes_shared_input_once(self):
        X = {"data": torch.zeros(3, 2)}
        out = self.model(X, ["task0", "task1"])
        self.assertEqual(set(out), {"task0", "task1"})
        self.assertEqual(out["task0"]["data"].shape, (3, 2))
        self.assertEqual(self.trunk.calls, 1)

    def test_different_inputs_sharing_a_default_middle_stay_apart(self):
        a = ClassificationTask("a", input_module=fixed_linear([[1, 0], [0, 1]]))
        b = ClassificationTask("b", input_module=fixed_linear([[0, 1], [1, 0]]))
        model = MetalModel([a, b], verbose=False, device=-1)
        out = model({"data": torch.FloatTensor([[1, 2]])}, ["a", "b"])
        self.assertTrue(torch.equal(out["a"]["data"], torch.FloatTensor([[1, 2]])))
        self.assertTrue(torch.equal(out["b"]["data"], torch.FloatTensor([[2, 1]])))

    def test_calculate_loss(self):
        X, Ys = next(iter(self.payload.data_loader))
        loss_dict, count_dict = self.model.calculate_loss(
            X, Ys, "payload0_valid", self.payload.labels_to_tasks
        )
        self.assertEqual(list(loss_dict), ["task0/payload0_valid/labelset0/loss"])
        self.assertEqual(
            count_dict,
            {
                "task0/payload0_valid/labelset0/loss": 2,
                "task1/payload0_valid/labelset1/loss": 0,
            },
        )
        self.tasks[0].loss_multiplier = 3.0
        tripled, _ = self.model.calculate_loss(
            X, Ys, "payload0_valid", self.payload.labels_to_tasks
        )
        self.assertAlmostEqual(
            tripled["task0/payload0_valid/labelset0/loss"].item(),
            3 * loss_dict["task0/payload0_valid/labelset0/loss"].item(),
            5,
        )
        with self.assertRaisesRegex(ValueError, "'task9'"):
            self.model.calculate_loss(X, Ys, "p", {"labelset0": "task9"})

    def test_probs_predictions_and_scores(self):
        probs = self.model.calculate_probs({"data": torch.zeros(3, 2)}, ["task0"])
        self.assertEqual(len(probs["task0"]), 3)
        self.assertEqual(probs["task0"][0].shape, (2,))
        Ys, Ys_probs, Ys_preds = self.model.predict_with_gold(
            self.payload, return_preds=True
        )
        self.assertEqual(Ys["labelset0"][0].shape, (1,))
        self.assertEqual(len(Ys_probs["task0"]), 4)
        self.assertTrue(all(p in (1, 2) for p in Ys_preds["task0"]))
        Ys, _ = self.model.predict_with_gold(self.payload, max_examples=3)
        self.assertEqual(len(Ys["labelset0"]), 3)
        preds = self.model.predict(self.payload, task_name="task0")
        preds2, probs2 = self.model.predict(
            self.payload, task_name="task0", return_probs=True
        )
        self.assertEqual([int(p) for p in preds], [int(p) for p in preds2])
        self.assertEqual(
            len(self.model.predict_probs(self.payload, task_name="task0")), 4
        )
        with self.assertRaisesRegex(ValueError, "task_name is required"):
            self.model.predict(self.payload)

    def test_score_keys_and_targets(self):
        scores = self.model.score(self.payload, verbose=False)
        self.assertEqual(
            set(scores),
            {
                "task0/payload0_valid/labelset0/accuracy",
                "task1/payload0_valid/labelset1/accuracy",
            },
        )
        single = self.model.score(
            self.payload, "task0/payload0_valid/labelset0/accuracy", verbose=False
        )
        self.assertEqual(single, scores["task0/payload0_valid/labelset0/accuracy"])
        self.assertEqual(
            self.model.score(self.payload, ["task0/other_payload/labelset0/accuracy"]),
            {},
        )
        with self.assertRaisesRegex(ValueError, "task/payload/label_set/metric"):
            self.model.score(self.payload, ["accuracy"])
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.model.score(self.payload)
        self.assertIn("labelset0/accuracy", out.getvalue())

    def test_validate_targets(self):
        validate_targets(self.payload, "task0", ["labelset0"])
        with self.assertRaisesRegex(ValueError, "payload0_valid"):
            validate_targets(self.payload, ["task7"], None)
        with self.assertRaisesRegex(ValueError, "payload0_valid"):
            validate_targets(self.payload, None, "labelset7")

    def test_probs_to_preds(self):
        np.testing.assert_array_equal(
            probs_to_preds(np.array([[0.5, 0.5], [0.2, 0.8]])), [1, 2]
        )

    def test_weights_round_trip(self):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "weights.pth")
            self.model.save_weights(path)
            torch.manual_seed(5)
            tasks = [
                ClassificationTask(
                    "task0", input_module=nn.Linear(2, 2), head_module=nn.Linear(2, 2)
                ),
                ClassificationTask(
                    "task1", input_module=IdentityModule(), head_module=nn.Linear(2, 2)
                ),
            ]
            other = MetalModel(tasks, verbose=False, device=-1)
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                other.load_weights(path)  # key mismatch: loads what matches
            self.assertIn("do not match", out.getvalue())
            wide = MetalModel(
                [
                    ClassificationTask(
                        "task0",
                        input_module=nn.Linear(2, 3),
                        head_module=nn.Linear(3, 2),
                    )
                ],
                verbose=False,
                device=-1,
            )
            before = {k: v.clone() for k, v in wide.state_dict().items()}
            with self.assertRaisesRegex(ValueError, "do not fit this model"):
                wide.load_weights(path)
            for key, value in wide.state_dict().items():
                self.assertTrue(torch.equal(value, before[key]))  # untouched
            same = MetalModel(
                [
                    ClassificationTask(
                        "task0",
                        input_module=Counting(nn.Linear(2, 2)),
                        head_module=nn.Linear(2, 2),
                    ),
                    ClassificationTask(
                        "task1",
                        input_module=self.tasks[1].input_module.module,
                        head_module=nn.Linear(2, 2),
                    ),
                ],
                verbose=False,
                device=-1,
                model_weights=path,
            )
            for key, value in self.model.state_dict().items():
                self.assertTrue(torch.equal(value, same.state_dict()[key]), key)


if __name__ == "__main__":
    unittest.main()


class ScorerConventionTest(unittest.TestCase):
    """A task scores with its own label convention, however its Scorer was
    built: ``Scorer([...])`` (positional, the Operation API's first argument)
    on a v0.5 task scores exactly like ``Scorer(standard_metrics=[...])``."""

    def score(self, scorer):
        X = torch.FloatTensor([[3, 0], [0, 3], [2, 1], [1, 2], [3, 1], [1, 3]])
        Y = torch.LongTensor([1, 2, 2, 1, 1, 0])  # the last item has no label
        task = ClassificationTask(
            "t", head_module=fixed_linear([[1, 0], [0, 1]]), scorer=scorer
        )
        model = MetalModel([task], verbose=False, device=-1)
        loader = MmtlDataLoader(MmtlDataset({"data": X}, {"t": Y}), batch_size=2)
        payload = Payload("p", loader, {"t": "t"}, "valid")
        return model.score(payload, verbose=False)

    def test_positional_list_scores_like_standard_metrics(self):
        names = ["accuracy", "precision", "recall", "f1", "roc-auc"]
        positional = self.score(Scorer(names))
        keyword = self.score(Scorer(standard_metrics=names))
        self.assertEqual(positional, keyword)
        # predictions [1, 2, 1, 2, 1] against gold [1, 2, 2, 1, 1]: MeTaL's
        # precision and recall of class 1 (the first class).
        self.assertAlmostEqual(keyword["t/p/t/accuracy"], 0.6)
        self.assertAlmostEqual(keyword["t/p/t/precision"], 2 / 3)
        self.assertAlmostEqual(keyword["t/p/t/recall"], 2 / 3)
        self.assertAlmostEqual(keyword["t/p/t/f1"], 2 / 3)
        self.assertIn("t/p/t/roc-auc", keyword)
