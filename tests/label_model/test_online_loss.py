import os
import unittest

import numpy as np
import torch
import torch.nn as nn

from metal.label_model import LabelModel, WeakSupervisionLoss
from metal.synthetic.generate import SingleTaskTreeDepsGenerator

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "tutorials", "data")


def synthetic_task(n=12000, m=10, seed=0):
    np.random.seed(seed)
    data = SingleTaskTreeDepsGenerator(n, m, k=2)
    L = data.L.toarray()
    gen = torch.Generator().manual_seed(seed)
    signal = torch.from_numpy((data.Y == 1).astype(np.float32))[:, None]
    X = torch.randn(n, 20, generator=gen) + 0.8 * signal
    return X, L, data.Y


def train_mlp(X, targets_fn, epochs=2, batch=100, seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(X.shape[1], 32), nn.ReLU(), nn.Linear(32, 2))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(epochs):
        for start in range(0, len(X), batch):
            rows = slice(start, start + batch)
            loss = targets_fn(net(X[rows]), rows)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return net


class WeakSupervisionLossQualityTest(unittest.TestCase):
    def test_matches_training_on_offline_label_model(self):
        X, L, Y = synthetic_task()
        criterion = WeakSupervisionLoss(
            10, buffer_capacity=2000, update_frequency=10, seed=0
        )
        online = train_mlp(X, lambda out, rows: criterion(out, L[rows]))

        label_model = LabelModel(k=2, verbose=False, seed=0)
        label_model.train_model(L)
        probs = torch.from_numpy(label_model.predict_proba(L)).float()
        offline = train_mlp(
            X,
            lambda out, rows: -(probs[rows] * torch.log_softmax(out, 1)).sum(1).mean(),
        )

        def accuracy(net):
            with torch.no_grad():
                return np.mean(net(X).argmax(1).numpy() + 1 == Y)

        self.assertGreater(accuracy(online), 0.9)
        self.assertGreater(accuracy(online), accuracy(offline) - 0.03)

    def test_label_model_matches_offline_fit_on_same_rows(self):
        _, L, _ = synthetic_task(n=3000)
        criterion = WeakSupervisionLoss(
            10, buffer_capacity=3000, update_frequency=1, seed=0
        )
        criterion(torch.zeros(3000, 2), L)
        offline = LabelModel(k=2, verbose=False, seed=0)
        offline.train_model(L)
        np.testing.assert_allclose(
            criterion.label_model.predict_proba(L), offline.predict_proba(L), atol=1e-6
        )


class WeakSupervisionLossMechanicsTest(unittest.TestCase):
    def setUp(self):
        rng = np.random.default_rng(0)
        self.votes = rng.integers(0, 3, size=(500, 4))

    def test_buffer_keeps_the_last_rows(self):
        criterion = WeakSupervisionLoss(4, buffer_capacity=50, update_frequency=3)
        fed = []
        for size in (7, 30, 1, 44, 3, 120, 9):
            batch = self.votes[len(fed) : len(fed) + size]
            fed.extend(batch.tolist())
            criterion(torch.zeros(len(batch), 2), batch)
            expected = np.array(fed[-50:])
            self.assertEqual(criterion.buffer_size, len(expected))
            np.testing.assert_array_equal(criterion.buffer, expected)

    def test_incremental_counts_equal_recomputed_overlaps(self):
        criterion = WeakSupervisionLoss(4, buffer_capacity=64, update_frequency=1)
        for start in range(0, 400, 37):
            criterion(
                torch.zeros(len(self.votes[start : start + 37]), 2),
                self.votes[start : start + 37],
            )
            buffered = criterion.buffer
            X = criterion._one_hot(buffered)
            np.testing.assert_allclose(criterion._counts, X.T @ X, atol=1e-9)
            O = criterion.label_model.O.double().numpy()
            np.testing.assert_allclose(O, X.T @ X / len(buffered), atol=1e-6)

    def test_refit_frequency_and_warm_start(self):
        criterion = WeakSupervisionLoss(4, buffer_capacity=100, update_frequency=4)
        model = criterion.label_model
        starts = []  # the start of every mu fit
        minimize = model._minimize

        def recording_minimize(objective, start, name):
            if name == "mu":
                starts.append(np.array(start))
            return minimize(objective, start, name)

        model._minimize = recording_minimize
        refits = []
        for call in range(10):
            if call == 4:
                previous_mu = model.mu.detach().double().numpy()
                n_fits = len(starts)
            criterion(torch.zeros(10, 2), self.votes[call * 10 : call * 10 + 10])
            refits.append(criterion.n_refits)
            if call == 4:
                # the refit starts from the previous fit's mu
                np.testing.assert_allclose(starts[n_fits], previous_mu)
        # refits on calls 1, 5 and 9 (the first call and every 4th after it)
        self.assertEqual(refits, [1, 1, 1, 1, 2, 2, 2, 2, 3, 3])
        self.assertEqual(criterion.n_calls, 10)

    def test_single_logit_forms_match_two_logits(self):
        torch.manual_seed(0)
        z = torch.randn(20)
        votes = self.votes[:20]
        losses = []
        for outputs in (z, z[:, None], torch.stack([z, torch.zeros(20)], 1)):
            criterion = WeakSupervisionLoss(
                4, buffer_capacity=100, update_frequency=1, seed=1
            )
            losses.append(criterion(outputs, votes).item())
        self.assertAlmostEqual(losses[0], losses[2], places=5)
        self.assertAlmostEqual(losses[1], losses[2], places=5)

    def test_loss_value_and_gradient(self):
        criterion = WeakSupervisionLoss(
            4, buffer_capacity=100, update_frequency=1, seed=1
        )
        outputs = torch.randn(30, 2, requires_grad=True)
        loss = criterion(outputs, torch.from_numpy(self.votes[:30]))
        probs = torch.from_numpy(
            criterion.label_model.predict_proba(self.votes[:30])
        ).float()
        expected = -(probs * torch.log_softmax(outputs, 1)).sum(1).mean()
        self.assertAlmostEqual(loss.item(), expected.item(), places=5)
        loss.backward()
        self.assertIsNotNone(outputs.grad)
        self.assertEqual(
            list(criterion.parameters()), list(criterion.label_model.parameters())
        )
        self.assertTrue(all(p.grad is None for p in criterion.label_model.parameters()))

    def test_three_classes(self):
        rng = np.random.default_rng(1)
        votes = rng.integers(0, 4, size=(200, 5))
        criterion = WeakSupervisionLoss(5, k=3, buffer_capacity=150, update_frequency=2)
        loss = criterion(torch.randn(200, 3), votes)
        self.assertTrue(torch.isfinite(loss))

    def test_sequence_form_on_tennis_rally_votes(self):
        L = np.load(os.path.join(DATA, "tennis_rally", "L_train_video.npy"))
        votes = np.where(L == 1, 1, np.where(L == -1, 2, 0)).astype(np.int64)
        window = 10
        n_windows = len(votes) // window
        sequences = votes[: n_windows * window].reshape(n_windows, window, 6)
        torch.manual_seed(0)
        model = nn.GRU(6, 8, batch_first=True)
        head = nn.Linear(8, 2)
        optimizer = torch.optim.Adam(list(model.parameters()) + list(head.parameters()))
        criterion = WeakSupervisionLoss(
            6, buffer_capacity=2000, update_frequency=5, seed=0
        )
        features = torch.from_numpy(sequences).float()
        first = last = None
        for epoch in range(3):
            for start in range(0, n_windows, 32):
                batch = slice(start, start + 32)
                hidden, _ = model(features[batch])
                loss = criterion(head(hidden), sequences[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                first = loss.item() if first is None else first
                last = loss.item()
        self.assertEqual(criterion.buffer_size, 2000)
        self.assertTrue(np.isfinite(last))
        self.assertLess(last, first)
        Y_dev = np.load(os.path.join(DATA, "tennis_rally", "Y_dev_video.npy"))
        L_dev = np.load(os.path.join(DATA, "tennis_rally", "L_dev_video.npy"))
        dev_votes = np.where(L_dev == 1, 1, np.where(L_dev == -1, 2, 0))
        gold = np.where(Y_dev == 1, 1, 2)
        accuracy = criterion.label_model.score((dev_votes, gold), verbose=False)
        self.assertGreater(accuracy, 0.8)

    def test_with_dependencies(self):
        np.random.seed(0)
        data = SingleTaskTreeDepsGenerator(3000, 6, k=2, edge_prob=1.0)
        L = data.L.toarray()
        criterion = WeakSupervisionLoss(6, buffer_capacity=1000, deps=data.E, seed=0)
        for start in range(0, 3000, 250):
            loss = criterion(torch.zeros(250, 2), L[start : start + 250])
            self.assertTrue(torch.isfinite(loss))
        self.assertTrue(criterion.label_model.inv_form)


class WeakSupervisionLossBadInputTest(unittest.TestCase):
    def test_bad_votes_and_outputs(self):
        criterion = WeakSupervisionLoss(3, buffer_capacity=10)
        good = np.array([[1, 0, 2], [2, 2, 0]])
        cases = [
            (torch.zeros(2, 2), np.array([[1, 0, 3], [2, 2, 0]]), "values in 0..2"),
            (torch.zeros(2, 2), np.array([[1, 0, -1], [2, 2, 0]]), "values in 0..2"),
            (torch.zeros(2, 2), np.array([[1, 0.5, 1], [2, 2, 0]]), "integer votes"),
            (torch.zeros(2, 2), np.array([[1, 0], [2, 2]]), "m=3"),
            (torch.zeros(2, 2), np.array([1, 0, 2]), "m=3"),
            (torch.zeros(3, 2), good, "same items"),
            (torch.zeros(2, 3), good, "k=2"),
            (np.zeros((2, 2)), good, "tensor of logits"),
            (torch.zeros(2, 2), "votes", "weak_labels"),
        ]
        for outputs, votes, pattern in cases:
            with self.subTest(pattern=pattern):
                with self.assertRaisesRegex(ValueError, pattern):
                    criterion(outputs, votes)

    def test_bad_constructor_arguments(self):
        with self.assertRaisesRegex(ValueError, "buffer_capacity"):
            WeakSupervisionLoss(3, buffer_capacity=0)
        with self.assertRaisesRegex(ValueError, "update_frequency"):
            WeakSupervisionLoss(3, update_frequency=0)
        with self.assertRaisesRegex(ValueError, "m must"):
            WeakSupervisionLoss(0)
        with self.assertRaisesRegex(ValueError, "class_balance"):
            WeakSupervisionLoss(3, class_balance=[0.2, 0.2])
        with self.assertRaisesRegex(ValueError, "source 5"):
            WeakSupervisionLoss(3, deps=[(0, 5)])
        with self.assertWarnsRegex(UserWarning, "'nonsense'.*no effect"):
            WeakSupervisionLoss(3, nonsense=1)


if __name__ == "__main__":
    unittest.main()
