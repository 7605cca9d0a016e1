"""The multi-task tutorial (seeds/002) run start to finish with ``metal.mmtl``
imports, as a new user would: two tasks sharing a trunk, then the "Your Turn"
third task (inv_circle)."""

import importlib.util
import os
import random
import subprocess
import sys
import unittest
from functools import partial

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from metal.mmtl import (
    DictDataLoader,
    DictDataset,
    MultitaskClassifier,
    Operation,
    Scorer,
    Task,
    Trainer,
)
from tests.mmtl.helpers import OneThreadTestCase

TUTORIALS = os.path.join(os.path.dirname(__file__), "..", "..", "tutorials")


def tutorial_utils():
    """``tutorials/utils.py`` (imported under a private name: ``utils`` is a
    common module name)."""
    spec = importlib.util.spec_from_file_location(
        "mmtl_tutorial_utils", os.path.join(TUTORIALS, "utils.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TutorialUtilsTest(unittest.TestCase):
    def test_splits_and_labels(self):
        utils = tutorial_utils()
        train, valid, test = utils.make_circle_dataset(1000, 1, seed=0)
        self.assertEqual(
            [len(part[0]) for part in (train, valid, test)], [800, 100, 100]
        )
        X, Y = train
        self.assertEqual(X.shape, (800, 2))
        self.assertEqual(set(Y), {0, 1})
        np.testing.assert_array_equal(Y, (X[:, 0] ** 2 + X[:, 1] ** 2 < 1).astype(int))
        X, Y = utils.make_inv_circle_dataset(1000, 1, seed=0)[0]
        np.testing.assert_array_equal(Y, (X[:, 0] ** 2 + X[:, 1] ** 2 >= 1).astype(int))
        X, Y = utils.make_square_dataset(1000, 1, seed=0)[0]
        inside = (np.abs(X[:, 0]) < 0.5) & (np.abs(X[:, 1]) < 0.5)
        np.testing.assert_array_equal(Y, inside.astype(int))

    def test_importable_as_utils_from_the_tutorials_folder(self):
        code = (
            "from utils import make_circle_dataset, make_inv_circle_dataset, "
            "make_square_dataset"
        )
        subprocess.run([sys.executable, "-c", code], cwd=TUTORIALS, check=True)


class SeedTutorialTest(OneThreadTestCase):
    def test_tutorial_flow(self):
        # The tutorial's tiny [2, 8, 4] MLP trained 10 epochs ends below 0.90 on
        # some split for about a third of random initialisations (a plain
        # PyTorch loop does the same); this seed is one of the typical ones.
        np.random.seed(2)
        torch.manual_seed(2)
        random.seed(2)
        utils = tutorial_utils()

        # Create toy data
        N, R = 1000, 1
        X_train, X_valid, X_test = {}, {}, {}
        Y_train, Y_valid, Y_test = {}, {}, {}
        for name, make in (
            ("circle", utils.make_circle_dataset),
            ("square", utils.make_square_dataset),
        ):
            train, valid, test = make(N, R)
            X_train[name], Y_train[name] = train
            X_valid[name], Y_valid[name] = valid
            X_test[name], Y_test[name] = test
        self.assertEqual(X_train["circle"].shape, (800, 2))
        self.assertEqual(set(Y_train["circle"]), {0, 1})

        # Make DataLoaders
        dataloaders = []
        for task_name in ["circle", "square"]:
            for split, X, Y in (
                ("train", X_train, Y_train),
                ("valid", X_valid, Y_valid),
                ("test", X_test, Y_test),
            ):
                X_dict = {f"{task_name}_data": torch.FloatTensor(X[task_name])}
                Y_dict = {f"{task_name}_task": torch.LongTensor(Y[task_name])}
                dataset = DictDataset(f"{task_name}Dataset", split, X_dict, Y_dict)
                dataloaders.append(DictDataLoader(dataset, batch_size=32))

        # Tasks
        base_mlp = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU())
        head_module = nn.Linear(4, 2)
        module_pool = nn.ModuleDict(
            {"base_mlp": base_mlp, "circle_head_module": head_module}
        )
        op1 = Operation(
            name="base_mlp", module_name="base_mlp", inputs=[("_input_", "circle_data")]
        )
        op2 = Operation(
            name="circle_head", module_name="circle_head_module", inputs=["base_mlp"]
        )
        circle_task = Task(
            name="circle_task",
            module_pool=module_pool,
            op_sequence=[op1, op2],
            loss_func=F.cross_entropy,
            output_func=partial(F.softmax, dim=1),
            scorer=Scorer(metrics=["accuracy"]),
        )
        square_task = Task(
            name="square_task",
            module_pool=nn.ModuleDict(
                {"base_mlp": base_mlp, "square_head": nn.Linear(4, 2)}
            ),
            op_sequence=[
                Operation("base_mlp", [("_input_", "square_data")]),
                Operation("square_head", ["base_mlp"]),
            ],
        )

        # Model, training, evaluation
        model = MultitaskClassifier([circle_task, square_task])
        trainer = Trainer(**{"progress_bar": False, "n_epochs": 10, "lr": 0.02})
        trainer.fit(model, dataloaders)
        scores = model.score(dataloaders)
        expected = [
            f"{task}_task/{task}Dataset/{split}/accuracy"
            for task in ("circle", "square")
            for split in ("train", "valid", "test")
        ]
        self.assertEqual(list(scores), expected)
        for name, value in scores.items():
            self.assertGreater(value, 0.9, name)

        # Your Turn: the data, and the unfinished exercise as printed
        inv_train, inv_valid, inv_test = utils.make_inv_circle_dataset(N, R)
        X_train["inv_circle"], Y_train["inv_circle"] = inv_train
        X_valid["inv_circle"], Y_valid["inv_circle"] = inv_valid
        X_test["inv_circle"], Y_test["inv_circle"] = inv_test
        inv_dataset = DictDataset("InvCircleDataset", "train", {}, {})
        inv_dataloader = DictDataLoader(dataset=inv_dataset, batch_size=32)
        all_dataloaders = dataloaders + [inv_dataloader]
        model = MultitaskClassifier([circle_task, square_task])
        trainer.fit(model, all_dataloaders)
        self.assertEqual(list(model.score(all_dataloaders)), expected)

        # Your Turn, filled in
        inv_dataloaders = []
        for split, X, Y in (
            ("train", X_train, Y_train),
            ("valid", X_valid, Y_valid),
            ("test", X_test, Y_test),
        ):
            X_dict = {"inv_circle_data": torch.FloatTensor(X["inv_circle"])}
            Y_dict = {"inv_circle_task": torch.LongTensor(Y["inv_circle"])}
            dataset = DictDataset("InvCircleDataset", split, X_dict, Y_dict)
            inv_dataloaders.append(DictDataLoader(dataset, batch_size=32))
        inv_circle_task = Task(
            name="inv_circle_task",
            module_pool=nn.ModuleDict(
                {"base_mlp": base_mlp, "inv_circle_head": nn.Linear(4, 2)}
            ),
            op_sequence=[
                Operation("base_mlp", [("_input_", "inv_circle_data")]),
                Operation("inv_circle_head", ["base_mlp"]),
            ],
        )
        model = MultitaskClassifier([circle_task, square_task, inv_circle_task])
        all_dataloaders = dataloaders + inv_dataloaders
        trainer.fit(model, all_dataloaders)
        scores = model.score(all_dataloaders)
        self.assertEqual(len(scores), 9)
        for name, value in scores.items():
            self.assertGreater(value, 0.9, name)

        # Validation
        assert len(model.tasks) == 3
        assert len(model.module_pool) == 4  # 1 shared module plus 3 separate task heads


if __name__ == "__main__":
    unittest.main()
