import os
import tempfile
import unittest
from collections import Counter

import torch

from metal.contrib.featurizers.embedding_featurizer import (
    EmbeddingFeaturizer,
    TrainableEmbeddingFeaturizer,
    Vocab,
    vectors_for_vocab,
)
from metal.contrib.modules.lstm_module import EmbeddingsEncoder, LSTMModule

SENTS = [
    ["the", "cat", "sat"],
    ["the", "dog", "sat", "on", "the", "mat"],
    ["a", "cat"],
]


class VocabTest(unittest.TestCase):
    def test_order_and_lookup(self):
        vocab = Vocab(
            Counter({"b": 3, "a": 3, "d": 2, "c": 1}), specials=["<m>", "<pad>"]
        )
        self.assertEqual(vocab.itos, ["<unk>", "<m>", "<pad>", "a", "b", "d", "c"])
        self.assertEqual(len(vocab), 7)
        self.assertEqual(vocab.stoi["a"], 3)
        self.assertEqual(vocab.stoi["zebra"], 0)
        self.assertNotIn("zebra", vocab.stoi)  # lookups do not insert
        self.assertEqual(vocab.freqs["b"], 3)

    def test_max_size_and_min_freq(self):
        counts = Counter({"b": 3, "a": 3, "d": 2, "c": 1, "<pad>": 9})
        self.assertEqual(Vocab(counts, max_size=2).itos, ["<unk>", "<pad>", "a", "b"])
        self.assertEqual(
            Vocab(counts, min_freq=2).itos, ["<unk>", "<pad>", "a", "b", "d"]
        )
        self.assertEqual(Vocab(counts, min_freq=0).itos[-1], "c")
        with self.assertRaisesRegex(ValueError, "max_size"):
            Vocab(counts, max_size=-1)
        with self.assertRaisesRegex(ValueError, "min_freq"):
            Vocab(counts, min_freq=1.5)


class TrainableEmbeddingFeaturizerTest(unittest.TestCase):
    def test_fit_builds_vocab_with_markers(self):
        featurizer = TrainableEmbeddingFeaturizer(markers=["[[B]]", "[[E]]"])
        self.assertEqual(featurizer.specials, ["[[B]]", "[[E]]", "<pad>"])
        self.assertIsNone(featurizer.vocab)
        featurizer.fit(SENTS)
        self.assertEqual(
            featurizer.vocab.itos,
            [
                "<unk>",
                "[[B]]",
                "[[E]]",
                "<pad>",
                "the",
                "cat",
                "sat",
                "a",
                "dog",
                "mat",
                "on",
            ],
        )

    def test_transform_keeps_row_order_and_pads(self):
        featurizer = TrainableEmbeddingFeaturizer()
        featurizer.fit(SENTS)
        stoi = featurizer.vocab.stoi
        X = featurizer.transform(SENTS + [["the", "unicorn"], []])
        self.assertEqual(X.dtype, torch.long)
        self.assertEqual(tuple(X.shape), (5, 6))
        for row, tokens in enumerate(SENTS):
            expected = [stoi[t] for t in tokens] + [0] * (6 - len(tokens))
            self.assertEqual(X[row].tolist(), expected)
        self.assertEqual(X[3].tolist(), [stoi["the"], 0, 0, 0, 0, 0])
        self.assertEqual(X[4].tolist(), [0] * 6)
        self.assertEqual(tuple(featurizer.transform([[]]).shape), (1, 1))

    def test_fit_transform_with_vocab_kwargs(self):
        featurizer = TrainableEmbeddingFeaturizer()
        X = featurizer.fit_transform(SENTS, max_size=2)
        self.assertEqual(featurizer.vocab.itos, ["<unk>", "<pad>", "the", "cat"])
        self.assertEqual(X[2].tolist(), [0, 3, 0, 0, 0, 0])

    def test_feeds_an_lstm(self):
        featurizer = TrainableEmbeddingFeaturizer()
        X = featurizer.fit_transform(SENTS)
        lstm = LSTMModule(
            4,
            3,
            verbose=False,
            encoder_class=EmbeddingsEncoder,
            encoder_kwargs={"vocab_size": len(featurizer.vocab)},
        )
        self.assertEqual(tuple(lstm(X).shape), (3, 6))

    def test_errors(self):
        featurizer = TrainableEmbeddingFeaturizer()
        with self.assertRaisesRegex(ValueError, "not fitted"):
            featurizer.transform(SENTS)
        with self.assertRaisesRegex(ValueError, "list of token lists; found str"):
            featurizer.fit("the cat sat")
        with self.assertRaisesRegex(ValueError, "item 1 is a str"):
            featurizer.fit([["a"], "the cat"])
        with self.assertRaisesRegex(ValueError, "item 0 contains 3"):
            featurizer.fit([["a", 3]])
        with self.assertRaisesRegex(ValueError, "markers"):
            TrainableEmbeddingFeaturizer(markers="[[B]]")
        with self.assertRaises(NotImplementedError):
            EmbeddingFeaturizer().fit(SENTS)


class VectorsForVocabTest(unittest.TestCase):
    def setUp(self):
        self.vocab = Vocab(Counter({"cat": 2, "dog": 1}))  # <unk> <pad> cat dog

    def test_from_mapping(self):
        table = vectors_for_vocab(self.vocab, {"cat": [1.0, 2.0], "emu": [5.0, 5.0]})
        self.assertEqual(
            table.tolist(), [[0.0, 0.0], [0.0, 0.0], [1.0, 2.0], [0.0, 0.0]]
        )
        encoder = EmbeddingsEncoder(2, embeddings=table, verbose=False)
        self.assertEqual(encoder.encode(torch.tensor([[2]])).tolist(), [[[1.0, 2.0]]])

    def test_from_glove_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "vectors.txt")
            with open(path, "w") as f:
                f.write("emu 9 9 9\ndog 0.5 -1 2\n\ncat 1 1 1\n")
            table = vectors_for_vocab(self.vocab, path)
            self.assertEqual(table.tolist()[2:], [[1.0, 1.0, 1.0], [0.5, -1.0, 2.0]])
            with open(path, "w") as f:
                f.write("cat 1 x\n")
            with self.assertRaisesRegex(ValueError, "must be numbers"):
                vectors_for_vocab(self.vocab, path)
            with open(path, "w") as f:
                f.write("emu 1 2\n")
            with self.assertRaisesRegex(ValueError, "no word of the vocabulary"):
                vectors_for_vocab(self.vocab, path)
            with self.assertRaisesRegex(ValueError, "does not exist"):
                vectors_for_vocab(self.vocab, os.path.join(tmp, "missing.txt"))

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "same non-zero length"):
            vectors_for_vocab(self.vocab, {"cat": [1.0], "dog": [1.0, 2.0]})
        with self.assertRaisesRegex(ValueError, "non-empty"):
            vectors_for_vocab(self.vocab, {})
        with self.assertRaisesRegex(ValueError, "vocab must be a Vocab"):
            vectors_for_vocab(["cat"], {"cat": [1.0]})


if __name__ == "__main__":
    unittest.main()
