"""``metal.run``: each vocabulary's translation into one run description, the
build step (writers, checkpointers, callbacks) and the finish step."""

import copy
import os
import tempfile
import unittest
from unittest import mock

import torch
import torch.nn as nn
import torch.nn.functional as F

from metal._data import TensorBatches
from metal.end_model.em_defaults import em_default_config
from metal.logging import (
    Checkpointer,
    Logger,
    LogWriter,
    OperationLogWriter,
    OperationTensorBoardWriter,
    TaskMetricCheckpointer,
    TensorBoardWriter,
)
from metal.mmtl import MultitaskClassifier, Trainer
from metal.mmtl.config import TrainerConfig, merge_config
from metal.mmtl.trainer import trainer_defaults
from metal.run import (
    CheckpointSpec,
    Run,
    RunSpec,
    ScalarLog,
    WriterSpec,
    build_checkpointer,
    build_writer,
    from_train_config,
    from_trainer_config,
    from_trainer_defaults,
    optimizer_settings,
    scheduler_kwargs,
)
from metal.utils import recursive_merge_dicts
from tests.mmtl.helpers import points_loader, two_op_task


def train_config(**updates):
    config = recursive_merge_dicts(em_default_config, updates, misses="exception")
    return config["train_config"]


class MetalTrainConfigTest(unittest.TestCase):
    """``from_train_config``: a MeTaL model's ``train_config``."""

    def test_defaults(self):
        tc = train_config()
        spec = from_train_config(tc, verbose=False, device="cpu")
        engine = spec.engine
        self.assertEqual(
            (engine.optimizer, engine.optimizer_kwargs["lr"]), ("adam", 0.01)
        )
        self.assertEqual(engine.optimizer_kwargs["betas"], (0.9, 0.999))
        self.assertEqual(engine.n_epochs, 10)
        self.assertEqual(engine.lr_scheduler, "reduce_on_plateau")
        self.assertEqual(engine.lr_scheduler_kwargs["patience"], 10)
        self.assertEqual(engine.lr_step_unit, "epochs")
        self.assertEqual(
            (engine.plateau_metric, engine.plateau_mode), ("valid/accuracy", "max")
        )
        self.assertEqual(
            (engine.log_unit, engine.log_every, engine.valid_every), ("epochs", 1, 1)
        )
        self.assertEqual(engine.loss_metric, "train/loss")
        self.assertIsNone(spec.writer.kind)
        self.assertEqual(
            (spec.checkpoint.kind, spec.checkpoint.cleanup), ("metal", "keep")
        )
        # As in MeTaL, the stored checkpoint metric gains its split.
        self.assertEqual(tc["checkpoint_config"]["checkpoint_metric"], "valid/accuracy")

    def test_settings_reach_the_description(self):
        tc = train_config(
            optimizer="sgd",
            lr=0.5,
            momentum=0.2,
            l2=0.1,
            lr_scheduler="exponential",
            gamma=0.3,
            warmup_steps=2,
            warmup_unit="epochs",
            log_unit="batches",
            log_train_every=5,
            log_valid_every=10,
            grad_clip=1.5,
            writer="json",
            log_dir="somewhere",
        )
        spec = from_train_config(tc, verbose=True, device="cpu")
        engine = spec.engine
        self.assertEqual(engine.optimizer_kwargs, {"lr": 0.5, "momentum": 0.2})
        self.assertEqual((engine.l2, engine.grad_clip), (0.1, 1.5))
        self.assertEqual(engine.lr_scheduler_kwargs, {"gamma": 0.3})
        self.assertEqual((engine.warmup_steps, engine.warmup_unit), (2, "epochs"))
        self.assertEqual(
            (engine.log_unit, engine.log_every, engine.valid_every), ("batches", 5, 10)
        )
        self.assertEqual(engine.valid_every_logs, 2)
        self.assertEqual((spec.writer.kind, spec.writer.face), ("json", "metal"))
        self.assertEqual(spec.writer.kwargs["log_dir"], "somewhere")
        self.assertTrue(spec.writer.kwargs["verbose"])
        own_l2 = from_train_config(tc, False, "cpu", implements_l2=True)
        self.assertEqual(own_l2.engine.l2, 0.0)

    def test_checkpointer_only_when_something_can_be_saved(self):
        no_valid = from_train_config(train_config(), False, "cpu", has_validation=False)
        self.assertIsNone(no_valid.checkpoint.kind)
        periodic = from_train_config(
            train_config(checkpoint_every=2), False, "cpu", has_validation=False
        )
        self.assertEqual(periodic.checkpoint.kind, "metal")
        on_train_loss = from_train_config(
            train_config(checkpoint_metric="train/loss"), False, "cpu", False
        )
        self.assertEqual(on_train_loss.checkpoint.kind, "metal")
        off = from_train_config(train_config(checkpoint=False), False, "cpu")
        self.assertIsNone(off.checkpoint.kind)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "Unrecognized optimizer"):
            from_train_config(train_config(optimizer="lbfgs"), False, "cpu")
        with self.assertRaisesRegex(ValueError, "Unrecognized lr scheduler"):
            from_train_config(train_config(lr_scheduler="cosine"), False, "cpu")
        with self.assertRaisesRegex(ValueError, "Unrecognized writer"):
            from_train_config(train_config(writer="csv"), False, "cpu")
        with self.assertRaisesRegex(ValueError, "multiple"):
            from_train_config(
                train_config(log_valid_every=3, log_train_every=2), False, "cpu"
            )

    def test_sub_vocabularies(self):
        config = {
            "optimizer": "adamax",
            "optimizer_common": {"lr": 0.5},
            "adam_config": {"betas": (0.8, 0.9)},
        }
        self.assertEqual(
            optimizer_settings(config), ("adamax", {"lr": 0.5, "betas": (0.8, 0.9)})
        )
        sched = {"step_config": {"step_size": 3}}
        self.assertEqual(scheduler_kwargs("step", sched), {"step_size": 3})
        self.assertEqual(scheduler_kwargs("linear", sched), {})


class MultitaskTrainerConfigTest(unittest.TestCase):
    """``from_trainer_defaults``: MeTaL's ``MultitaskTrainer`` config."""

    def config(self, **updates):
        return recursive_merge_dicts(trainer_defaults, updates, misses="exception")

    def test_defaults(self):
        cfg = self.config()
        spec = from_trainer_defaults(cfg, "cpu")
        engine = spec.engine
        self.assertEqual((engine.lr_step_unit, engine.grad_clip), ("batches", 1.0))
        self.assertEqual(
            (engine.loss_metric, engine.lr_metric),
            ("model/train/all/loss", "model/train/all/lr"),
        )
        self.assertEqual(cfg["logger_config"]["score_every"], 1.0)  # -1 means log_every
        self.assertEqual(engine.valid_every, 1.0)
        self.assertFalse(engine.evaluate_at_end)  # checkpoint_best is off
        self.assertEqual(spec.writer.step, "batches")  # epoch units: batch steps
        self.assertIs(spec.writer.config_at_start, cfg)
        self.assertEqual(spec.checkpoint.kind, "metal")
        self.assertTrue(spec.checkpoint.dir_under_writer)
        self.assertEqual(spec.checkpoint.cleanup, "all")
        self.assertIsNone(spec.checkpoint.config["checkpoint_every"])

    def test_options(self):
        spec = from_trainer_defaults(
            self.config(
                log_unit="batches",
                log_lr=False,
                checkpoint=False,
                checkpoint_cleanup=False,
            ),
            "cpu",
        )
        self.assertEqual(spec.writer.step, "units")
        self.assertIsNone(spec.engine.lr_metric)
        self.assertIsNone(spec.checkpoint.kind)
        plateau = from_trainer_defaults(
            self.config(checkpoint=False, lr_scheduler="reduce_on_plateau"), "cpu"
        )
        self.assertEqual(plateau.checkpoint.kind, "metal")
        best = from_trainer_defaults(self.config(checkpoint_best=True), "cpu")
        self.assertTrue(best.engine.evaluate_at_end)
        with self.assertRaisesRegex(ValueError, "Unrecognized lr scheduler"):
            from_trainer_defaults(self.config(lr_scheduler="step"), "cpu")


class OperationTrainerConfigTest(unittest.TestCase):
    """``from_trainer_config``: the Operation API's ``TrainerConfig``."""

    def spec(self, **updates):
        return from_trainer_config(merge_config(TrainerConfig(), updates), "cpu")

    def test_defaults(self):
        spec = self.spec()
        engine = spec.engine
        self.assertEqual(engine.optimizer, "adam")
        self.assertEqual(
            engine.optimizer_kwargs,
            {"lr": 0.01, "amsgrad": False, "betas": (0.9, 0.999)},
        )
        self.assertIsNone(engine.lr_scheduler)  # "constant"
        self.assertEqual(
            (engine.log_unit, engine.log_every, engine.valid_every),
            ("epochs", 1.0, 1.0),
        )
        self.assertEqual(engine.loss_metric, "model/all/train/loss")
        self.assertEqual((engine.warmup_steps, engine.warmup_unit), (0.0, "fraction"))
        self.assertTrue(engine.progress_bar)
        self.assertIsNone(spec.writer.kind)
        self.assertEqual(spec.writer.step, "examples")
        self.assertIsNone(spec.checkpoint.kind)

    def test_options(self):
        spec = self.spec(
            optimizer="sgd",
            lr=0.2,
            lr_scheduler="step",
            lr_scheduler_config={"warmup_steps": 2, "warmup_unit": "epochs"},
            log_manager_config={"counter_unit": "points", "evaluation_freq": 10},
            logging=True,
            log_writer="json",
            log_writer_config={"log_dir": "here", "run_name": "r"},
            checkpointing=True,
        )
        engine = spec.engine
        self.assertEqual(engine.optimizer_kwargs, {"lr": 0.2, "momentum": 0.9})
        self.assertEqual(engine.lr_scheduler_kwargs, {"gamma": 0.9, "step_size": 5})
        self.assertEqual((engine.warmup_steps, engine.warmup_unit), (2, "epochs"))
        self.assertEqual((engine.log_unit, engine.log_every), ("examples", 10))
        self.assertEqual((spec.writer.kind, spec.writer.face), ("json", "operation"))
        self.assertEqual(spec.writer.kwargs, {"log_dir": "here", "run_name": "r"})
        self.assertEqual(spec.checkpoint.kind, "task_metrics")
        self.assertEqual(spec.checkpoint.config["counter_unit"], "points")
        self.assertEqual(spec.checkpoint.cleanup, "snapshots")
        percent = self.spec(lr_scheduler_config={"warmup_percentage": 0.25})
        self.assertEqual(
            (percent.engine.warmup_steps, percent.engine.warmup_unit),
            (0.25, "fraction"),
        )

    def test_errors(self):
        for updates, message in [
            ({"optimizer": "rmsprop"}, "Unrecognized optimizer"),
            ({"lr_scheduler": "plateau"}, "Unrecognized lr scheduler"),
            ({"logging": True, "log_writer": "foo"}, "Unrecognized writer"),
            (
                {"lr_scheduler_config": {"warmup_steps": 1, "warmup_unit": "hours"}},
                "warmup_unit",
            ),
        ]:
            with self.subTest(updates=updates):
                with self.assertRaisesRegex(ValueError, message):
                    self.spec(**updates)


class BuildTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def test_one_writer_factory_for_both_faces(self):
        cases = [
            ("metal", "json", LogWriter),
            ("metal", "tensorboard", TensorBoardWriter),
            ("operation", "json", OperationLogWriter),
            ("operation", "tensorboard", OperationTensorBoardWriter),
        ]
        for face, kind, cls in cases:
            with self.subTest(face=face, kind=kind):
                kwargs = {"log_dir": self.tmp.name, "run_name": f"{face}_{kind}"}
                if face == "metal":
                    kwargs["verbose"] = False
                writer = build_writer(WriterSpec(kind, face, kwargs))
                self.assertIs(type(writer), cls)
                if face == "operation":
                    self.assertEqual(
                        writer.log_dir, os.path.join(self.tmp.name, f"{face}_{kind}")
                    )
                else:
                    self.assertEqual(writer.log_dir, self.tmp.name)
        self.assertIsNone(build_writer(WriterSpec()))

    def test_checkpointers(self):
        plain = build_checkpointer(CheckpointSpec("metal", {"checkpoint_dir": "x"}))
        self.assertIs(type(plain), Checkpointer)
        self.assertEqual(plain.checkpoint_dir, "x")
        writer = LogWriter(log_dir=self.tmp.name, verbose=False)
        under = build_checkpointer(
            CheckpointSpec("metal", {"checkpoint_dir": None}, dir_under_writer=True),
            writer,
        )
        self.assertEqual(
            under.checkpoint_dir, os.path.join(writer.log_subdir, "checkpoints")
        )
        alone = build_checkpointer(
            CheckpointSpec("metal", {"checkpoint_dir": None}, dir_under_writer=True)
        )
        self.assertEqual(alone.checkpoint_dir, "checkpoints")
        folder = os.path.join(self.tmp.name, "task_ckpts")
        task = build_checkpointer(
            CheckpointSpec(
                "task_metrics",
                {
                    "checkpoint_dir": folder,
                    "counter_unit": "batches",
                    "evaluation_freq": 2,
                },
            )
        )
        self.assertIsInstance(task, TaskMetricCheckpointer)
        self.assertEqual(task.checkpoint_freq, 2)
        self.assertIsNone(build_checkpointer(CheckpointSpec()))

    def test_scalar_log_writes_at_the_chosen_step(self):
        class Writer:
            def __init__(self):
                self.calls = []

            def add_scalar(self, name, value, step):
                self.calls.append((name, value, step))

        engine = mock.Mock()
        engine.progress.step = lambda unit: {"units": 2, "examples": 64, "batches": 8}[
            unit
        ]
        for unit, step in (("units", 2), ("examples", 64), ("batches", 8)):
            writer = Writer()
            ScalarLog(writer, unit).on_log(engine, {"a": 0.5, "b": 1.0})
            self.assertEqual(writer.calls, [("a", 0.5, step), ("b", 1.0, step)])


def toy_batches():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(48, 2, generator=g)
    Y = (X[:, 0] > X[:, 1]).long()
    return TensorBatches((X, Y), batch_size=8)


class RunTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def fit(self, spec, writer=None):
        torch.manual_seed(0)
        model = nn.Linear(2, 2)
        logger = Logger({"log_valid_every": 1}, verbose=False)
        run = Run(spec, logger, writer=writer)
        calls = []

        def evaluate(m):
            calls.append(len(calls))
            return {"valid/acc": 0.5 + 0.1 * len(calls)}

        result = run.fit(
            model,
            toy_batches(),
            lambda batch: F.cross_entropy(model(batch[0]), batch[1]),
            evaluate=evaluate,
        )
        return run, model, result, calls

    def test_callbacks_and_fit(self):
        folder = os.path.join(self.tmp.name, "ckpt")
        spec = RunSpec(
            from_train_config(train_config(n_epochs=3), False, "cpu").engine,
            WriterSpec("json", kwargs={"log_dir": self.tmp.name, "verbose": False}),
            CheckpointSpec(
                "metal", {"checkpoint_dir": folder, "checkpoint_metric": "valid/acc"}
            ),
        )
        run, model, result, calls = self.fit(spec)
        kinds = [type(callback).__name__ for callback in run.callbacks]
        self.assertEqual(kinds, ["ScalarLog", "Logger", "Checkpointer"])
        self.assertEqual(len(calls), 3)
        self.assertEqual(result.epochs_completed, 3)
        self.assertEqual(result.best_score, 0.8)
        self.assertIs(run.logger.progress, run.engine.progress)
        self.assertEqual(run.logger.unit_total, 3)
        self.assertEqual(
            [step for step, _ in run.writer.run_log["train/loss"]], [1, 2, 3]
        )
        run.finish(config={"n_epochs": 3}, metrics=result.metrics)
        self.assertTrue(os.path.exists(run.writer.log_path))
        self.assertEqual(os.listdir(folder), ["best_model.pth"])  # "keep"

    def test_finish_cleans_up_as_the_spec_says(self):
        engine = from_train_config(train_config(n_epochs=2), False, "cpu").engine
        # "all", in a folder the run created: the folder goes.
        folder = os.path.join(self.tmp.name, "made")
        spec = RunSpec(
            engine,
            checkpoint=CheckpointSpec(
                "metal",
                {
                    "checkpoint_dir": folder,
                    "checkpoint_metric": "valid/acc",
                    "checkpoint_every": 1,
                },
                cleanup="all",
            ),
        )
        run, *_ = self.fit(spec)
        self.assertTrue(os.listdir(folder))
        run.finish()
        self.assertFalse(os.path.exists(folder))
        # "all", in a folder that existed: only this run's files go.
        existing = os.path.join(self.tmp.name, "existing")
        os.makedirs(existing)
        with open(os.path.join(existing, "keep.txt"), "w") as f:
            f.write("mine")
        spec.checkpoint.config["checkpoint_dir"] = existing
        run, *_ = self.fit(spec)
        run.finish()
        self.assertEqual(os.listdir(existing), ["keep.txt"])

    def test_finish_copies_the_best_model_and_weights_to_the_run_log(self):
        engine = from_train_config(train_config(n_epochs=2), False, "cpu").engine
        writer = LogWriter(log_dir=self.tmp.name, verbose=False)
        spec = RunSpec(
            engine,
            WriterSpec("json"),
            CheckpointSpec(
                "metal",
                {"checkpoint_dir": None, "checkpoint_metric": "valid/acc"},
                dir_under_writer=True,
                cleanup="all",
                copy_best_to_writer=True,
            ),
        )
        run, model, *_ = self.fit(spec, writer=writer)
        run.finish(model=model, metrics={"test": 1.0})
        files = sorted(os.listdir(writer.log_subdir))
        self.assertEqual(
            files, ["best_model.pth", "log.json", "metrics.json", "model.pth"]
        )
        weights = torch.load(os.path.join(writer.log_subdir, "model.pth"))["model"]
        self.assertTrue(torch.equal(weights["weight"], model.weight))


class OneRestoreTest(unittest.TestCase):
    """``Trainer.fit`` restores the best model once (it used to do it twice)."""

    def test_best_model_loaded_once(self):
        with tempfile.TemporaryDirectory() as folder:
            model = MultitaskClassifier([two_op_task("task1")], dataparallel=False)
            loaders = [
                points_loader("task1", split="train", labels=[1, 0] * 5),
                points_loader("task1", split="valid", labels=[1, 0] * 5),
            ]
            trainer = Trainer(
                n_epochs=2,
                progress_bar=False,
                checkpointing=True,
                checkpointer_config={
                    "checkpoint_dir": folder,
                    "checkpoint_metric": "task1/dataset/valid/accuracy:max",
                },
            )
            with mock.patch.object(
                TaskMetricCheckpointer,
                "load_best_model",
                autospec=True,
                side_effect=lambda self, model: model,
            ) as load:
                trainer.fit(model, copy.copy(loaders))
            self.assertLessEqual(load.call_count, 1)
            self.assertEqual(
                os.listdir(folder), ["best_model_task1_dataset_valid_accuracy.pth"]
            )


if __name__ == "__main__":
    unittest.main()
