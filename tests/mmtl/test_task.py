import functools
import unittest

import torch
import torch.nn as nn
import torch.nn.functional as F

from metal.end_model import IdentityModule
from metal.mmtl import ClassificationTask, Operation, RegressionTask, Scorer, Task
from metal.mmtl.modules import MetalModule, MetalModuleWrapper


class OperationTest(unittest.TestCase):
    def test_name_defaults_to_module_name(self):
        op = Operation("linear1", [("_input_", "data")])
        self.assertEqual(op.name, "linear1")
        self.assertEqual(
            repr(op),
            "Operation(name=linear1, module_name=linear1, "
            "inputs=[('_input_', 'data')])",
        )

    def test_inputs_must_be_a_list(self):
        with self.assertRaisesRegex(ValueError, "'op'"):
            Operation("linear1", "data", name="op")


class TaskTest(unittest.TestCase):
    def setUp(self):
        self.pool = nn.ModuleDict(
            {
                "linear1": nn.Sequential(nn.Linear(2, 10), nn.ReLU()),
                "linear2": nn.Linear(10, 2),
            }
        )

    def test_named_ops(self):
        op0 = Operation(module_name="linear1", inputs=[("_input_", "data")], name="op0")
        op1 = Operation(module_name="linear2", inputs=[op0.name], name="op1")
        task = Task(name="task1", module_pool=self.pool, op_sequence=[op0, op1])
        self.assertEqual(task.name, "task1")
        self.assertEqual(repr(task), "Task(name=task1)")

    def test_defaults(self):
        task = Task(
            "t",
            self.pool,
            [
                Operation("linear1", [("_input_", "x")]),
                Operation("linear2", ["linear1"]),
            ],
        )
        self.assertIs(task.loss_func, F.cross_entropy)
        self.assertIsInstance(task.output_func, functools.partial)
        self.assertEqual(list(task.scorer.metrics), ["accuracy"])
        self.assertEqual((task.first_class, task.ignore_label), (0, -1))
        probs = task.output_func(torch.zeros(3, 2))
        self.assertTrue(torch.allclose(probs, torch.full((3, 2), 0.5)))

    def test_bad_ops_name_the_op(self):
        with self.assertRaisesRegex(ValueError, "operation 'head'.*'missing'"):
            Task(
                "t",
                self.pool,
                [
                    Operation("linear1", [("_input_", "x")]),
                    Operation("missing", ["linear1"], name="head"),
                ],
            )
        with self.assertRaisesRegex(ValueError, "operation 'linear2'.*'nowhere'"):
            Task(
                "t",
                self.pool,
                [
                    Operation("linear1", [("_input_", "x")]),
                    Operation("linear2", ["nowhere"]),
                ],
            )
        with self.assertRaisesRegex(ValueError, "'linear1' is used twice"):
            Task(
                "t",
                self.pool,
                [
                    Operation("linear1", [("_input_", "x")]),
                    Operation("linear1", ["linear1"]),
                ],
            )
        with self.assertRaisesRegex(ValueError, "Operations"):
            Task("t", self.pool, ["linear1"])
        with self.assertRaisesRegex(ValueError, "at least one"):
            Task("t", self.pool, [])
        with self.assertRaisesRegex(ValueError, "op name or an"):
            Task("t", self.pool, [Operation("linear1", [("_input_", "x", "y")])])


class HeadModule(MetalModule):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, X):
        return {"data": self.linear(X["data"])}


class ClassificationTaskTest(unittest.TestCase):
    def test_stages_are_wrapped_and_chained(self):
        head = HeadModule()
        task = ClassificationTask(
            "Circle",
            input_module=nn.Linear(2, 4),
            head_module=head,
            loss_multiplier=2.0,
        )
        self.assertEqual(
            repr(task), "ClassificationTask(name=Circle, loss_multiplier=2.0)"
        )
        self.assertIsInstance(task.input_module, MetalModuleWrapper)
        self.assertIs(task.head_module, head)
        self.assertEqual((task.first_class, task.ignore_label), (1, 0))
        names = [op.name for op in task.op_sequence]
        self.assertEqual(names[0], "Circle_input_module")
        self.assertTrue(names[2].startswith(names[1] + "|"))
        self.assertEqual(task.op_sequence[0].inputs, ["_input_"])

    def test_default_loss_and_output_use_one_indexed_labels(self):
        task = ClassificationTask("t")
        out = {"data": torch.tensor([[5.0, -5.0], [-5.0, 5.0]])}
        self.assertLess(
            task.loss_hat_func(out, torch.LongTensor([[1], [2]])).item(), 1e-3
        )
        self.assertTrue(torch.allclose(task.output_hat_func(out).sum(1), torch.ones(2)))
        self.assertIsInstance(task.middle_module.module, IdentityModule)

    def test_regression_task(self):
        task = RegressionTask("r", head_module=nn.Linear(3, 1))
        out = {"data": torch.tensor([[1.0], [2.0]])}
        self.assertAlmostEqual(
            task.loss_hat_func(out, torch.tensor([[1.0], [4.0]])).item(), 2.0
        )
        self.assertEqual(task.scorer.metrics, [])

    def test_stage_modules_must_be_modules(self):
        with self.assertRaisesRegex(ValueError, "head_module"):
            ClassificationTask("t", head_module="linear")

    def test_scorer_must_be_a_scorer(self):
        with self.assertRaisesRegex(ValueError, "scorer"):
            ClassificationTask("t", scorer=["accuracy"])
        self.assertIsInstance(
            ClassificationTask("t", scorer=Scorer(metrics=["f1"])).scorer, Scorer
        )


if __name__ == "__main__":
    unittest.main()
