import math
import os
import random
import tempfile
import unittest

import numpy as np
import scipy.sparse as sparse
import torch
import torch.nn as nn
import torch.nn.functional as F

from metal._data import TensorBatches, first_dim_size
from metal.engine import (
    Engine,
    EngineConfig,
    LRSchedule,
    build_optimizer,
    capture_rng_state,
    set_rng_state,
    warmup_batches,
)
from metal.logging import Checkpointer
from metal.run import ScalarLog
from metal.run import optimizer_settings as v05_optimizer_settings
from metal.run import scheduler_kwargs as v05_scheduler_kwargs

# logger_config keys of the MeTaL vocabulary -> EngineConfig's log schedule
_LOG_KEYS = {
    "log_unit": "log_unit",
    "log_train_every": "log_every",
    "log_valid_every": "valid_every",
}


class Recorder:
    """A training step for a small MLP that records the lr at each batch."""

    def __init__(self, model, engine_ref):
        self.model = model
        self.engine_ref = engine_ref
        self.lrs = []

    def __call__(self, batch):
        X, Y = batch
        self.lrs.append(self.engine_ref[0].optimizer.param_groups[0]["lr"])
        return F.cross_entropy(self.model(X), Y)


def toy_data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, 2, generator=g) * 2 - 1
    Y = (X[:, 0] > X[:, 1]).long()
    return X, Y


def make_engine(model, logger_config=None, checkpointer=None, evaluate=None, **cfg):
    for key, value in (logger_config or {}).items():
        cfg[_LOG_KEYS[key]] = value
    callbacks = [checkpointer] if checkpointer is not None else []
    return Engine(model, EngineConfig(**cfg), callbacks, evaluate=evaluate)


def fit_recording(model=None, batch_size=16, n=64, **cfg):
    """Fit a tiny model; return (engine, result, learning rates per batch)."""
    torch.manual_seed(0)
    model = model or nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
    ref = []
    logger_config = cfg.pop("logger_config", None)
    evaluate = cfg.pop("evaluate", None)
    engine = make_engine(model, logger_config, evaluate=evaluate, **cfg)
    ref.append(engine)
    step = Recorder(model, ref)
    result = engine.fit(TensorBatches(toy_data(n), batch_size), step)
    return engine, result, step.lrs


class OptimizerTestCase(unittest.TestCase):
    def test_each_optimizer_and_its_settings(self):
        params = list(nn.Linear(2, 2).parameters())
        sgd = build_optimizer("sgd", params, {"lr": 0.1, "momentum": 0.9}, l2=0.01)
        self.assertIsInstance(sgd, torch.optim.SGD)
        self.assertEqual(sgd.defaults["momentum"], 0.9)
        self.assertEqual(sgd.defaults["weight_decay"], 0.01)
        adam = build_optimizer("adam", params, {"lr": 0.1, "betas": (0.5, 0.6)})
        self.assertEqual(adam.defaults["betas"], (0.5, 0.6))
        self.assertIsInstance(
            build_optimizer("adamax", params, {"lr": 1}), torch.optim.Adamax
        )
        self.assertIsInstance(
            build_optimizer("rmsprop", params, {"lr": 1}), torch.optim.RMSprop
        )
        sparse_adam = build_optimizer("sparseadam", params, {"lr": 1})
        self.assertIsInstance(sparse_adam, torch.optim.SparseAdam)
        with self.assertRaisesRegex(ValueError, "l2"):
            build_optimizer("sparseadam", params, {"lr": 1}, l2=0.1)
        with self.assertRaisesRegex(ValueError, "Unrecognized optimizer"):
            build_optimizer("adagrad", params, {"lr": 1})

    def test_frozen_parameters_are_skipped(self):
        model = nn.Linear(2, 2)
        model.bias.requires_grad_(False)
        optimizer = build_optimizer("sgd", model.parameters(), {"lr": 1})
        self.assertEqual(len(optimizer.param_groups[0]["params"]), 1)

    def test_v05_settings(self):
        config = {
            "optimizer": "adamax",
            "optimizer_common": {"lr": 0.5},
            "sgd_config": {"momentum": 0.9},
            "adam_config": {"betas": (0.8, 0.9)},
            "rmsprop_config": {},
        }
        self.assertEqual(
            v05_optimizer_settings(config), ("adamax", {"lr": 0.5, "betas": (0.8, 0.9)})
        )
        config["optimizer"] = "sgd"
        self.assertEqual(
            v05_optimizer_settings(config), ("sgd", {"lr": 0.5, "momentum": 0.9})
        )
        sched = {
            "exponential_config": {"gamma": 0.5},
            "plateau_config": {"factor": 0.1},
        }
        self.assertEqual(v05_scheduler_kwargs("exponential", sched), {"gamma": 0.5})
        self.assertEqual(
            v05_scheduler_kwargs("reduce_on_plateau", sched), {"factor": 0.1}
        )
        self.assertEqual(v05_scheduler_kwargs(None, sched), {})
        with self.assertRaisesRegex(ValueError, "lr scheduler"):
            v05_scheduler_kwargs("cosine", sched)

    def test_engine_config_validation(self):
        with self.assertRaisesRegex(ValueError, "optimizer"):
            EngineConfig(optimizer="lbfgs")
        with self.assertRaisesRegex(ValueError, "lr scheduler"):
            EngineConfig(lr_scheduler="cosine")
        with self.assertRaisesRegex(ValueError, "warmup_unit"):
            EngineConfig(warmup_unit="seconds")
        with self.assertRaisesRegex(ValueError, "n_epochs"):
            EngineConfig(n_epochs=1.5)
        with self.assertRaisesRegex(ValueError, "plateau_mode"):
            EngineConfig(plateau_mode="up")
        with self.assertRaisesRegex(ValueError, "sparseadam"):
            EngineConfig(optimizer="sparseadam", l2=0.1)

    def test_l2_applied(self):
        engine, _, _ = fit_recording(optimizer="sgd", l2=0.25, n_epochs=1)
        self.assertEqual(engine.optimizer.param_groups[0]["weight_decay"], 0.25)
        self.assertIsInstance(engine.optimizer, torch.optim.SGD)


class SchedulerTestCase(unittest.TestCase):
    def test_constant_and_none(self):
        for name in (None, "constant"):
            engine, _, lrs = fit_recording(
                lr_scheduler=name, n_epochs=2, optimizer_kwargs={"lr": 0.1}
            )
            self.assertEqual(set(lrs), {0.1})
            self.assertIsNone(engine.lr_scheduler)

    def test_exponential_per_epoch(self):
        engine, _, lrs = fit_recording(
            n_epochs=3,
            optimizer_kwargs={"lr": 0.1},
            lr_scheduler="exponential",
            lr_scheduler_kwargs={"gamma": 0.5},
        )
        self.assertEqual(lrs, [0.1] * 4 + [0.05] * 4 + [0.025] * 4)
        self.assertIsInstance(
            engine.lr_scheduler, torch.optim.lr_scheduler.ExponentialLR
        )

    def test_exponential_per_batch_with_min_lr(self):
        _, _, lrs = fit_recording(
            n_epochs=1,
            optimizer_kwargs={"lr": 1.0},
            lr_scheduler="exponential",
            lr_scheduler_kwargs={"gamma": 0.5},
            lr_step_unit="batches",
            min_lr=0.2,
        )
        self.assertEqual(lrs, [1.0, 0.5, 0.25, 0.2])

    def test_lr_freeze(self):
        _, _, lrs = fit_recording(
            n_epochs=4,
            optimizer_kwargs={"lr": 0.1},
            lr_scheduler="exponential",
            lr_scheduler_kwargs={"gamma": 0.5},
            lr_freeze=3,
        )
        per_epoch = lrs[::4]
        self.assertEqual(per_epoch, [0.1, 0.1, 0.1, 0.05])

    def test_step(self):
        _, _, lrs = fit_recording(
            n_epochs=4,
            optimizer_kwargs={"lr": 1.0},
            lr_scheduler="step",
            lr_scheduler_kwargs={"step_size": 2, "gamma": 0.1},
        )
        self.assertTrue(np.allclose(lrs[::4], [1.0, 1.0, 0.1, 0.1]))

    def test_linear_decays_to_zero_per_batch(self):
        _, _, lrs = fit_recording(
            n_epochs=2, optimizer_kwargs={"lr": 0.8}, lr_scheduler="linear"
        )
        self.assertTrue(np.allclose(lrs, [0.8 * (8 - i) / 8 for i in range(8)]))

    def test_warmup_batches(self):
        _, _, lrs = fit_recording(
            n_epochs=2, optimizer_kwargs={"lr": 1.0}, warmup_steps=4
        )
        self.assertEqual(lrs, [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0])

    def test_warmup_epochs_then_linear(self):
        _, _, lrs = fit_recording(
            n_epochs=3,
            optimizer_kwargs={"lr": 1.0},
            warmup_steps=0.5,
            warmup_unit="epochs",
            lr_scheduler="linear",
        )
        # 2 warmup batches, then linear decay over the remaining 10
        self.assertEqual(lrs[:3], [0.0, 0.5, 1.0])
        self.assertTrue(np.allclose(lrs[3:], [(10 - i) / 10 for i in range(1, 10)]))
        self.assertEqual(warmup_batches(0.5, "epochs", 4), 2)
        self.assertEqual(warmup_batches(0, "epochs", None), 0)
        with self.assertRaisesRegex(ValueError, "batches per epoch"):
            warmup_batches(1, "epochs", None)

    def test_reduce_on_plateau_follows_fresh_metric(self):
        values = iter([0.5, 0.6, 0.6, 0.6, 0.6])
        _, _, lrs = fit_recording(
            n_epochs=5,
            optimizer_kwargs={"lr": 1.0},
            lr_scheduler="reduce_on_plateau",
            lr_scheduler_kwargs={"factor": 0.5, "patience": 0},
            plateau_metric="valid/acc",
            plateau_mode="max",
            logger_config={"log_valid_every": 1},
            evaluate=lambda model: {"valid/acc": next(values)},
        )
        self.assertEqual(lrs[::4], [1.0, 1.0, 1.0, 0.5, 0.25])

    def test_reduce_on_plateau_without_metric_never_steps(self):
        _, _, lrs = fit_recording(
            n_epochs=3,
            optimizer_kwargs={"lr": 1.0},
            lr_scheduler="reduce_on_plateau",
            lr_scheduler_kwargs={"factor": 0.5, "patience": 0},
            plateau_metric="valid/acc",
        )
        self.assertEqual(set(lrs), {1.0})

    def test_schedule_state_round_trip(self):
        opt = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=1.0)
        schedule = LRSchedule(opt, "exponential", {"gamma": 0.5}, warmup_batches=2)
        opt.step()
        for _ in range(3):
            schedule.on_batch_end(0)
        schedule.on_epoch_end(0)
        opt2 = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=1.0)
        copy = LRSchedule(opt2, "exponential", {"gamma": 0.5}, warmup_batches=2)
        opt2.step()
        copy.load_state_dict(schedule.state_dict())
        opt2.load_state_dict(opt.state_dict())
        schedule.on_epoch_end(1)
        copy.on_epoch_end(1)
        self.assertEqual(opt.param_groups[0]["lr"], opt2.param_groups[0]["lr"])
        self.assertEqual(copy.batches_seen, 3)


class LoopTestCase(unittest.TestCase):
    def test_grad_clipping(self):
        model = nn.Linear(3, 1, bias=False)
        nn.init.zeros_(model.weight)
        engine = make_engine(
            model, optimizer="sgd", optimizer_kwargs={"lr": 1.0}, grad_clip=0.5
        )
        batches = [(torch.ones(1, 3),)]
        engine.fit(batches, lambda batch: 1000 * model(batch[0]).sum())
        self.assertAlmostEqual(model.weight.norm().item(), 0.5, places=5)
        model_2 = nn.Linear(3, 1, bias=False)
        nn.init.zeros_(model_2.weight)
        engine = make_engine(model_2, optimizer="sgd", optimizer_kwargs={"lr": 1.0})
        engine.fit(batches, lambda batch: 1000 * model_2(batch[0]).sum())
        self.assertAlmostEqual(model_2.weight.norm().item(), 1000 * math.sqrt(3), 2)

    def test_nan_loss_raises(self):
        model = nn.Linear(2, 1)
        engine = make_engine(model)
        with self.assertRaisesRegex(FloatingPointError, "learning rate"):
            engine.fit(
                [(torch.ones(2, 2),)], lambda b: model(b[0]).sum() * float("nan")
            )

    def test_dict_batches_and_dict_losses(self):
        model = nn.Linear(2, 1)
        seen = []

        class Writer:
            def add_scalar(self, name, value, i):
                seen.append((name, round(value, 6), i))

        config = EngineConfig(
            optimizer="sgd",
            optimizer_kwargs={"lr": 0.0},
            loss_metric="model/all/train/loss",
            lr_metric="model/all/train/lr",
            log_unit="batches",
        )
        engine = Engine(model, config, [ScalarLog(Writer())])
        batches = [({"x": torch.ones(4, 2)}, {"a": torch.ones(4)})]

        def step(batch):
            X, _ = batch
            out = model(X["x"]).sum() * 0
            return (
                {"a/loss": out + 1.0, "b/loss": out + 3.0, "c/loss": out + 9.0},
                {"a/loss": 3, "b/loss": 1, "c/loss": 0},
            )

        engine.fit(batches, step)
        self.assertEqual(
            sorted(seen),
            [
                ("a/loss", 1.0, 1),
                ("b/loss", 3.0, 1),
                ("model/all/train/loss", 1.5, 1),
                ("model/all/train/lr", 0.0, 1),
            ],
        )

    def test_empty_loss_dict_skips_the_batch(self):
        model = nn.Linear(2, 1)
        before = model.weight.detach().clone()
        engine = make_engine(model, optimizer="sgd")
        result = engine.fit([(torch.ones(2, 2),)] * 3, lambda batch: ({}, {}))
        self.assertTrue(torch.equal(before, model.weight))
        self.assertEqual(result.epochs_completed, 1)
        self.assertEqual(engine.progress.unit_total, 1)

    def test_epoch_factory_and_generator_batches(self):
        model = nn.Linear(2, 2)
        calls = []

        def batches(epoch):
            calls.append(epoch)
            for _ in range(3):
                yield torch.rand(4, 2), torch.randint(0, 2, (4,))

        engine = make_engine(model, n_epochs=2)
        result = engine.fit(batches, lambda b: F.cross_entropy(model(b[0]), b[1]))
        self.assertEqual(calls, [0, 1])
        self.assertEqual(engine.progress.unit_total, 2)
        self.assertEqual(engine.progress.batch_total, 6)
        self.assertEqual(sorted(result.metrics_hist), ["train/loss"])

    def test_validation_frequency_and_final_evaluation(self):
        calls = []

        def evaluate(model):
            calls.append(len(calls))
            return {"valid/score": 1.0}

        engine, result, _ = fit_recording(
            n_epochs=5,
            logger_config={"log_train_every": 1, "log_valid_every": 2},
            evaluate=evaluate,
            evaluate_at_end=True,
        )
        self.assertEqual(len(calls), 3)  # epochs 2, 4 and once at the end
        self.assertIn("valid/score", result.metrics)

    def test_models_in_eval_mode_during_validation_and_after(self):
        modes = []
        model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))

        def evaluate(m):
            modes.append(m.training)
            return {}

        engine = make_engine(model, {"log_valid_every": 1}, evaluate=evaluate)
        engine.fit([toy_data(8)], lambda b: F.cross_entropy(model(b[0]), b[1]))
        self.assertEqual(modes, [False])
        self.assertFalse(model.training)

    def test_short_epoch_is_counted(self):
        class Short:
            def __len__(self):
                return 5

            def __iter__(self):
                return iter([toy_data(4)] * 3)

        model = nn.Linear(2, 2)
        engine = make_engine(model, n_epochs=2)
        engine.fit(Short(), lambda b: F.cross_entropy(model(b[0]), b[1]))
        self.assertEqual(engine.progress.unit_total, 2)
        self.assertEqual(engine.state.running.examples, 0)  # logged at each epoch end

    def test_first_dim_size(self):
        self.assertEqual(first_dim_size((torch.zeros(5, 2), torch.zeros(5))), 5)
        self.assertEqual(first_dim_size(({"a": torch.zeros(3)}, None)), 3)
        self.assertEqual(first_dim_size((["a", "b"], torch.zeros(2))), 2)


class HotPathTestCase(unittest.TestCase):
    """Per-batch shortcuts added for the multi-task trainers."""

    def test_single_part_loss_dict_is_the_total(self):
        from metal.engine import _total_loss

        loss = torch.tensor(2.5, requires_grad=True)
        total, parts = _total_loss(({"a/loss": loss}, {"a/loss": 3}), 8)
        self.assertIs(total, loss)
        self.assertEqual(parts, {"a/loss": (2.5, 3)})
        total, parts = _total_loss(({"a": loss, "b": loss * 2}, {}), 8)
        self.assertAlmostEqual(total.item(), 7.5)
        self.assertEqual(parts, {"a": (2.5, 8), "b": (5.0, 8)})

    def test_per_batch_schedule_only_when_needed(self):
        model = nn.Linear(2, 2)
        optimizer = build_optimizer("sgd", model.parameters(), {"lr": 0.1})
        self.assertFalse(
            LRSchedule(optimizer, None, step_unit="batches").steps_per_batch
        )
        self.assertTrue(
            LRSchedule(
                optimizer, "exponential", {"gamma": 0.5}, "batches"
            ).steps_per_batch
        )
        self.assertTrue(LRSchedule(optimizer, None, warmup_batches=2).steps_per_batch)

    def test_clipping_uses_every_parameter_of_the_model(self):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
        engine = make_engine(
            model, optimizer="sgd", optimizer_kwargs={"lr": 1.0}, grad_clip=1e-3
        )
        before = [p.detach().clone() for p in model.parameters()]
        engine.fit([(torch.ones(4, 2) * 100,)], lambda b: model(b[0]).sum())
        self.assertEqual(len(engine._clip_params), 4)
        moved = sum((p - q).pow(2).sum() for p, q in zip(model.parameters(), before))
        self.assertLessEqual(moved.sqrt().item(), 1e-3 + 1e-6)


class TensorBatchesTestCase(unittest.TestCase):
    def test_covers_every_row_once_in_shuffled_order(self):
        X = torch.arange(10).float().reshape(10, 1)
        Y = torch.arange(10)
        torch.manual_seed(0)
        batches = list(TensorBatches((X, Y), batch_size=4))
        self.assertEqual([len(b[1]) for b in batches], [4, 4, 2])
        order = torch.cat([b[1] for b in batches])
        self.assertEqual(sorted(order.tolist()), list(range(10)))
        self.assertNotEqual(order.tolist(), list(range(10)))
        self.assertTrue(
            torch.equal(torch.cat([b[0] for b in batches]).squeeze(1), order.float())
        )
        torch.manual_seed(0)
        again = torch.cat([b[1] for b in TensorBatches((X, Y), batch_size=4)])
        self.assertTrue(torch.equal(order, again))

    def test_sequential_drop_last_nested_and_sparse(self):
        X = sparse.csr_matrix(np.eye(5, dtype=np.float64))
        Y = [torch.arange(5), torch.arange(5) * 2]
        batches = TensorBatches((X, Y), batch_size=2, shuffle=False, drop_last=True)
        self.assertEqual(len(batches), 2)
        out = list(batches)
        self.assertEqual(len(out), 2)
        X1, (Y1a, Y1b) = out[1]
        self.assertEqual(X1.dtype, torch.float32)
        self.assertTrue(torch.equal(X1, torch.eye(5)[2:4]))
        self.assertEqual(Y1b.tolist(), [4, 6])

    def test_bad_inputs(self):
        with self.assertRaisesRegex(ValueError, "same number"):
            TensorBatches((torch.zeros(3), torch.zeros(4)))
        with self.assertRaisesRegex(ValueError, "batch_size"):
            TensorBatches((torch.zeros(3),), batch_size=0)
        with self.assertRaisesRegex(ValueError, "tensors"):
            TensorBatches((["a", "b"],))


class ResumeTestCase(unittest.TestCase):
    """A run interrupted mid-epoch resumes from its last checkpoint and ends
    with exactly the weights of an uninterrupted run."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.data = toy_data(60)

    def tearDown(self):
        self.tmp.cleanup()

    def build(self, folder):
        torch.manual_seed(3)
        model = nn.Sequential(
            nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2)
        )
        checkpointer = Checkpointer(
            {
                "checkpoint_dir": folder,
                "checkpoint_every": 3,
                "checkpoint_metric": "valid/acc",
            },
            verbose=False,
        )

        def evaluate(m):
            with torch.no_grad():
                pred = m(self.data[0]).argmax(dim=1)
            # consume some NumPy randomness, as tie-breaking in scoring does
            np.random.random(3)
            return {"valid/acc": float((pred == self.data[1]).float().mean())}

        config = EngineConfig(
            n_epochs=4,
            optimizer="adam",
            optimizer_kwargs={"lr": 0.05},
            lr_scheduler="exponential",
            lr_scheduler_kwargs={"gamma": 0.9},
            warmup_steps=2,
            log_unit="batches",
            log_every=2,
            valid_every=4,
        )
        engine = Engine(model, config, [checkpointer], evaluate=evaluate)
        self.checkpointer = checkpointer
        return model, engine

    def step_fn(self, model, crash_at=None):
        count = [0]

        def step(batch):
            count[0] += 1
            if crash_at is not None and count[0] == crash_at:
                raise KeyboardInterrupt("simulated crash")
            return F.cross_entropy(model(batch[0]), batch[1])

        return step

    def test_resume_mid_epoch_matches_uninterrupted_run(self):
        full_dir = os.path.join(self.tmp.name, "full")
        model, engine = self.build(full_dir)
        random.seed(0)
        np.random.seed(0)
        full = engine.fit(TensorBatches(self.data, 8), self.step_fn(model))
        full_weights = {k: v.clone() for k, v in model.state_dict().items()}

        crash_dir = os.path.join(self.tmp.name, "crash")
        model, engine = self.build(crash_dir)
        random.seed(0)
        np.random.seed(0)
        with self.assertRaises(KeyboardInterrupt):
            engine.fit(TensorBatches(self.data, 8), self.step_fn(model, crash_at=19))
        # 8 batches per epoch: the last snapshot is batch 18, in epoch 3
        last = os.path.join(crash_dir, "model_checkpoint_18.pth")
        self.assertTrue(os.path.exists(last))
        self.assertFalse(
            os.path.exists(os.path.join(crash_dir, "model_checkpoint_21.pth"))
        )

        model, engine = self.build(crash_dir)  # a fresh process would do this
        np.random.seed(123)  # unrelated RNG use in between
        bundle = self.checkpointer.restore(last)
        self.assertEqual(bundle["training_state"]["epoch"], 2)
        self.assertEqual(bundle["training_state"]["batches_done"], 2)
        resumed = engine.fit(
            TensorBatches(self.data, 8), self.step_fn(model), restore_state=bundle
        )
        for name, value in model.state_dict().items():
            self.assertTrue(torch.equal(value, full_weights[name]), name)
        self.assertEqual(resumed.epochs_completed, 4)
        self.assertEqual(resumed.best_iteration, full.best_iteration)
        self.assertEqual(resumed.best_score, full.best_score)
        self.assertEqual(engine.progress.unit_total, 32)
        self.assertEqual(sorted(os.listdir(crash_dir)), sorted(os.listdir(full_dir)))

    def test_resume_needs_training_state(self):
        model, engine = self.build(self.tmp.name)
        with self.assertRaisesRegex(ValueError, "training state"):
            engine.fit(
                TensorBatches(self.data, 8),
                self.step_fn(model),
                restore_state={"model": model.state_dict()},
            )


class RngStateTestCase(unittest.TestCase):
    def test_round_trip(self):
        state = capture_rng_state()
        first = (random.random(), np.random.random(), torch.rand(1).item())
        set_rng_state(state)
        second = (random.random(), np.random.random(), torch.rand(1).item())
        self.assertEqual(first, second)
        path = os.path.join(tempfile.mkdtemp(), "rng.pth")
        torch.save(state, path)
        loaded = torch.load(path, weights_only=True)
        set_rng_state(loaded)
        self.assertEqual(first[0], random.random())
        os.remove(path)
        os.rmdir(os.path.dirname(path))


if __name__ == "__main__":
    unittest.main()


class SparseAdamTest(unittest.TestCase):
    def _fit(self, model):
        config = EngineConfig(
            n_epochs=1,
            optimizer="sparseadam",
            optimizer_kwargs={"lr": 0.1},
            verbose=False,
        )
        engine = Engine(model, config)
        batches = [torch.tensor([[1, 2], [3, 0]])]
        return engine.fit(batches, lambda batch: model(batch).pow(2).mean())

    def test_sparse_only_model_trains(self):
        torch.manual_seed(0)
        model = torch.nn.EmbeddingBag(5, 1, mode="sum", sparse=True)
        before = model.weight.detach().clone()
        self._fit(model)
        self.assertFalse(torch.equal(before, model.weight.detach()))

    def test_dense_parameters_are_named(self):
        model = torch.nn.Sequential(
            torch.nn.EmbeddingBag(5, 3, mode="sum", sparse=True), torch.nn.Linear(3, 1)
        )
        with self.assertRaisesRegex(ValueError, r"dense: 1\.weight, 1\.bias"):
            self._fit(model)
