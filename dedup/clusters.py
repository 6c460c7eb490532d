"""Connected components in Beam with alternating large-star and small-star rounds.

Algorithm (Kiveris et al., "Connected Components in MapReduce and Beyond", SoCC 2014): edges are
undirected pairs of node keys. Large-star: every node links its larger neighbours to the smallest
key in its closed neighbourhood. Small-star: every node links itself and its smaller neighbours
to the smallest among them. Each round is one GroupByKey over edges, never a gather of the whole
graph on one worker; alternating them converges in O(log^2 n) rounds, to a star around each
component's smallest key. A Beam graph is static, so `rounds` pairs are unrolled; a counter
records edges still not pointing at a root after the last round (see docs/dedup.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import apache_beam as beam

from medcurate.dedup.core import stars
from medcurate.pipelines.stage import count

__all__ = ["ConnectedComponents", "stars"]

Edge = tuple[str, str]


def large_star(node: str, neighbours: Iterable[str]) -> Iterator[Edge]:
    neighbours = set(neighbours)
    root = min(neighbours | {node})
    for other in neighbours:
        if other > node:
            yield other, root


def small_star(node: str, smaller: Iterable[str]) -> Iterator[Edge]:
    group = set(smaller) | {node}
    root = min(group)
    for other in group:
        if other != root:
            yield other, root


def _both_ways(edge: Edge) -> Iterator[Edge]:
    yield edge
    yield edge[1], edge[0]


def _larger_first(edge: Edge) -> Edge:
    return (edge[0], edge[1]) if edge[0] > edge[1] else (edge[1], edge[0])


def _not_self(edge: Edge) -> bool:
    return edge[0] != edge[1]


class _Round(beam.PTransform):
    def expand(self, edges):
        large = (
            edges
            | "BothWays" >> beam.FlatMap(_both_ways)
            | "GroupLarge" >> beam.GroupByKey()
            | "LargeStar" >> beam.FlatMapTuple(large_star)
            | "DropSelfLarge" >> beam.Filter(_not_self)
        )
        return (
            large
            | "LargerFirst" >> beam.Map(_larger_first)
            | "GroupSmall" >> beam.GroupByKey()
            | "SmallStar" >> beam.FlatMapTuple(small_star)
        )


def _count_unsettled(node_roots: tuple[str, Iterable[str]]) -> Iterator[tuple[str, str]]:
    """One (node, root) per node; a node with several roots means the rounds were too few."""
    node, roots = node_roots
    roots = set(roots)
    if len(roots) > 1:
        count("dedup/cc_unconverged_nodes")
    yield node, min(roots)


class ConnectedComponents(beam.PTransform):
    """PCollection of edges (a, b) -> (node, smallest key of its component) for every node on an edge."""

    def __init__(self, rounds: int = 8) -> None:
        super().__init__()
        self.rounds = rounds

    def expand(self, edges):
        edges = edges | "Canonical" >> beam.Map(_larger_first) | "NoSelf" >> beam.Filter(_not_self)
        for index in range(self.rounds):
            edges = edges | f"Round{index}" >> _Round() | f"Distinct{index}" >> beam.Distinct()
        roots = edges | "RootOfRoot" >> beam.FlatMap(lambda e: [(e[1], e[1]), e])
        return roots | "GroupRoots" >> beam.GroupByKey() | "OneRoot" >> beam.FlatMap(_count_unsettled)
