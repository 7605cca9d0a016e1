import unittest

from metal.logging.utils import split_full_metric


class SplitFullMetricTestCase(unittest.TestCase):
    def test_two_and_four_parts(self):
        self.assertEqual(split_full_metric("valid/accuracy"), ("valid", "accuracy"))
        self.assertEqual(
            split_full_metric("task0/payload0_valid/labelset0/accuracy"),
            ("task0", "payload0_valid", "labelset0", "accuracy"),
        )

    def test_other_lengths_raise(self):
        for name in ["accuracy", "a/b/c", "a/b/c/d/e"]:
            with self.assertRaises(ValueError):
                split_full_metric(name)


if __name__ == "__main__":
    unittest.main()
