import re
import unittest

from metal.synthetic.words1k import vocab1k


class TestVocab1k(unittest.TestCase):
    def test_is_a_list_of_1000_distinct_words(self):
        self.assertIsInstance(vocab1k, list)
        self.assertEqual(len(vocab1k), 1000)
        self.assertEqual(len(set(vocab1k)), 1000)

    def test_words_are_lowercase_letters(self):
        for word in vocab1k:
            self.assertIsInstance(word, str)
            self.assertRegex(word, re.compile(r"^[a-z]+$"))


if __name__ == "__main__":
    unittest.main()
