import contextlib
import io
import json
import os
import random
import tempfile
import unittest

import numpy as np
import torch
import torch.nn as nn

from metal.logging import LogWriter, TensorBoardWriter
from metal.mmtl import (
    Checkpointer,
    ClassificationTask,
    DictDataLoader,
    DictDataset,
    MetalModel,
    MultitaskClassifier,
    MultitaskTrainer,
    Operation,
    Payload,
    Task,
    Trainer,
    cross_entropy_with_probs,
)
from metal.mmtl.metal_model import predict_payload_with_gold
from metal.utils import split_data
from tests.mmtl.helpers import (
    OneThreadTestCase,
    identity_linear,
    separable_data,
    two_op_task,
)

BASE = {"n_epochs": 1, "progress_bar": False}


def small_loaders(task_names=("task1",), n=6, splits=("train",)):
    loaders = []
    for i, name in enumerate(task_names):
        X, Y = separable_data(n, 0.0, seed=i)
        for split in splits:
            dataset = DictDataset(f"{name}_data", split, {"coordinates": X}, {name: Y})
            loaders.append(DictDataLoader(dataset, batch_size=2))
    return loaders


def mlp_task(name, trunk=None):
    trunk = trunk if trunk is not None else nn.Sequential(nn.Linear(2, 8), nn.ReLU())
    return Task(
        name,
        nn.ModuleDict({"trunk": trunk, f"{name}_head": nn.Linear(8, 2)}),
        [
            Operation("trunk", [("_input_", "coordinates")]),
            Operation(f"{name}_head", ["trunk"]),
        ],
    )


class TempDirTestCase(OneThreadTestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.cwd = os.getcwd()
        os.chdir(self.tmp.name)  # default checkpoint/log folders land here

    def tearDown(self):
        os.chdir(self.cwd)
        self.tmp.cleanup()


class TrainerTest(TempDirTestCase):
    def setUp(self):
        super().setUp()
        torch.manual_seed(0)
        self.model = MultitaskClassifier([mlp_task("task1")])

    def test_one_and_two_task_fits(self):
        trainer = Trainer(**BASE)
        trainer.fit(self.model, small_loaders())
        self.assertIn("model/all/train/loss", trainer.metrics)
        self.assertIn("task1/task1_data/train/loss", trainer.metrics)
        self.assertIn("model/all/train/lr", trainer.metrics)
        trunk = nn.Sequential(nn.Linear(2, 8), nn.ReLU())
        model = MultitaskClassifier(
            [mlp_task("task1", trunk), mlp_task("task2", trunk)]
        )
        before = {k: v.detach().clone() for k, v in model.state_dict().items()}
        trainer = Trainer(**BASE)
        trainer.fit(model, small_loaders(("task1", "task2")))
        metrics = trainer.metrics
        # Each task's loader holds 6 examples, so the model's loss is the plain
        # mean of the two tasks' mean losses.
        task_losses = [
            metrics["task1/task1_data/train/loss"],
            metrics["task2/task2_data/train/loss"],
        ]
        self.assertAlmostEqual(metrics["model/all/train/loss"], np.mean(task_losses))
        self.assertTrue(all(0 < loss < 5 for loss in task_losses), task_losses)
        self.assertEqual(metrics["model/all/train/lr"], 0.01)
        # The shared trunk and both heads were trained.
        for key, value in model.state_dict().items():
            self.assertFalse(torch.equal(value, before[key]), key)
        self.assertEqual(trainer.log_manager.batch_total, 6)
        self.assertEqual(trainer.log_manager.point_total, 12)

    def test_dataloader_errors(self):
        with self.assertRaisesRegex(ValueError, "Cannot find any dataloaders"):
            Trainer(**BASE).fit(self.model, small_loaders(splits=("valid",)))
        with self.assertRaisesRegex(ValueError, "Dataloader splits must be"):
            Trainer(**BASE).fit(self.model, small_loaders(splits=("train", "dev")))
        with self.assertRaisesRegex(ValueError, "'task7'"):
            Trainer(**BASE).fit(self.model, small_loaders(("task7",)))

    def test_empty_train_loader_contributes_nothing(self):
        empty = DictDataLoader(
            DictDataset("InvCircleDataset", "train", {}, {}), batch_size=32
        )
        trainer = Trainer(**BASE)
        trainer.fit(self.model, small_loaders() + [empty])
        self.assertIn("model/all/train/loss", trainer.metrics)

    def test_validation_scores_are_logged(self):
        trainer = Trainer(
            **BASE, log_manager_config={"counter_unit": "batches", "evaluation_freq": 1}
        )
        trainer.fit(self.model, small_loaders(splits=("train", "valid")))
        self.assertIn("task1/task1_data/valid/accuracy", trainer.metrics)

    def test_checkpointing(self):
        folder = os.path.join(self.tmp.name, "ckpts")
        trainer = Trainer(
            **BASE,
            checkpointing=True,
            checkpointer_config={
                "checkpoint_dir": folder,
                "checkpoint_metric": "task1/task1_data/valid/accuracy:max",
            },
        )
        trainer.fit(self.model, small_loaders(splits=("train", "valid")))
        self.assertIsInstance(trainer.checkpointer, Checkpointer)
        # Snapshots cleared; the best model of the metric stays.
        self.assertEqual(
            os.listdir(folder), ["best_model_task1_task1_data_valid_accuracy.pth"]
        )
        self.assertIn(
            "task1/task1_data/valid/accuracy", trainer.checkpointer.best_metric_dict
        )
        with self.assertRaises(TypeError):
            Trainer(
                **BASE, checkpointing=True, checkpointer_config={"checkpoint_dir": None}
            ).fit(self.model, small_loaders())

    def test_checkpointer_config_errors(self):
        cases = [
            ({"checkpoint_metric": "model/all/train/loss"}, "metric_name:mode"),
            ({"checkpoint_metric": "model/all/train/loss:best"}, "metric mode"),
            ({"checkpoint_metric": "loss:min"}, "checkpoint_metric must be formatted"),
            ({"checkpoint_runway": -1}, "checkpoint_runway"),
            ({"checkpoint_factor": 0}, "checkpoint freq"),
            ({"checkpoint_task_metrics": ["task1/d/valid/f1"]}, "metric_name:mode"),
        ]
        for config, message in cases:
            trainer = Trainer(**BASE, checkpointing=True, checkpointer_config=config)
            with self.assertRaisesRegex(ValueError, message):
                trainer.fit(self.model, small_loaders())

    def test_log_writers(self):
        log_dir = os.path.join(self.tmp.name, "logs")
        trainer = Trainer(
            **BASE,
            logging=True,
            log_writer="json",
            log_writer_config={"log_dir": log_dir, "run_name": "log.json"},
        )
        trainer.fit(self.model, small_loaders())
        self.assertIsInstance(trainer.log_writer, LogWriter)
        self.assertIs(trainer.log_manager.log_writer, trainer.log_writer)
        log_path = os.path.join(trainer.log_writer.log_dir, "log.json")
        self.assertEqual(log_path, os.path.join(log_dir, "log.json", "log.json"))
        with open(log_path) as f:
            self.assertIn("model/all/train/loss", json.load(f))
        trainer = Trainer(**BASE, logging=True, log_writer_config={"log_dir": log_dir})
        trainer.fit(self.model, small_loaders())
        self.assertIsInstance(trainer.log_writer, TensorBoardWriter)
        with self.assertRaisesRegex(ValueError, "Unrecognized writer"):
            Trainer(**BASE, logging=True, log_writer="foo").fit(
                self.model, small_loaders()
            )

    def test_optimizers(self):
        for name, cls in (
            ("sgd", torch.optim.SGD),
            ("adam", torch.optim.Adam),
            ("adamax", torch.optim.Adamax),
        ):
            trainer = Trainer(**BASE, optimizer=name)
            trainer.fit(self.model, small_loaders())
            self.assertIsInstance(trainer.optimizer, cls)
        with self.assertRaisesRegex(ValueError, "Unrecognized optimizer"):
            Trainer(**BASE, optimizer="foo").fit(self.model, small_loaders())

    def test_lr_schedulers(self):
        expected = {
            "constant": type(None),
            "linear": torch.optim.lr_scheduler.LambdaLR,
            "exponential": torch.optim.lr_scheduler.ExponentialLR,
            "step": torch.optim.lr_scheduler.StepLR,
        }
        for name, cls in expected.items():
            trainer = Trainer(**BASE, lr_scheduler=name)
            trainer.fit(self.model, small_loaders())
            self.assertIsInstance(trainer.lr_scheduler, cls, name)
        trainer = Trainer(
            **BASE,
            lr_scheduler="exponential",
            lr_scheduler_config={"exponential_config": {"gamma": 0.5}},
        )
        trainer.fit(self.model, small_loaders())
        self.assertAlmostEqual(trainer.optimizer.param_groups[0]["lr"], 0.01 * 0.5**3)
        with self.assertRaisesRegex(ValueError, "Unrecognized lr scheduler"):
            Trainer(**BASE, lr_scheduler="foo").fit(self.model, small_loaders())
        with self.assertRaisesRegex(ValueError, "Unrecognized batch scheduler"):
            Trainer(**BASE, batch_scheduler="foo").fit(self.model, small_loaders())

    def test_warmup(self):
        cases = [
            ({"warmup_steps": 1, "warmup_unit": "batches"}, 1),
            ({"warmup_steps": 1, "warmup_unit": "epochs"}, 3),
            ({"warmup_percentage": 1 / 3}, 1),
        ]
        for config, steps in cases:
            trainer = Trainer(**BASE, lr_scheduler="linear", lr_scheduler_config=config)
            trainer.fit(self.model, small_loaders())
            self.assertEqual(trainer.warmup_steps, steps, config)

    def test_save_and_load(self):
        trainer = Trainer(**BASE, lr=0.05)
        trainer.fit(self.model, small_loaders())
        path = os.path.join(self.tmp.name, "trainer", "trainer.pth")
        trainer.save(path)
        other = Trainer(**BASE)
        other.load(path, model=self.model)
        self.assertEqual(other.config, trainer.config)
        saved = trainer.optimizer.state_dict()["state"]
        loaded = other.optimizer.state_dict()["state"]
        for key in saved:
            for name, value in saved[key].items():
                self.assertTrue(
                    torch.equal(
                        torch.as_tensor(value), torch.as_tensor(loaded[key][name])
                    )
                )
        other.fit(self.model, small_loaders())  # training continues
        fresh = Trainer(**BASE)
        fresh.load(path, model=None)
        self.assertFalse(hasattr(fresh, "optimizer"))
        with self.assertRaises(FileNotFoundError):
            Trainer().load(os.path.join(self.tmp.name, "missing.pth"), model=None)
        other_file = os.path.join(self.tmp.name, "weights.pth")
        torch.save({"model": self.model.state_dict()}, other_file)
        with self.assertRaisesRegex(ValueError, "lacks its 'trainer_config' entry"):
            Trainer().load(other_file, model=None)

    def test_seed_makes_fits_reproducible(self):
        weights = []
        for _ in range(2):
            torch.manual_seed(1)
            model = MultitaskClassifier([mlp_task("task1")])
            loaders = small_loaders(n=12)
            loaders[0] = DictDataLoader(loaders[0].dataset, batch_size=2, shuffle=True)
            Trainer(progress_bar=False, seed=7, n_epochs=2).fit(model, loaders)
            weights.append(
                model.module_pool["task1_head"].module.weight.detach().clone()
            )
        self.assertTrue(torch.equal(weights[0], weights[1]))


class ConvergenceTest(OneThreadTestCase):
    """Two tasks on a shared trunk learn their rules (a smaller port of
    Snorkel's convergence test)."""

    def test_two_tasks_converge(self):
        torch.manual_seed(123)
        random.seed(123)
        loaders = []
        for i, offset in enumerate((0.0, 0.25)):
            for split, n, seed in (("train", 600, 10 + i), ("valid", 200, 20 + i)):
                X, Y = separable_data(n, offset, seed)
                dataset = DictDataset(
                    "TestData", split, {"coordinates": X}, {f"task{i + 1}": Y}
                )
                loaders.append(
                    DictDataLoader(dataset, batch_size=8, shuffle=split == "train")
                )
        trunk = nn.Sequential(nn.Linear(2, 20), nn.ReLU())
        tasks = [
            Task(
                name,
                nn.ModuleDict({"linear1A": trunk, f"linear2{tag}": nn.Linear(20, 2)}),
                [
                    Operation("linear1A", [("_input_", "coordinates")]),
                    Operation(f"linear2{tag}", ["linear1A"]),
                ],
            )
            for name, tag in (("task1", "A"), ("task2", "B"))
        ]
        model = MultitaskClassifier(tasks)
        Trainer(lr=0.01, n_epochs=10, progress_bar=False).fit(model, loaders)
        scores = model.score(loaders)
        for name in ("task1", "task2"):
            self.assertGreater(scores[f"{name}/TestData/valid/accuracy"], 0.95)
            dataset = next(dl.dataset for dl in loaders if name in dl.dataset.Y_dict)
            loss_dict, _ = model.calculate_loss(dataset.X_dict, dataset.Y_dict)
            self.assertLess(loss_dict[name].item(), 0.05)


class ProbabilisticLabelsTest(OneThreadTestCase):
    """A multi-task model trained on a label model's probabilistic labels."""

    def test_learns_from_label_model_output(self):
        from metal.label_model import LabelModel

        rng = np.random.RandomState(0)
        torch.manual_seed(0)
        n, m = 1200, 5
        X = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
        Y = (X[:, 0] + X[:, 1] > 0).astype(int) + 1  # gold, 1..2
        accs = rng.uniform(0.7, 0.85, size=m)
        L = np.zeros((n, m), dtype=int)
        for j in range(m):
            votes = rng.rand(n) < 0.7
            right = rng.rand(n) < accs[j]
            L[votes & right, j] = Y[votes & right]
            L[votes & ~right, j] = 3 - Y[votes & ~right]
        label_model = LabelModel(k=2, seed=1, verbose=False)
        label_model.train_model(L[:1000], n_epochs=200, lr=0.01)
        probs = torch.from_numpy(label_model.predict_proba(L[:1000]).astype(np.float32))

        train = DictDataset(
            "synthetic",
            "train",
            {"coordinates": torch.from_numpy(X[:1000])},
            {"task": probs},
        )
        test = DictDataset(
            "synthetic",
            "test",
            {"coordinates": torch.from_numpy(X[1000:])},
            {"task": torch.from_numpy(Y[1000:] - 1)},
        )
        task = mlp_task("task")
        task.loss_func = cross_entropy_with_probs
        model = MultitaskClassifier([task])
        Trainer(lr=0.02, n_epochs=8, progress_bar=False).fit(
            model,
            [
                DictDataLoader(train, batch_size=32, shuffle=True),
                DictDataLoader(test, batch_size=64),
            ],
        )
        scores = model.score([DictDataLoader(test, batch_size=64)])
        self.assertGreater(scores["task/synthetic/test/accuracy"], 0.9)
        # soft golds are scored by their argmax
        soft_scores = model.score([DictDataLoader(train, batch_size=64)])
        self.assertIn("task/synthetic/train/accuracy", soft_scores)


def v05_payloads(T, n=600, batch_size=2, seed=1):
    """The data of MeTaL v0.5's test_mmtl: T tasks, label set j = 2 if
    x0 > x1 + 0.5 (j = 0) or + 0.25 (j = 1), else 1."""
    np.random.seed(seed)
    payloads = []
    for t in range(T):
        X = np.random.random((n, 2)) * 2 - 1
        Y = np.zeros((n, 2), dtype=int)
        Y[:, 0] = (X[:, 0] > X[:, 1] + 0.5).astype(int) + 1
        Y[:, 1] = (X[:, 0] > X[:, 1] + 0.25).astype(int) + 1
        uids = list(range(t * n, (t + 1) * n))
        X = torch.tensor(X, dtype=torch.float)
        Y = torch.tensor(Y, dtype=torch.long)
        uid_lists, Xs, Ys = split_data(
            uids, X, Y, splits=[0.8, 0.1, 0.1], shuffle=True, seed=seed
        )
        for i, split in enumerate(["train", "valid", "test"]):
            labels = {f"labelset{j}": Ys[i][:, j] for j in range(T)}
            dataset = MmtlDataset({"data": Xs[i], "uids": uid_lists[i]}, labels)
            payloads.append(
                Payload(
                    f"payload{t}_{split}",
                    MmtlDataLoader(dataset, batch_size=batch_size),
                    {f"labelset{j}": f"task{j}" for j in range(T)},
                    split,
                )
            )
    return payloads


def v05_tasks(T):
    return [
        ClassificationTask(
            f"task{t}",
            input_module=nn.Sequential(nn.Linear(2, 8), nn.ReLU()),
            head_module=nn.Linear(8, 2),
        )
        for t in range(T)
    ]


from metal.mmtl import MmtlDataLoader, MmtlDataset  # noqa: E402


class MultitaskTrainerTest(TempDirTestCase):
    """MeTaL v0.5's test_mmtl, plus the trainer's config vocabulary."""

    def setUp(self):
        super().setUp()
        torch.manual_seed(1)
        self.trainer = MultitaskTrainer(verbose=False, lr=0.005)

    def test_mmtl_singletask(self):
        model = MetalModel(v05_tasks(1), verbose=False)
        metrics = self.trainer.train_model(model, v05_payloads(1))
        self.assertEqual(len(metrics), 3)
        self.assertTrue(all(value > 0.9 for value in metrics.values()), metrics)
        self.assertFalse(os.path.exists("checkpoints"))

    def test_mmtl_multitask(self):
        model = MetalModel(v05_tasks(2), verbose=False)
        metrics = self.trainer.train_model(model, v05_payloads(2), verbose=False)
        self.assertEqual(len(metrics), 12)
        self.assertTrue(all(value > 0.9 for value in metrics.values()), metrics)

    def test_config_vocabulary(self):
        trainer = MultitaskTrainer(verbose=False, lr=0.02, log_every=2, seed=3)
        self.assertEqual(
            trainer.config["optimizer_config"]["optimizer_common"]["lr"], 0.02
        )
        self.assertEqual(trainer.config["logger_config"]["log_every"], 2)
        with self.assertWarnsRegex(UserWarning, "MultitaskTrainer .*'colour'"):
            trainer = MultitaskTrainer(verbose=False, colour="blue")
        self.assertEqual(trainer.config["colour"], "blue")  # inserted, as in MeTaL
        with self.assertWarnsRegex(UserWarning, "'n_epoch'.*'n_epochs'"):
            trainer.train_model(
                MetalModel(v05_tasks(1), verbose=False),
                v05_payloads(1, n=40),
                n_epoch=1,
                n_epochs=1,
            )

    def test_bad_payloads(self):
        model = MetalModel(v05_tasks(1), verbose=False)
        payloads = v05_payloads(1, n=40)
        with self.assertRaisesRegex(ValueError, "split 'train'"):
            self.trainer.train_model(model, payloads[1:])
        payloads[0].labels_to_tasks["labelset0"] = "task9"
        with self.assertRaisesRegex(ValueError, "'task9'"):
            self.trainer.train_model(model, payloads)

    def test_checkpoint_best_writer_and_safe_model_file(self):
        model = MetalModel(v05_tasks(1), verbose=False)
        metric = "task0/payload0_valid/labelset0/accuracy"
        metrics = self.trainer.train_model(
            model,
            v05_payloads(1, n=100, batch_size=8),
            n_epochs=3,
            writer="json",
            log_dir=os.path.join(self.tmp.name, "logs"),
            checkpoint_best=True,
            checkpoint_metric=metric,
            checkpoint_metric_mode="max",
            task_metrics=[metric, "task0/payload0_test/labelset0/accuracy"],
            aggregate_metric_fns=[lambda hist: {"model/valid/all/mean": 0.5}],
        )
        self.assertEqual(
            set(metrics),
            {metric, "task0/payload0_test/labelset0/accuracy", "model/valid/all/mean"},
        )
        log_subdir = self.trainer.writer.log_subdir
        self.assertTrue(os.path.exists(os.path.join(log_subdir, "best_model.pth")))
        self.assertFalse(os.path.exists(os.path.join(log_subdir, "checkpoints")))
        with open(os.path.join(log_subdir, "log.json")) as f:
            run_log = json.load(f)["run_log"]
        self.assertIn("task0/payload0_train/labelset0/loss", run_log)
        self.assertIn("model/train/all/lr", run_log)
        other = MetalModel(
            v05_tasks(1),
            verbose=False,
            model_weights=os.path.join(log_subdir, "model.pth"),
        )
        for key, value in model.state_dict().items():
            self.assertTrue(torch.equal(value, other.state_dict()[key]))

    def test_checkpoint_metric_validation(self):
        model = MetalModel(v05_tasks(1), verbose=False)
        payloads = v05_payloads(1, n=40)
        for metric, message in (
            ("model/train/all/f1", "loss"),
            ("task9/payload0_valid/labelset0/accuracy", "task9"),
            ("task0/payload7/labelset0/accuracy", "payload7"),
            ("task0/payload0_valid/labelset0/f1", "f1"),
            ("task0/accuracy", "task/payload/label_set/metric"),
        ):
            with self.assertRaisesRegex(ValueError, message):
                self.trainer.train_model(model, payloads, checkpoint_metric=metric)

    def test_schedulers_and_verbose_log(self):
        model = MetalModel(v05_tasks(1), verbose=False)
        payloads = v05_payloads(1, n=60, batch_size=8)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            MultitaskTrainer(
                lr=0.01,
                n_epochs=2,
                lr_scheduler="exponential",
                warmup_steps=2,
                checkpoint=False,
            ).train_model(model, payloads)
        text = out.getvalue()
        self.assertIn("[1.0 epo]:", text)
        self.assertIn("  task0:[payload0_train/labelset0/loss=", text)
        self.assertIn("Finished training", text)
        for name in ("linear", "reduce_on_plateau"):
            trainer = MultitaskTrainer(
                verbose=False, lr_scheduler=name, checkpoint=False
            )
            trainer.train_model(model, payloads)
            self.assertIsNotNone(trainer.lr_scheduler)
        with self.assertRaisesRegex(ValueError, "Unrecognized lr scheduler"):
            MultitaskTrainer(verbose=False, lr_scheduler="cosine").train_model(
                model, payloads
            )
        with self.assertRaises(NotImplementedError):
            MultitaskTrainer(verbose=False, task_scheduler="round_robin").train_model(
                model, payloads
            )
        with self.assertRaisesRegex(ValueError, "Unrecognized writer"):
            MultitaskTrainer(verbose=False, writer="csv").train_model(model, payloads)


class OneEngineTest(TempDirTestCase):
    """Either trainer drives either face of the model."""

    def test_trainer_fits_a_metal_model_and_multitask_trainer_a_classifier(self):
        torch.manual_seed(0)
        X, Y = separable_data(200, 0.0, seed=3)
        model = MetalModel(
            [
                ClassificationTask(
                    "task",
                    input_module=nn.Sequential(nn.Linear(2, 8), nn.ReLU()),
                    head_module=nn.Linear(8, 2),
                )
            ],
            verbose=False,
            device=-1,
        )
        loader = DictDataLoader(
            DictDataset("d", "train", {"data": X}, {"task": Y + 1}), batch_size=16
        )
        Trainer(n_epochs=15, lr=0.05, progress_bar=False).fit(model, [loader])
        self.assertGreater(
            model._score_dataloaders([loader])["task/d/train/accuracy"], 0.9
        )

        # a 0-indexed Task fed by a Payload: labels in the task's own convention
        seed_task = Task(
            "task",
            nn.ModuleDict(
                {
                    "trunk": nn.Sequential(nn.Linear(2, 8), nn.ReLU()),
                    "head": nn.Linear(8, 2),
                }
            ),
            [Operation("trunk", [("_input_", "data")]), Operation("head", ["trunk"])],
            loss_func=lambda out, Y: nn.functional.cross_entropy(out, Y.view(-1)),
        )
        seed_model = MultitaskClassifier([seed_task])
        payload = Payload.from_tensors("P_train", X, Y, "task", "train", batch_size=16)
        metrics = MultitaskTrainer(
            verbose=False, n_epochs=15, lr=0.05, checkpoint=False
        ).train_model(seed_model, [payload])
        self.assertGreater(metrics["task/P_train/labels/accuracy"], 0.9)


if __name__ == "__main__":
    unittest.main()


class TieBreakingAgreementTest(OneThreadTestCase):
    """A multi-task model predicts and scores tied rows the same way through
    every door: ``MultitaskClassifier.predict``/``score`` (Operation API), the
    v0.5 payload methods, and ``MultitaskTrainer``'s scoring."""

    def tied_model(self, task):
        # Identity layers on inputs [i, i]: every output row is [0.5, 0.5].
        return MultitaskClassifier([task], dataparallel=False)

    def doors(self, model, task_name, labels):
        X = torch.FloatTensor([[i, i] for i in range(10)])
        Y = torch.as_tensor(labels)
        dataset = DictDataset("points", "valid", {"data": X}, {task_name: Y})
        loader = DictDataLoader(dataset, batch_size=3)
        payload = Payload(
            "points",
            MmtlDataLoader(MmtlDataset({"data": X}, {task_name: Y}), batch_size=4),
            {task_name: task_name},
            "valid",
        )
        predicted = model.predict(loader, return_preds=True)["preds"][task_name]
        _, _, payload_preds = predict_payload_with_gold(
            model, payload, return_preds=True
        )
        trainer = MultitaskTrainer(verbose=False)
        return (
            [int(p) for p in predicted],
            [int(p) for p in payload_preds[task_name]],
            model.score([loader])[f"{task_name}/points/valid/accuracy"],
            trainer.calculate_task_metrics(model, [payload])[
                f"{task_name}/points/{task_name}/accuracy"
            ],
        )

    def test_operation_task(self):
        model = self.tied_model(two_op_task("task1"))
        predicted, payload_preds, score, trainer_score = self.doors(
            model, "task1", [1] * 10
        )
        # The Operation API's tie-breaking: a hash of the row index.
        self.assertEqual(predicted, [0, 1, 0, 1, 0, 0, 0, 0, 1, 1])
        self.assertEqual(payload_preds, predicted)
        self.assertAlmostEqual(score, 0.4)
        self.assertAlmostEqual(trainer_score, score)

    def test_v05_task(self):
        task = ClassificationTask(
            "task1", input_module=identity_linear(), head_module=identity_linear()
        )
        model = self.tied_model(task)
        predicted, payload_preds, score, trainer_score = self.doors(
            model, "task1", [1, 2] * 5
        )
        # MeTaL v0.5's: the first of the tied classes (argmax + 1).
        self.assertEqual(predicted, [1] * 10)
        self.assertEqual(payload_preds, predicted)
        self.assertAlmostEqual(score, 0.5)
        self.assertAlmostEqual(trainer_score, score)
