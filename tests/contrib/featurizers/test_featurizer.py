import unittest

from metal.contrib.featurizers.featurizer import Featurizer


class UpperCaser(Featurizer):
    def fit(self, input, suffix=""):
        self.suffix = suffix

    def transform(self, input):
        return [s.upper() + self.suffix for s in input]


class FeaturizerTest(unittest.TestCase):
    def test_abstract_methods(self):
        with self.assertRaises(NotImplementedError):
            Featurizer().fit(["a"])
        with self.assertRaises(NotImplementedError):
            Featurizer().transform(["a"])
        with self.assertRaises(NotImplementedError):
            Featurizer().fit_transform(["a"])

    def test_fit_transform_passes_fit_kwargs(self):
        self.assertEqual(
            UpperCaser().fit_transform(["ab", "c"], suffix="!"), ["AB!", "C!"]
        )


if __name__ == "__main__":
    unittest.main()
