import unittest

import numpy as np

from metal.contrib.info_extraction.mentions import EntityMention, RelationMention

TEXT = "The big cat sat on the mat"


class EntityMentionTest(unittest.TestCase):
    def test_fields(self):
        e = EntityMention("d1", TEXT, 4, 11, pos=["D", "J", "N", "V", "P", "D", "N"])
        self.assertEqual(e.entity, "big cat")
        self.assertEqual(e.tokens, TEXT.split())
        self.assertEqual(e.words, TEXT.split())
        np.testing.assert_array_equal(e.char_offsets, [0, 4, 8, 12, 16, 19, 23, 26])
        self.assertEqual((e.word_start, e.word_end), (1, 2))
        self.assertEqual(e.get_entity_attrib("pos"), ["J", "N"])
        self.assertEqual(e.word_to_char_idx(2), 8)
        self.assertEqual(e.char_to_word_idx(0), 0)
        self.assertEqual(e.char_to_word_idx(10), 2)
        self.assertEqual(e.char_to_word_idx(11), 2)  # the space after "cat"
        self.assertEqual(e.char_to_word_idx(12), 3)
        self.assertEqual(e.mention_id, hash(e))
        self.assertEqual(hash(e), hash(("d1", 4, 11)))
        self.assertEqual(repr(e), "EntityMention(doc_id=d1: 'big cat'(4:11)")

    def test_given_tokens_and_offsets_are_copied(self):
        tokens = ["The", "cat", "."]
        offsets = [0, 4, 7]
        e = EntityMention(3, "The cat.", 4, 7, tokens=tokens, char_offsets=offsets)
        self.assertEqual(offsets, [0, 4, 7])  # the caller's list is not changed
        np.testing.assert_array_equal(e.char_offsets, [0, 4, 7, 8])
        self.assertEqual((e.word_start, e.word_end), (1, 1))

    def test_offsets_found_in_irregular_spacing(self):
        e = EntityMention(0, "a  cat\tsat", 3, 6)
        np.testing.assert_array_equal(e.char_offsets, [0, 3, 7, 10])
        self.assertEqual((e.word_start, e.word_end), (1, 1))

    def test_span_starting_before_the_first_token(self):
        e = EntityMention(0, " cat sat", 0, 4)
        self.assertEqual(e.char_to_word_idx(0), -1)
        self.assertEqual((e.word_start, e.word_end), (0, 0))

    def test_mention_id_and_equality(self):
        e = EntityMention(0, TEXT, 0, 3, mention_id="m7")
        self.assertEqual(e.mention_id, "m7")
        self.assertEqual(e, EntityMention(0, TEXT, 0, 3))
        self.assertNotEqual(e, EntityMention(1, TEXT, 0, 3))
        self.assertEqual(len({e, EntityMention(0, TEXT, 0, 3)}), 1)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "char_start and char_end"):
            EntityMention(0, TEXT, 5, 5)
        with self.assertRaisesRegex(ValueError, "char_start and char_end"):
            EntityMention(0, TEXT, 0, 100)
        with self.assertRaisesRegex(ValueError, "one start offset per token"):
            EntityMention(0, TEXT, 0, 3, char_offsets=[0, 4])
        with self.assertRaisesRegex(ValueError, "tokens must be a list of strings"):
            EntityMention(0, TEXT, 0, 3, tokens="The big")
        with self.assertRaisesRegex(ValueError, "text must be a str"):
            EntityMention(0, None, 0, 3)
        with self.assertRaisesRegex(ValueError, "attribute 'entity'"):
            EntityMention(0, TEXT, 0, 3, entity="x")


class RelationMentionTest(unittest.TestCase):
    def test_fields(self):
        r = RelationMention(
            "d1", TEXT, [(4, 11), (23, 26)], lemmas=TEXT.lower().split()
        )
        self.assertEqual(len(r.entities), 2)
        self.assertEqual([e.entity for e in r.entities], ["big cat", "mat"])
        self.assertEqual(r.text, TEXT)
        self.assertEqual(r.tokens, TEXT.split())
        self.assertEqual(r.words, TEXT.split())
        self.assertEqual(r.word_starts, [1, 6])
        self.assertEqual(r.word_ends, [2, 6])
        self.assertEqual(r.word_positions, [(1, 2), (6, 6)])
        positions = r.word_positions
        positions.append((0, 0))
        self.assertEqual(r.word_positions, [(1, 2), (6, 6)])  # a fresh list
        self.assertEqual(r.get_attr("lemmas")[0], "the")
        self.assertEqual(r[1].entity, "mat")
        self.assertEqual(r[1].get_entity_attrib("lemmas"), ["mat"])
        self.assertEqual(hash(r), hash(("d1", ((4, 11), (23, 26)))))
        self.assertEqual(r.mention_id, hash(r))
        self.assertEqual(
            repr(r),
            'RelationMention(doc_id=d1: entities=("big cat"(4:11), "mat"(23:26))',
        )

    def test_shared_offsets(self):
        offsets = [0, 4, 8, 12, 16, 19, 23]
        r = RelationMention(0, TEXT, [(0, 3), (23, 26)], char_offsets=offsets)
        self.assertEqual(offsets, [0, 4, 8, 12, 16, 19, 23])
        for e in r.entities:
            np.testing.assert_array_equal(e.char_offsets, offsets + [26])

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "at least one entity"):
            RelationMention(0, TEXT, [])
        with self.assertRaisesRegex(ValueError, r"\(char_start, char_end\) pairs"):
            RelationMention(0, TEXT, [4, 11])
        with self.assertRaisesRegex(ValueError, "char_start and char_end"):
            RelationMention(0, TEXT, [(4, 11), (20, 40)])


if __name__ == "__main__":
    unittest.main()
