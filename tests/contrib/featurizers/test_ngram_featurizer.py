import unittest

import numpy as np
import scipy.sparse as sparse

from metal.contrib.featurizers.ngram_featurizer import (
    RelationNgramFeaturizer,
    english_stopwords,
)
from metal.contrib.info_extraction.mentions import RelationMention

TEXT = "Doctors said the drug aspirin causes severe headaches in some patients ."


def mention(text=TEXT, entities=("aspirin", "headaches"), doc_id=0):
    positions = []
    for entity in entities:
        start = text.index(entity)
        positions.append((start, start + len(entity)))
    return RelationMention(doc_id, text, positions)


class RelationNgramFeaturizerTest(unittest.TestCase):
    def test_preprocess_defaults(self):
        featurizer = RelationNgramFeaturizer()
        self.assertEqual(
            featurizer.preprocess([mention()]),
            ["doctor said drug entity_0 caus sever entity_1 patient ."],
        )

    def test_each_step_can_be_turned_off(self):
        m = mention()
        plain = RelationNgramFeaturizer(
            anonymize=False,
            trim_window=None,
            lowercase=False,
            drop_stopwords=False,
            stem=False,
        )
        self.assertEqual(plain.preprocess([m]), [TEXT])
        trimmed = RelationNgramFeaturizer(
            trim_window=1, lowercase=False, drop_stopwords=False, stem=False
        )
        self.assertEqual(
            trimmed.preprocess([m]), ["drug ENTITY_0 causes severe ENTITY_1 in"]
        )
        no_stem = RelationNgramFeaturizer(trim_window=0, stem=False)
        self.assertEqual(no_stem.preprocess([m]), ["entity_0 causes severe entity_1"])

    def test_anonymize_multi_token_entities_in_any_order(self):
        text = "the big cat chased a small grey mouse today"
        m = RelationMention(
            1, text, [(text.index("small"), text.index("mouse") + 5), (4, 11)]
        )
        self.assertEqual(m.word_positions, [(5, 7), (1, 2)])
        featurizer = RelationNgramFeaturizer(trim_window=None)
        tokens, positions = featurizer._anonymize(m.tokens, m.word_positions)
        self.assertEqual(
            tokens, ["the", "ENTITY_1", "chased", "a", "ENTITY_0", "today"]
        )
        self.assertEqual(positions, [(4, 4), (1, 1)])
        tokens, positions = RelationNgramFeaturizer(trim_window=1)._trim(
            tokens, positions
        )
        self.assertEqual(
            tokens, ["the", "ENTITY_1", "chased", "a", "ENTITY_0", "today"]
        )
        self.assertEqual(positions, [(4, 4), (1, 1)])
        tokens, positions = RelationNgramFeaturizer(trim_window=0)._trim(
            ["a", "b", "c", "d", "e"], [(2, 2), (3, 3)]
        )
        self.assertEqual((tokens, positions), (["c", "d"], [(0, 0), (1, 1)]))

    def test_vocabulary_and_binary_matrix(self):
        featurizer = RelationNgramFeaturizer(ngram_range=(1, 2))
        second = mention("aspirin stops headaches , aspirin stops headaches", doc_id=1)
        X = featurizer.fit_transform([mention(), second])
        names = featurizer.get_feature_names()
        self.assertEqual(
            names,
            sorted(
                [
                    "doctor", "said", "drug", "entity_0", "caus", "sever", "entity_1",
                    "patient", "doctor said", "said drug", "drug entity_0",
                    "entity_0 caus", "caus sever", "sever entity_1",
                    "entity_1 patient", "stop", "entity_0 stop", "stop entity_1",
                    "entity_1 aspirin", "aspirin stop", "aspirin", "stop headach",
                    "headach",
                ]
            ),
        )  # fmt: skip
        self.assertTrue(sparse.isspmatrix_csr(X))
        self.assertEqual(X.shape, (2, len(names)))
        dense = X.toarray()
        self.assertEqual(dense.max(), 1)  # binary even for repeated n-grams
        column = {name: i for i, name in enumerate(names)}
        self.assertEqual(dense[0, column["entity_0 caus"]], 1)
        self.assertEqual(dense[1, column["entity_0 caus"]], 0)
        self.assertEqual(dense[1, column["stop"]], 1)
        # transform of new mentions uses the fitted vocabulary only
        new = featurizer.transform([mention("aspirin cures headaches")])
        self.assertEqual(new.shape, (1, len(names)))
        self.assertEqual(
            sorted(names[i] for i in new.indices), ["entity_0", "entity_1"]
        )

    def test_fit_then_transform_equals_fit_transform(self):
        mentions = [mention(), mention("aspirin and headaches", doc_id=2)]
        a = RelationNgramFeaturizer()
        a.fit(mentions)
        b = RelationNgramFeaturizer()
        Xb = b.fit_transform(mentions)
        np.testing.assert_array_equal(a.transform(mentions).toarray(), Xb.toarray())
        self.assertEqual(a.get_feature_names(), b.get_feature_names())

    def test_vectorizer_kwargs(self):
        mentions = [mention(), mention("aspirin causes headaches", doc_id=3)]
        featurizer = RelationNgramFeaturizer(ngram_range=(1, 1), min_df=2)
        featurizer.fit(mentions)
        self.assertEqual(
            featurizer.get_feature_names(), ["caus", "entity_0", "entity_1"]
        )

    def test_stopwords(self):
        words = english_stopwords()
        for word in ("the", "in", "of", "and"):
            self.assertIn(word, words)
        self.assertNotIn("aspirin", words)
        self.assertEqual(RelationNgramFeaturizer(drop_stopwords=False).stopwords, set())

    def test_errors(self):
        featurizer = RelationNgramFeaturizer()
        with self.assertRaisesRegex(ValueError, "not fitted"):
            featurizer.transform([mention()])
        with self.assertRaisesRegex(ValueError, "not fitted"):
            featurizer.get_feature_names()
        with self.assertRaisesRegex(ValueError, "at least one mention"):
            featurizer.fit([])
        with self.assertRaisesRegex(ValueError, "sequence of RelationMention"):
            featurizer.fit("aspirin causes headaches")
        with self.assertRaisesRegex(ValueError, "tokens and word_positions.*str"):
            featurizer.fit(["aspirin causes headaches"])
        overlapping = RelationMention(0, "a b c", [(0, 3), (2, 5)])
        with self.assertRaisesRegex(ValueError, "non-overlapping"):
            featurizer.preprocess([overlapping])
        with self.assertRaisesRegex(ValueError, "trim_window"):
            RelationNgramFeaturizer(trim_window=-1)
        with self.assertRaisesRegex(ValueError, "ngram_range"):
            RelationNgramFeaturizer(ngram_range=(2, 1))
        with self.assertRaisesRegex(ValueError, "ngram_range"):
            RelationNgramFeaturizer(ngram_range=3)


if __name__ == "__main__":
    unittest.main()
