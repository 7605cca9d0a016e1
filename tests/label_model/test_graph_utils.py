import unittest
import warnings

import networkx as nx

from metal.label_model.graph_utils import get_clique_tree


def members(tree):
    return sorted(sorted(attrs["members"]) for _, attrs in tree.nodes(data=True))


class GetCliqueTreeTest(unittest.TestCase):
    def test_no_dependencies_gives_isolated_sources(self):
        tree = get_clique_tree(range(4), [])
        self.assertEqual(members(tree), [[0], [1], [2], [3]])
        self.assertEqual(tree.number_of_edges(), 0)

    def test_triangle_with_pendant_and_isolated_source(self):
        tree = get_clique_tree(range(5), [(0, 1), (1, 2), (2, 0), (0, 3)])
        self.assertEqual(members(tree), [[0, 1, 2], [0, 3], [4]])
        self.assertEqual(tree.number_of_edges(), 1)
        ((u, v, attrs),) = tree.edges(data=True)
        self.assertEqual(attrs["members"], frozenset({0}))
        self.assertEqual(attrs["weight"], 1)
        ends = {
            frozenset(tree.nodes[u]["members"]),
            frozenset(tree.nodes[v]["members"]),
        }
        self.assertEqual(ends, {frozenset({0, 1, 2}), frozenset({0, 3})})

    def test_maximum_spanning_tree_has_running_intersection(self):
        # cliques {0,1,2}, {1,2,3}, {2,4}: a minimum spanning tree would join the
        # two 3-cliques only through {2, 4}.
        edges = [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3), (2, 4)]
        tree = get_clique_tree(range(5), edges)
        self.assertTrue(nx.is_tree(tree))
        by_members = {frozenset(a["members"]): n for n, a in tree.nodes(data=True)}
        a, b = by_members[frozenset({0, 1, 2})], by_members[frozenset({1, 2, 3})]
        self.assertTrue(tree.has_edge(a, b))
        self.assertEqual(tree.edges[a, b]["members"], frozenset({1, 2}))
        self.assertEqual(tree.edges[a, b]["weight"], 2)
        # running intersection: the cliques containing each source are connected
        for source in range(5):
            holding = [
                n for n, attrs in tree.nodes(data=True) if source in attrs["members"]
            ]
            self.assertTrue(nx.is_connected(tree.subgraph(holding)))

    def test_non_chordal_graph_is_triangulated(self):
        cycle = [(0, 1), (1, 2), (2, 3), (3, 0)]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tree = get_clique_tree(range(4), cycle)
        self.assertTrue(any("triangulated" in str(w.message) for w in caught))
        sizes = sorted(len(a["members"]) for _, a in tree.nodes(data=True))
        self.assertEqual(sizes, [3, 3])
        self.assertTrue(nx.is_tree(tree))

    def test_chain_of_pairs(self):
        tree = get_clique_tree(range(4), [(0, 1), (1, 2), (2, 3)])
        self.assertEqual(members(tree), [[0, 1], [1, 2], [2, 3]])
        self.assertEqual(tree.number_of_edges(), 2)
        self.assertTrue(nx.is_tree(tree))


if __name__ == "__main__":
    unittest.main()
