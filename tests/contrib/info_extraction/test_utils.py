import unittest

from metal.contrib.info_extraction.utils import mark_entities

TOKENS = ["The", "big", "cat", "sat", "on", "the", "mat"]


class MarkEntitiesTest(unittest.TestCase):
    def test_spec_example(self):
        self.assertEqual(
            mark_entities(["The", "cat", "sat"], [(1, 1)]),
            ["The", "[[BEGIN0]]", "cat", "[[END0]]", "sat"],
        )

    def test_insert_two_entities_any_order(self):
        expected = [
            "The",
            "[[BEGIN1]]",
            "big",
            "cat",
            "[[END1]]",
            "sat",
            "on",
            "the",
            "[[BEGIN0]]",
            "mat",
            "[[END0]]",
        ]
        self.assertEqual(mark_entities(TOKENS, [(6, 6), (1, 2)]), expected)
        self.assertEqual(TOKENS[1], "big")  # the input is not modified

    def test_concatenate(self):
        self.assertEqual(
            mark_entities(
                TOKENS,
                [(1, 2), (6, 6)],
                markers=["<", ">", "{", "}"],
                style="concatenate",
            ),
            ["The", "<big", "cat>", "sat", "on", "the", "{mat}"],
        )

    def test_dict_positions(self):
        tokens = ["a", "b", "c", "d"]
        out = mark_entities(
            tokens,
            {0: [(0, 0), (3, 3)], 1: [(1, 2)]},
            markers=["<a>", "</a>", "<b>", "</b>"],
        )
        self.assertEqual(
            out, ["<a>", "a", "</a>", "<b>", "b", "c", "</b>", "<a>", "d", "</a>"]
        )
        self.assertEqual(
            mark_entities(tokens, {0: [(0, 0)], 1: [(2, 2)]}),
            ["[[BEGIN0]]", "a", "[[END0]]", "b", "[[BEGIN1]]", "c", "[[END1]]", "d"],
        )

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "positions must be a list"):
            mark_entities(TOKENS, "1-2")
        with self.assertRaisesRegex(ValueError, "2 \\* 1 = 2 strings.*found 1"):
            mark_entities(TOKENS, [(1, 1)], markers=["<"])
        with self.assertRaisesRegex(ValueError, "outside the 7 tokens"):
            mark_entities(TOKENS, [(5, 7)])
        with self.assertRaisesRegex(ValueError, "inclusive \\(start, end\\)"):
            mark_entities(TOKENS, [3])
        with self.assertRaises(NotImplementedError):
            mark_entities(TOKENS, [(1, 1)], style="xml")


if __name__ == "__main__":
    unittest.main()
