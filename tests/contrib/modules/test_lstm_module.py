import json
import os
import tempfile
import unittest

import numpy as np
import torch
import torch.nn as nn

from metal.contrib.modules.lstm_module import (
    CNNEncoder,
    EmbeddingsEncoder,
    Encoder,
    LSTMModule,
)
from metal.end_model import EndModel

N, SEQ_LEN, MAX_INT = 1000, 5, 8


def memorize_first_data():
    """Tokens in 1..8; the label is the first token."""
    X = torch.randint(1, MAX_INT + 1, (N, SEQ_LEN)).long()
    Y = X[:, 0].clone()
    return X, Y


def memorize_marker_data():
    """Token 9 at a random position 1..3; the label is the token after it."""
    X = torch.randint(1, MAX_INT + 1, (N, SEQ_LEN)).long()
    positions = torch.randint(1, 4, (N,))
    rows = torch.arange(N)
    X[rows, positions] = MAX_INT + 1
    Y = X[rows, positions + 1].clone()
    return X, Y


def attention_lstm(bidirectional=False, vocab_size=MAX_INT + 1):
    """The original's LSTM over token embeddings with attention pooling."""
    return LSTMModule(
        4,
        10,
        bidirectional=bidirectional,
        verbose=False,
        lstm_reduction="attention",
        encoder_class=EmbeddingsEncoder,
        encoder_kwargs={"vocab_size": vocab_size},
    )


def split(X, Y):
    return (X[:800], Y[:800]), (X[800:900], Y[800:900]), (X[900:], Y[900:])


class LSTMTrainingTest(unittest.TestCase):
    """The original's tests/metal/contrib/test_lstm.py with its thresholds."""

    @classmethod
    def setUpClass(cls):
        cls.threads = torch.get_num_threads()
        torch.set_num_threads(1)
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()
        torch.set_num_threads(cls.threads)

    def setUp(self):
        torch.manual_seed(1)
        np.random.seed(1)

    def end_model(self, lstm_module, batchnorm_key="input_batchnorm", **kwargs):
        """The original's EndModel over ``lstm_module`` (``batchnorm_key``:
        the name its batchnorm setting is passed under)."""
        return EndModel(
            input_module=lstm_module,
            layer_out_dims=[lstm_module.output_dim, MAX_INT],
            optimizer="adam",
            seed=1,
            verbose=False,
            checkpoint_dir=self.tmp.name,
            **{batchnorm_key: True},
            **kwargs,
        )

    def test_lstm_memorize_first(self):
        train, dev, test = split(*memorize_first_data())
        lstm_module = attention_lstm()
        em = self.end_model(lstm_module)
        em.train_model(train, valid_data=dev, n_epochs=10, verbose=False)
        self.assertGreater(em.score(test, verbose=False), 0.95)

    def test_lstm_with_v05_keyword_arguments(self):
        """The EndModel built as MeTaL v0.5's LSTM test builds it: ``k`` and
        ``batchnorm`` are not config keys; each is kept with a warning."""
        train, dev, test = split(*memorize_first_data())
        lstm_module = attention_lstm()
        with self.assertWarns(UserWarning) as caught:
            em = self.end_model(lstm_module, batchnorm_key="batchnorm", k=MAX_INT)
        messages = sorted(str(w.message) for w in caught.warnings)
        self.assertEqual(len(messages), 2, messages)
        self.assertIn("'batchnorm'", messages[0])
        self.assertIn("'k'", messages[1])
        self.assertEqual(em.k, MAX_INT)
        em.train_model(train, valid_data=dev, n_epochs=10, verbose=False)
        self.assertGreater(em.score(test, verbose=False), 0.95)

    def test_lstm_memorize_marker(self):
        train, dev, test = split(*memorize_marker_data())
        lstm_module = attention_lstm(bidirectional=True, vocab_size=MAX_INT + 2)
        em = self.end_model(lstm_module)
        em.train_model(train, valid_data=dev, n_epochs=15, verbose=False)
        self.assertGreater(em.score(test, verbose=False), 0.95)

    def test_lstm_embeddings_freeze(self):
        train, dev, _ = split(*memorize_marker_data())
        for freeze in (True, False):
            lstm_module = LSTMModule(
                4,
                10,
                bidirectional=True,
                verbose=False,
                encoder_class=EmbeddingsEncoder,
                encoder_kwargs={"vocab_size": MAX_INT + 2, "freeze": freeze},
            )
            self.assertEqual(lstm_module.lstm_reduction, "max")
            before = lstm_module.encoder.embeddings.weight.detach().clone()
            em = self.end_model(lstm_module)
            em.train_model(train, valid_data=dev, n_epochs=15, verbose=False)
            after = lstm_module.encoder.embeddings.weight.detach()
            change = (after - before).abs().sum().item()
            if freeze:
                self.assertEqual(change, 0.0)
            else:
                self.assertGreater(change, 0.0)

    def test_lstm_direct_features(self):
        X, Y = memorize_first_data()
        X_onehot = torch.zeros(N, SEQ_LEN, MAX_INT)
        X_onehot.scatter_(2, (X - 1)[:, :, None], 1.0)
        train, dev, test = split(X_onehot, Y)
        lstm_module = LSTMModule(
            MAX_INT,
            10,
            bidirectional=False,
            verbose=False,
            lstm_reduction="attention",
            encoder_class=Encoder,
        )
        self.assertIsInstance(lstm_module.encoder, Encoder)
        self.assertNotIsInstance(lstm_module.encoder, EmbeddingsEncoder)
        em = self.end_model(lstm_module)
        em.train_model(train, valid_data=dev, n_epochs=15, verbose=False)
        self.assertGreater(em.score(test, verbose=False), 0.95)

    def _determinism_run(self, train, dev, test):
        lstm_module = LSTMModule(
            4,
            10,
            bidirectional=True,
            verbose=False,
            seed=123,
            lstm_reduction="attention",
            encoder_class=EmbeddingsEncoder,
            encoder_kwargs={"vocab_size": MAX_INT + 2},
        )
        em = EndModel(
            input_module=lstm_module,
            layer_out_dims=[lstm_module.output_dim, MAX_INT],
            seed=123,
            verbose=False,
            checkpoint_dir=self.tmp.name,
        )
        em.train_model(train, valid_data=dev, n_epochs=2, verbose=False)
        return em.score(test, verbose=False), em.score(test, verbose=False)

    def test_lstm_determinism(self):
        train, dev, test = split(*memorize_marker_data())
        first, first_again = self._determinism_run(train, dev, test)
        self.assertEqual(first, first_again)
        torch.manual_seed(99)  # the seeds passed to the models must override this
        second, _ = self._determinism_run(train, dev, test)
        self.assertEqual(first, second)

    def test_tuner_with_lstm(self):
        try:
            from metal.tuners import RandomSearchTuner
        except ImportError:  # pragma: no cover - depends on metal.tuners
            self.skipTest("metal.tuners is not available")
        from metal.logging import LogWriter

        train, dev, _ = split(*memorize_marker_data())
        with tempfile.TemporaryDirectory() as log_dir:
            tuner = RandomSearchTuner(
                EndModel,
                module_classes={"input_module": LSTMModule},
                log_writer_class=LogWriter,
                log_dir=log_dir,
                seed=123,
            )
            init_kwargs = {
                "seed": 123,
                "layer_out_dims": [2 * 10, MAX_INT],
                "verbose": False,
                "checkpoint_dir": os.path.join(log_dir, "checkpoints"),
            }
            module_kwargs = {
                "input_module": {
                    "seed": 123,
                    "bidirectional": True,
                    "verbose": False,
                    "lstm_reduction": "attention",
                    "encoder_class": EmbeddingsEncoder,
                    "encoder_kwargs": {"vocab_size": MAX_INT + 2},
                }
            }
            # No middle layers, so the searched dropout cannot matter.
            tuner.search(
                {"middle_dropout": [0.0, 1.0]},
                dev,
                init_kwargs=init_kwargs,
                train_args=[train],
                train_kwargs={"n_epochs": 2},
                module_args={"input_module": (4, 10)},
                module_kwargs=module_kwargs,
                verbose=False,
            )
            with open(tuner.report_path) as f:
                report = json.load(f)
            self.assertEqual(len(report), 2)
            self.assertEqual(report[0]["score"], report[1]["score"])


class LSTMModuleTest(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)

    def lstm(self, reduction="max", bidirectional=True, **kwargs):
        return LSTMModule(
            3,
            5,
            lstm_reduction=reduction,
            bidirectional=bidirectional,
            verbose=False,
            encoder_class=EmbeddingsEncoder,
            encoder_kwargs={"vocab_size": 7},
            **kwargs,
        )

    def padded_batch(self):
        """Rows of lengths 2, 4 and 1 (trailing zeros are padding), with an
        id-0 token inside the second row."""
        return torch.tensor([[3, 2, 0, 0], [1, 0, 5, 6], [4, 0, 0, 0]])

    def test_output_dim(self):
        self.assertEqual(self.lstm(bidirectional=True).output_dim, 10)
        self.assertEqual(self.lstm(bidirectional=False).output_dim, 5)
        out = self.lstm()(self.padded_batch())
        self.assertEqual(tuple(out.shape), (3, 10))

    def test_rows_match_unpadded_runs_in_input_order(self):
        X = self.padded_batch()
        lengths = [2, 4, 1]
        for reduction in ("max", "mean", "last", "attention"):
            for bidirectional in (True, False):
                module = self.lstm(reduction, bidirectional)
                module.eval()
                with torch.no_grad():
                    batch_out = module(X)
                    for row, length in enumerate(lengths):
                        alone = module(X[row : row + 1, :length])
                        torch.testing.assert_close(
                            batch_out[row : row + 1],
                            alone,
                            msg=f"{reduction}, bidirectional={bidirectional}",
                        )

    def test_reductions_against_plain_lstm(self):
        X = torch.tensor([[2, 3, 4]])
        for reduction in ("max", "mean", "last"):
            module = self.lstm(reduction)
            with torch.no_grad():
                outputs, _ = module.lstm(module.encoder.encode(X))
                expected = {
                    "max": outputs.max(dim=1).values,
                    "mean": outputs.mean(dim=1),
                    "last": outputs[:, -1],
                }[reduction]
                torch.testing.assert_close(module(X), expected)

    def test_attention_parameter(self):
        module = self.lstm("attention")
        self.assertEqual(tuple(module.attention_param.shape), (10, 1))
        self.assertIn("attention_param", dict(module.named_parameters()))
        self.assertFalse(hasattr(self.lstm("max"), "attention_param"))
        X = torch.tensor([[2, 3, 4]])
        with torch.no_grad():
            outputs, _ = module.lstm(module.encoder.encode(X))
            weights = torch.softmax(outputs @ module.attention_param, dim=1)
            torch.testing.assert_close(module(X), (weights * outputs).sum(dim=1))

    def test_all_padding_row_counts_as_length_one(self):
        module = self.lstm()
        out = module(torch.tensor([[0, 0, 0], [1, 2, 0]]))
        self.assertEqual(tuple(out.shape), (2, 10))
        self.assertTrue(torch.isfinite(out).all())

    def test_feature_input_padding(self):
        module = LSTMModule(2, 4, verbose=False, lstm_reduction="mean")
        X = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]]])
        with torch.no_grad():
            torch.testing.assert_close(module(X), module(X[:, :2]))

    def test_seed_makes_construction_deterministic(self):
        a = self.lstm(seed=5)
        torch.manual_seed(123)
        b = self.lstm(seed=5)
        for (name, p), q in zip(a.named_parameters(), b.parameters()):
            self.assertTrue(torch.equal(p, q), name)

    def test_encoder_kwargs_not_modified(self):
        kwargs = {"vocab_size": 7}
        LSTMModule(
            3, 5, verbose=False, encoder_class=EmbeddingsEncoder, encoder_kwargs=kwargs
        )
        self.assertEqual(kwargs, {"vocab_size": 7})

    def test_unknown_kwargs_are_ignored(self):
        module = self.lstm(middle_dropout=0.5, n_epochs=3)
        self.assertEqual(module.output_dim, 10)

    def test_reset_parameters_is_noop(self):
        module = self.lstm("attention")
        before = [p.detach().clone() for p in module.parameters()]
        module.reset_parameters()
        for p, q in zip(before, module.parameters()):
            self.assertTrue(torch.equal(p, q))

    def test_bad_reduction_raises_at_forward(self):
        module = self.lstm("median")
        with self.assertRaisesRegex(ValueError, "lstm_reduction.*'median'"):
            module(self.padded_batch())

    def test_bad_inputs(self):
        module = self.lstm()
        with self.assertRaisesRegex(ValueError, r"\[batch, seq\]"):
            module(torch.tensor([1, 2, 3]))
        with self.assertRaisesRegex(ValueError, "LSTMModule expects a tensor"):
            module([[1, 2, 3]])
        with self.assertRaisesRegex(ValueError, "at least one sequence position"):
            module(torch.zeros((2, 0), dtype=torch.long))
        with self.assertRaisesRegex(ValueError, "hidden_size"):
            LSTMModule(3, 0, verbose=False)
        with self.assertRaisesRegex(ValueError, "lstm_num_layers"):
            LSTMModule(3, 4, lstm_num_layers=0, verbose=False)
        with self.assertRaisesRegex(ValueError, "encoder_kwargs"):
            LSTMModule(3, 4, encoder_kwargs=[("vocab_size", 3)], verbose=False)
        features = LSTMModule(3, 4, verbose=False)
        with self.assertRaisesRegex(ValueError, r"\[batch, seq, 3\]"):
            features(torch.zeros(2, 4, 5))

    def test_verbose_prints(self):
        from contextlib import redirect_stdout
        from io import StringIO

        buffer = StringIO()
        with redirect_stdout(buffer):
            LSTMModule(
                3,
                4,
                lstm_reduction="mean",
                encoder_class=EmbeddingsEncoder,
                encoder_kwargs={"vocab_size": 5, "freeze": True},
            )
        text = buffer.getvalue()
        self.assertIn("'mean'", text)
        self.assertIn("(5, 3)", text)
        self.assertIn("frozen", text)
        buffer = StringIO()
        with redirect_stdout(buffer):
            self.lstm()
        self.assertEqual(buffer.getvalue(), "")


class EncoderTest(unittest.TestCase):
    def test_encoder_returns_floats(self):
        encoder = Encoder(3)
        X = torch.ones(2, 4, 3, dtype=torch.long)
        out = encoder.encode(X)
        self.assertTrue(out.is_floating_point())
        self.assertTrue(torch.equal(out, X.float()))
        with self.assertRaisesRegex(ValueError, "encoded_size"):
            Encoder(0)

    def test_embeddings_encoder_random(self):
        encoder = EmbeddingsEncoder(4, vocab_size=6, verbose=False, seed=3)
        self.assertEqual(tuple(encoder.embeddings.weight.shape), (6, 4))
        self.assertTrue(encoder.embeddings.weight.requires_grad)
        again = EmbeddingsEncoder(4, vocab_size=6, verbose=False, seed=3)
        self.assertTrue(torch.equal(encoder.embeddings.weight, again.embeddings.weight))
        out = encoder.encode(torch.tensor([[1.0, 0.0]]))
        self.assertEqual(tuple(out.shape), (1, 2, 4))
        # id 0 is an ordinary (non-zero) row
        self.assertTrue(torch.equal(out[0, 1], encoder.embeddings.weight[0]))
        self.assertGreater(out[0, 1].abs().sum().item(), 0)

    def test_embeddings_encoder_pretrained(self):
        table = np.arange(12, dtype=np.float64).reshape(4, 3)
        expected = torch.tensor(table, dtype=torch.float)
        with tempfile.TemporaryDirectory() as tmp:
            npy = os.path.join(tmp, "vectors.npy")
            np.save(npy, table)
            pt = os.path.join(tmp, "vectors.pt")
            torch.save(expected, pt)
            txt = os.path.join(tmp, "vectors.txt")
            np.savetxt(txt, table)
            sources = [table, expected, npy, pt, txt]
            for source in sources:
                encoder = EmbeddingsEncoder(
                    3, embeddings=source, freeze=True, verbose=False
                )
                self.assertTrue(torch.equal(encoder.embeddings.weight, expected))
                self.assertFalse(encoder.embeddings.weight.requires_grad)
            out = encoder.encode(torch.tensor([[2, 0]]))
            self.assertTrue(torch.equal(out[0], expected[[2, 0]]))
            with self.assertRaisesRegex(ValueError, "does not exist"):
                EmbeddingsEncoder(3, embeddings=os.path.join(tmp, "nope.npy"))
            bad = os.path.join(tmp, "bad.txt")
            with open(bad, "w") as f:
                f.write("cat 1 2\n")
            with self.assertRaisesRegex(ValueError, "not a whitespace-separated"):
                EmbeddingsEncoder(3, embeddings=bad, verbose=False)
            for name in ("damaged.pt", "damaged.npy"):
                damaged = os.path.join(tmp, name)
                source = pt if name.endswith(".pt") else npy
                with open(source, "rb") as f:
                    data = f.read()
                with open(damaged, "wb") as f:
                    f.write(data[: len(data) // 2])
                with self.subTest(file=name):
                    with self.assertRaises(ValueError) as caught:
                        EmbeddingsEncoder(3, embeddings=damaged, verbose=False)
                    self.assertIn(damaged, str(caught.exception))
                    self.assertNotIn("weights_only", str(caught.exception))

    def test_embeddings_encoder_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "vocab_size.*embeddings.*neither"):
            EmbeddingsEncoder(3, verbose=False)
        with self.assertRaisesRegex(ValueError, "2-D"):
            EmbeddingsEncoder(3, embeddings=torch.zeros(3), verbose=False)
        with self.assertRaisesRegex(ValueError, "width 2 but encoded_size=3"):
            EmbeddingsEncoder(3, embeddings=torch.zeros(4, 2), verbose=False)
        with self.assertRaisesRegex(ValueError, "4 rows but vocab_size=5"):
            EmbeddingsEncoder(3, vocab_size=5, embeddings=torch.zeros(4, 3))
        with self.assertRaisesRegex(ValueError, "a 2-D tensor, a NumPy array"):
            EmbeddingsEncoder(3, embeddings=[[1, 2, 3]], verbose=False)
        with self.assertRaisesRegex(ValueError, "vocab_size"):
            EmbeddingsEncoder(3, vocab_size=-1, verbose=False)
        encoder = EmbeddingsEncoder(3, vocab_size=4, verbose=False)
        with self.assertRaisesRegex(ValueError, r"\[batch, seq\]"):
            encoder.encode(torch.zeros(2, 3, 3))

    def test_cnn_encoder_placeholder(self):
        self.assertIsInstance(CNNEncoder(), nn.Module)
        with self.assertRaises(NotImplementedError):
            CNNEncoder().encode(torch.zeros(1, 2))


if __name__ == "__main__":
    unittest.main()
