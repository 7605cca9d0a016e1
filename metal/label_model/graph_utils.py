"""Clique trees (junction trees) over the dependency graph of the sources."""

import warnings
from typing import Iterable, Sequence, Tuple

import networkx as nx


def get_clique_tree(nodes: Iterable[int], edges: Sequence[Tuple[int, int]]) -> nx.Graph:
    """Build a junction tree for the source dependency graph.

    Args:
        nodes: the source indices (usually ``range(m)``).
        edges: dependency edges ``(i, j)`` between sources.

    Returns:
        an ``nx.Graph`` with one node per maximal clique (ids 0, 1, ... in the
        order networkx enumerates the cliques), node attribute ``"members"`` (a
        frozenset of sources), and edges carrying ``"members"`` (the separator
        set) and ``"weight"`` (its size). The tree is a maximum-weight spanning
        tree of the clique intersection graph, so it has the running
        intersection property. A non-chordal graph is first triangulated (with
        a warning); with no edges every source is its own isolated clique.
    """
    G = nx.Graph()
    G.add_nodes_from(nodes)
    G.add_edges_from(edges)
    if not nx.is_chordal(G):
        G, _ = nx.complete_to_chordal_graph(G)
        added = sorted(tuple(sorted(e)) for e in G.edges() if not _has_edge(edges, e))
        warnings.warn(
            "The dependency graph is not chordal; it was triangulated by adding "
            f"the edges {added}."
        )

    tree = nx.Graph()
    cliques = list(nx.chordal_graph_cliques(G))
    for i, members in enumerate(cliques):
        tree.add_node(i, members=frozenset(members))

    intersections = nx.Graph()
    intersections.add_nodes_from(tree.nodes(data=True))
    for a in range(len(cliques)):
        for b in range(a + 1, len(cliques)):
            separator = frozenset(cliques[a]) & frozenset(cliques[b])
            if separator:
                intersections.add_edge(a, b, weight=len(separator), members=separator)
    spanning = nx.maximum_spanning_tree(intersections)
    tree.add_edges_from(spanning.edges(data=True))
    return tree


def _has_edge(edges: Iterable[Tuple[int, int]], e: Tuple[int, int]) -> bool:
    u, v = e
    return any((a, b) in ((u, v), (v, u)) for a, b in edges)
