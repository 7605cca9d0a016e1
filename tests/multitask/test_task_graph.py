import unittest

import networkx as nx
import numpy as np

from metal.multitask import TaskGraph, TaskHierarchy


def as_lists(vectors):
    return [[int(v) for v in vector] for vector in vectors]


class TestTaskGraph(unittest.TestCase):
    def test_default_is_one_binary_task(self):
        tg = TaskGraph()
        self.assertEqual(tg.K, [2])
        self.assertEqual(tg.t, 1)
        self.assertEqual(tg.edges, [])
        self.assertEqual(tg.k, 2)
        self.assertEqual(tg.leaf_nodes, [0])
        self.assertEqual(tg.parents, {0: []})
        self.assertEqual(tg.children, {0: []})
        self.assertEqual(as_lists(tg.feasible_set()), [[1], [2]])

    def test_graph_has_all_tasks_and_edges(self):
        tg = TaskGraph([2, 3, 2, 4], [(0, 1)])
        self.assertIsInstance(tg.G, nx.DiGraph)
        self.assertEqual(list(tg.G.nodes()), [0, 1, 2, 3])
        self.assertEqual(list(tg.G.edges()), [(0, 1)])
        self.assertEqual(tg.leaf_nodes, [1, 2, 3])

    def test_binary_tree(self):
        tg = TaskGraph([2, 3, 3], [(0, 1), (0, 2)])
        self.assertEqual(tg.parents, {0: [], 1: [0], 2: [0]})
        self.assertEqual(tg.children, {0: [1, 2], 1: [], 2: []})
        self.assertEqual(tg.get_parent(1), [0])
        self.assertEqual(tg.get_children(0), [1, 2])
        self.assertEqual(tg.leaf_nodes, [1, 2])

    def test_three_child_root(self):
        tg = TaskGraph([3, 2, 2, 2], [(0, 3), (0, 1), (0, 2)])
        self.assertEqual(tg.children[0], [1, 2, 3])
        for child in (1, 2, 3):
            self.assertEqual(tg.parents[child], [0])
            self.assertEqual(tg.children[child], [])

    def test_depth_three_binary_tree(self):
        edges = [(0, 1), (0, 2), (1, 3), (1, 4), (2, 5), (2, 6)]
        tg = TaskGraph([2] * 7, edges)
        self.assertEqual(tg.children[0], [1, 2])
        self.assertEqual(tg.children[1], [3, 4])
        self.assertEqual(tg.children[2], [5, 6])
        self.assertEqual(tg.parents[4], [1])
        self.assertEqual(tg.parents[6], [2])
        self.assertEqual(tg.leaf_nodes, [3, 4, 5, 6])

    def test_chain(self):
        tg = TaskGraph([2, 2, 2, 2], [(0, 1), (1, 2), (2, 3)])
        self.assertEqual(tg.children[1], [2])
        self.assertEqual(tg.parents[1], [0])
        self.assertEqual(tg.children[3], [])
        self.assertEqual(tg.leaf_nodes, [3])

    def test_multiple_parents_are_sorted(self):
        tg = TaskGraph([2, 2, 2], [(1, 2), (0, 2)])
        self.assertEqual(tg.get_parent(2), [0, 1])

    def test_feasible_set_is_full_product_last_task_fastest(self):
        tg = TaskGraph([2, 3], [(0, 1)])
        vectors = list(tg.feasible_set())
        self.assertTrue(all(isinstance(v, np.ndarray) for v in vectors))
        self.assertTrue(all(np.issubdtype(v.dtype, np.integer) for v in vectors))
        self.assertEqual(
            as_lists(vectors), [[1, 1], [1, 2], [1, 3], [2, 1], [2, 2], [2, 3]]
        )
        self.assertEqual(tg.k, 6)

    def test_is_feasible_always_true(self):
        tg = TaskGraph([2, 2])
        self.assertTrue(tg.is_feasible([1, 2]))
        self.assertTrue(tg.is_feasible(np.array([2, 2])))

    def test_equality(self):
        self.assertEqual(TaskGraph([2, 3], [(0, 1)]), TaskGraph([2, 3], [(0, 1)]))
        self.assertEqual(TaskGraph([2, 3], [[0, 1]]), TaskGraph((2, 3), [(0, 1)]))
        self.assertNotEqual(TaskGraph([2, 3], [(0, 1)]), TaskGraph([2, 3]))
        self.assertNotEqual(TaskGraph([2, 3]), TaskGraph([2, 2]))
        self.assertNotEqual(TaskGraph(), "not a task graph")

    def test_numpy_cardinalities_accepted(self):
        tg = TaskGraph(np.array([2, 3]))
        self.assertEqual(tg.K, [2, 3])
        self.assertTrue(all(type(K_s) is int for K_s in tg.K))

    def test_default_arguments_not_mutated(self):
        TaskGraph()
        tg = TaskGraph()
        tg.K.append(5)
        tg.edges.append((0, 0))
        self.assertEqual(TaskGraph().K, [2])
        self.assertEqual(TaskGraph().edges, [])

    def test_bad_cardinalities_raise(self):
        for bad in ([0], [2, -1], [2.0], [2, "3"], [True], [], 3, None):
            with self.subTest(cardinalities=bad):
                with self.assertRaisesRegex(ValueError, "cardinalities"):
                    TaskGraph(bad)

    def test_bad_edges_raise(self):
        for bad in ([(0, 2)], [(-1, 0)], [(0, 1, 1)], [(0,)], [(0, 0)], [(0, 1.5)], 5):
            with self.subTest(edges=bad):
                with self.assertRaisesRegex(ValueError, "edge"):
                    TaskGraph([2, 2], bad)

    def test_bad_node_lookup_raises(self):
        tg = TaskGraph([2, 2], [(0, 1)])
        with self.assertRaisesRegex(ValueError, "node"):
            tg.get_parent(2)
        with self.assertRaisesRegex(ValueError, "node"):
            tg.get_children(-1)


class TestTaskHierarchy(unittest.TestCase):
    def test_default_feasible_set(self):
        th = TaskHierarchy([2, 3, 3], [(0, 1), (0, 2)])
        self.assertEqual(
            as_lists(th.feasible_set()), [[1, 1, 3], [1, 2, 3], [2, 3, 1], [2, 3, 2]]
        )
        self.assertEqual(th.k, 4)
        self.assertEqual(th.leaf_nodes, [1, 2])

    def test_single_task(self):
        th = TaskHierarchy([3])
        self.assertEqual(as_lists(th.feasible_set()), [[1], [2], [3]])
        self.assertEqual(th.k, 3)
        self.assertEqual(TaskHierarchy().k, 2)

    def test_deeper_hierarchy(self):
        # Root 0 chooses between 1 and 2; task 1 chooses between leaves 3 and 4.
        th = TaskHierarchy([2, 3, 3, 2, 3], [(0, 1), (0, 2), (1, 3), (1, 4)])
        self.assertEqual(
            as_lists(th.feasible_set()),
            [
                [2, 3, 1, 2, 3],
                [2, 3, 2, 2, 3],
                [1, 1, 3, 1, 3],
                [1, 2, 3, 2, 1],
                [1, 2, 3, 2, 2],
            ],
        )
        self.assertEqual(th.k, 5)

    def test_child_position_follows_edge_order(self):
        th = TaskHierarchy([2, 2, 2], [(0, 2), (0, 1)])
        self.assertEqual(as_lists(th.feasible_set()), [[2, 1, 2], [1, 2, 1]])

    def test_is_feasible(self):
        th = TaskHierarchy([2, 3, 3], [(0, 1), (0, 2)])
        for y in ([1, 1, 3], [1, 2, 3], [2, 3, 1], [2, 3, 2]):
            self.assertTrue(th.is_feasible(y))
            self.assertTrue(th.is_feasible(np.array(y)))
        for y in ([1, 1, 1], [2, 3, 3], [1, 3, 3], [0, 0, 0], [1, 1]):
            self.assertFalse(th.is_feasible(y))
        self.assertTrue(TaskHierarchy([3]).is_feasible([3]))

    def test_parents_and_children(self):
        th = TaskHierarchy([2, 2], [(0, 1)])
        self.assertEqual(th.parents, {0: [], 1: [0]})
        self.assertEqual(th.children, {0: [1], 1: []})

    def test_equality_with_task_graph(self):
        th = TaskHierarchy([2, 3, 3], [(0, 1), (0, 2)])
        self.assertEqual(th, TaskHierarchy([2, 3, 3], [(0, 1), (0, 2)]))
        self.assertEqual(th, TaskGraph([2, 3, 3], [(0, 1), (0, 2)]))
        self.assertNotEqual(th, TaskHierarchy([2, 3, 3], [(0, 2), (0, 1)]))

    def test_not_a_tree_raises(self):
        cases = [
            ([2, 2, 2], [(0, 1)]),  # disconnected
            ([2, 2], []),  # disconnected
            ([2, 2, 2], [(0, 1), (1, 2), (0, 2)]),  # cycle in the undirected graph
            ([2, 2, 2], [(0, 2), (1, 2)]),  # task 2 has two parents
            ([2, 2], [(1, 0)]),  # task 0 is not the root
        ]
        for cardinalities, edges in cases:
            with self.subTest(edges=edges):
                with self.assertRaisesRegex(ValueError, "TaskHierarchy"):
                    TaskHierarchy(cardinalities, edges)

    def test_bad_input_raises_like_task_graph(self):
        with self.assertRaisesRegex(ValueError, "cardinalities"):
            TaskHierarchy([2, 0], [(0, 1)])
        with self.assertRaisesRegex(ValueError, "edges"):
            TaskHierarchy([2, 2], [(0, 3)])


if __name__ == "__main__":
    unittest.main()
