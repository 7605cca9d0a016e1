import importlib.util
import subprocess
import sys
import unittest
from unittest import mock

from metal.contrib.featurizers import porter_stemmer as ps
from metal.contrib.featurizers.porter_stemmer import PorterStemmer, porter_stem

HAS_NLTK = importlib.util.find_spec("nltk") is not None
NEEDS_NLTK = unittest.skipUnless(
    HAS_NLTK, "nltk is not installed (pip install snorkel-metal[contrib])"
)


@NEEDS_NLTK
class ClassicPorterOutputsTest(unittest.TestCase):
    """Whole-word stems of the examples in Porter's 1980 paper, grouped by the
    step that the paper illustrates with them (later steps apply too)."""

    def check(self, expected):
        stemmer = PorterStemmer()
        for word, stem in expected.items():
            with self.subTest(word=word):
                self.assertEqual(porter_stem(word), stem)
                self.assertEqual(stemmer.stem(word), stem)

    def test_step1a_plurals(self):
        self.check(
            {
                "caresses": "caress",
                "ponies": "poni",
                "ties": "ti",
                "caress": "caress",
                "cats": "cat",
            }
        )

    def test_step1b_ed_and_ing(self):
        self.check(
            {
                "feed": "feed",
                "agreed": "agre",
                "plastered": "plaster",
                "bled": "bled",
                "motoring": "motor",
                "sing": "sing",
                "conflated": "conflat",
                "troubled": "troubl",
                "sized": "size",
                "hopping": "hop",
                "tanned": "tan",
                "falling": "fall",
                "hissing": "hiss",
                "fizzed": "fizz",
                "failing": "fail",
                "filing": "file",
            }
        )

    def test_step1b_undoubles_any_final_double_consonant(self):
        # The paper's *d: any double consonant but l, s and z (Snowball's
        # "porter" only undoubles a fixed list, which leaves "revv").
        self.check({"revved": "rev", "trekked": "trek", "specced": "spec"})

    def test_step1c_y_to_i(self):
        self.check({"happy": "happi", "sky": "sky"})

    def test_step2_double_suffixes(self):
        self.check(
            {
                "relational": "relat",
                "conditional": "condit",
                "rational": "ration",
                "valenci": "valenc",
                "hesitanci": "hesit",
                "digitizer": "digit",
                "conformabli": "conform",
                "radicalli": "radic",
                "differentli": "differ",
                "vileli": "vile",
                "analogousli": "analog",
                "vietnamization": "vietnam",
                "predication": "predic",
                "operator": "oper",
                "feudalism": "feudal",
                "decisiveness": "decis",
                "hopefulness": "hope",
                "callousness": "callous",
                "formaliti": "formal",
                "sensitiviti": "sensit",
                "sensibiliti": "sensibl",
            }
        )

    def test_step3_ic_ful_ness(self):
        self.check(
            {
                "triplicate": "triplic",
                "formative": "form",
                "formalize": "formal",
                "electriciti": "electr",
                "electrical": "electr",
                "hopeful": "hope",
                "goodness": "good",
            }
        )

    def test_step4_residual_suffixes(self):
        self.check(
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
            }
        )

    def test_step5_final_e_and_ll(self):
        self.check(
            {
                "probate": "probat",
                "rate": "rate",
                "cease": "ceas",
                "controll": "control",
                "roll": "roll",
            }
        )

    def test_word_families_conflate(self):
        self.check(
            {
                "connect": "connect",
                "connected": "connect",
                "connecting": "connect",
                "connection": "connect",
                "connections": "connect",
                "generalization": "gener",
                "generalizations": "gener",
                "oscillator": "oscil",
                "oscillators": "oscil",
                "running": "run",
                "subscribing": "subscrib",
            }
        )


@NEEDS_NLTK
class ConventionsTest(unittest.TestCase):
    """What the module adds to the algorithm."""

    def test_lowercases_first(self):
        self.assertEqual(porter_stem("Connected"), "connect")
        self.assertEqual(porter_stem("PONIES"), "poni")
        self.assertEqual(PorterStemmer().stem("RELATIONAL"), "relat")
        self.assertEqual(porter_stem("ENTITY_0"), "entity_0")

    def test_one_or_two_letters_unchanged(self):
        # The bare algorithm would strip the s of "is" and "as".
        for word, expected in {"is": "is", "as": "as", "a": "a", "US": "us"}.items():
            with self.subTest(word=word):
                self.assertEqual(porter_stem(word), expected)
                self.assertEqual(PorterStemmer().stem(word), expected)

    def test_empty_string(self):
        self.assertEqual(porter_stem(""), "")

    def test_repeated_calls_agree(self):
        first = [porter_stem(w) for w in ("ponies", "Ponies", "ponies")]
        self.assertEqual(first, ["poni", "poni", "poni"])


class BadInputTest(unittest.TestCase):
    def test_non_string_raises_value_error_naming_word(self):
        for bad in (3, None, b"ponies", ["ponies"]):
            with self.subTest(bad=bad):
                with self.assertRaisesRegex(ValueError, "word must be a str"):
                    porter_stem(bad)

    @NEEDS_NLTK
    def test_stemmer_method_raises_value_error(self):
        with self.assertRaisesRegex(ValueError, "word must be a str; found int"):
            PorterStemmer().stem(3)


class MissingPackageTest(unittest.TestCase):
    def setUp(self):
        ps._classic_porter.cache_clear()
        ps._stem_lowercase.cache_clear()
        self.addCleanup(ps._classic_porter.cache_clear)
        self.addCleanup(ps._stem_lowercase.cache_clear)

    def test_missing_nltk_says_how_to_install(self):
        with mock.patch.dict(sys.modules, {"nltk.stem.porter": None}):
            with self.assertRaisesRegex(ImportError, r"snorkel-metal\[contrib\]"):
                PorterStemmer()
            with self.assertRaisesRegex(ImportError, r"snorkel-metal\[contrib\]"):
                porter_stem("ponies")

    def test_stemmer_package_not_imported_with_the_module(self):
        code = (
            "import sys\n"
            "import metal\n"
            "import metal.contrib.featurizers.porter_stemmer\n"
            "sys.exit(1 if 'nltk' in sys.modules else 0)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True
        )
        self.assertEqual(result.returncode, 0, result.stderr)


if __name__ == "__main__":
    unittest.main()
