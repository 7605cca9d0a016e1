import unittest

from metal.contrib.featurizers import porter_stemmer as ps
from metal.contrib.featurizers.porter_stemmer import PorterStemmer, porter_stem


def step2(word):
    return ps._replace_longest(word, ps._STEP2_SORTED, lambda s: ps._measure(s) > 0)


def step3(word):
    return ps._replace_longest(word, ps._STEP3_SORTED, lambda s: ps._measure(s) > 0)


class PorterStemmerTest(unittest.TestCase):
    """Examples given for each step in Porter's 1980 paper."""

    def check(self, step, examples):
        for word, expected in examples.items():
            self.assertEqual(step(word), expected, word)

    def test_measure(self):
        for word, m in {
            "tr": 0,
            "ee": 0,
            "tree": 0,
            "y": 0,
            "by": 0,
            "trouble": 1,
            "oats": 1,
            "trees": 1,
            "ivy": 1,
            "troubles": 2,
            "private": 2,
            "oaten": 2,
            "orrery": 2,
        }.items():
            self.assertEqual(ps._measure(word), m, word)

    def test_step1(self):
        self.check(
            ps._step1a,
            {
                "caresses": "caress",
                "ponies": "poni",
                "ties": "ti",
                "caress": "caress",
                "cats": "cat",
            },
        )
        self.check(
            ps._step1b,
            {
                "feed": "feed",
                "agreed": "agree",
                "plastered": "plaster",
                "bled": "bled",
                "motoring": "motor",
                "sing": "sing",
                "conflated": "conflate",
                "troubled": "trouble",
                "sized": "size",
                "hopping": "hop",
                "tanned": "tan",
                "falling": "fall",
                "hissing": "hiss",
                "fizzed": "fizz",
                "failing": "fail",
                "filing": "file",
            },
        )
        self.check(ps._step1c, {"happy": "happi", "sky": "sky"})

    def test_step2(self):
        self.check(
            step2,
            {
                "relational": "relate",
                "conditional": "condition",
                "rational": "rational",
                "valenci": "valence",
                "hesitanci": "hesitance",
                "digitizer": "digitize",
                "conformabli": "conformable",
                "radicalli": "radical",
                "differentli": "different",
                "vileli": "vile",
                "analogousli": "analogous",
                "vietnamization": "vietnamize",
                "predication": "predicate",
                "operator": "operate",
                "feudalism": "feudal",
                "decisiveness": "decisive",
                "hopefulness": "hopeful",
                "callousness": "callous",
                "formaliti": "formal",
                "sensitiviti": "sensitive",
                "sensibiliti": "sensible",
            },
        )

    def test_step3(self):
        self.check(
            step3,
            {
                "triplicate": "triplic",
                "formative": "form",
                "formalize": "formal",
                "electriciti": "electric",
                "electrical": "electric",
                "hopeful": "hope",
                "goodness": "good",
            },
        )

    def test_step4(self):
        self.check(
            ps._step4,
            {
                "revival": "reviv",
                "allowance": "allow",
                "inference": "infer",
                "airliner": "airlin",
                "gyroscopic": "gyroscop",
                "adjustable": "adjust",
                "defensible": "defens",
                "irritant": "irrit",
                "replacement": "replac",
                "adjustment": "adjust",
                "dependent": "depend",
                "adoption": "adopt",
                "homologou": "homolog",
                "communism": "commun",
                "activate": "activ",
                "angulariti": "angular",
                "homologous": "homolog",
                "effective": "effect",
                "bowdlerize": "bowdler",
            },
        )

    def test_step5(self):
        self.check(
            ps._step5,
            {
                "probate": "probat",
                "rate": "rate",
                "cease": "ceas",
                "controll": "control",
                "roll": "roll",
            },
        )

    def test_full_stems(self):
        self.check(
            porter_stem,
            {
                "generalizations": "gener",
                "oscillators": "oscil",
                "running": "run",
                "Connected": "connect",
                "connection": "connect",
                "relational": "relat",
                "is": "is",
                "a": "a",
                "ENTITY_0": "entity_0",
                "subscribing": "subscrib",
            },
        )
        self.assertEqual(PorterStemmer().stem("ponies"), "poni")
        with self.assertRaisesRegex(ValueError, "word must be a str"):
            PorterStemmer().stem(3)


if __name__ == "__main__":
    unittest.main()
