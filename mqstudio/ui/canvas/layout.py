"""Automatic layout of a topology and the links implied by node fields.

Owns: `derived_links` (dead-letter, alternate-exchange, producer/consumer and subscription links, for
drawing and layout) and `compute_layout` (positions only; the scene pushes them as one `MoveNodes`).
Layered left → right: producers → exchanges (and Kafka topics) → queues (and consumer groups) →
consumers; the part of the design reached only through dead-lettering is laid out in its own band below
the main flow, columns aligned. Small designs use grandalf's Sugiyama layout (it orders rows well); above
`FAST_LAYOUT_NODES` nodes grandalf is too slow (seconds at 1,000 nodes), so `_layer_fast` orders each
column by barycentre sweeps over plain dicts instead. Qt-free (imports grandalf and mqstudio.core).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable

from grandalf.graphs import Edge, Vertex, graph_core
from grandalf.layouts import SugiyamaLayout

from mqstudio.core.model import (
    Consumer,
    ConsumerGroup,
    Exchange,
    NodeKind,
    Producer,
    Queue,
    Topic,
    Topology,
)

GRID = 20.0
COLUMN_SPACING = 290.0  # centre to centre: node width + room for binding labels
ROW_SPACING = 110.0  # centre to centre: node height + badges + a gap
BAND_GAP = 80.0
FAST_LAYOUT_NODES = 200  # above this many nodes in a band, `_layer_fast` replaces grandalf
SWEEPS = 4
_MIN_RANK = {
    NodeKind.PRODUCER: 0,
    NodeKind.EXCHANGE: 1,
    NodeKind.TOPIC: 1,
    NodeKind.QUEUE: 2,
    NodeKind.CONSUMER_GROUP: 2,
    NodeKind.CONSUMER: 3,
}

Link = tuple[str, str, str]  # (kind, source id, destination id)


def derived_links(topology: Topology) -> dict[Link, str]:
    """Links implied by fields, with a label: ``dead-letter`` (queue → its DLX exchange, labelled with the
    dead-letter routing key), ``alternate`` (exchange → AE), ``publishes`` (producer → target),
    ``consumes`` (source → consumer), ``subscribes`` (topic → group). Names resolve within the vhost."""
    exchanges = {(e.vhost, e.name): e.id for e in topology.exchanges}
    out: dict[Link, str] = {}
    for node in topology.nodes:
        if isinstance(node, Queue):
            dlx = node.dead_letter_exchange
            target = exchanges.get((node.vhost, dlx)) if dlx is not None else None
            if target is not None:
                key = node.dead_letter_routing_key
                out[("dead-letter", node.id, target)] = f"DL {key}" if key else "DL"
        elif isinstance(node, Exchange):
            ae = node.alternate_exchange
            target = exchanges.get((node.vhost, ae)) if ae is not None else None
            if target is not None:
                out[("alternate", node.id, target)] = "unroutable"
        elif isinstance(node, Producer):
            if node.target and node.target in topology:
                out[("publishes", node.id, node.target)] = ""
        elif isinstance(node, Consumer):
            if node.source and node.source in topology:
                out[("consumes", node.source, node.id)] = ""
        elif isinstance(node, ConsumerGroup):
            for topic_id in node.topics:
                if isinstance(topology.get(topic_id), Topic):
                    out[("subscribes", topic_id, node.id)] = ""
    return out


def _flow_edges(topology: Topology, links: Iterable[Link]) -> list[tuple[str, str]]:
    edges = [(b.source, b.destination) for b in topology.bindings if b.source != b.destination]
    edges += [(s, d) for kind, s, d in links if kind in ("publishes", "consumes", "subscribes")]
    return list(dict.fromkeys(edges))


def _closure(starts: Iterable[str], succ: dict[str, list[str]], exclude: set[str]) -> set[str]:
    seen: set[str] = set()
    pending = deque(s for s in starts if s not in exclude)
    while pending:
        node = pending.popleft()
        if node in seen or node in exclude:
            continue
        seen.add(node)
        pending.extend(succ.get(node, ()))
    return seen


def split_bands(topology: Topology, links: dict[Link, str]) -> tuple[list[str], list[str]]:
    """(main flow, dead-letter band): nodes reached only through dead-lettering go to the second."""
    order = [n.id for n in topology.nodes]
    flow = _flow_edges(topology, links)
    succ: dict[str, list[str]] = defaultdict(list)
    has_in: set[str] = set()
    for s, d in flow:
        succ[s].append(d)
        has_in.add(d)
    dead = [(s, d) for kind, s, d in links if kind == "dead-letter"]
    dl_targets = {d for _, d in dead}
    roots = [n for n in order if n not in has_in and n not in dl_targets]
    main = _closure(roots, succ, set())
    band: set[str] = set()
    while True:
        placed = main | band
        new_roots = [d for s, d in dead if s in placed and d not in placed]
        if new_roots:
            band |= _closure(new_roots, succ, placed)
            continue
        remaining = [n for n in order if n not in placed]
        if not remaining:
            break
        main |= _closure(remaining[:1], succ, band)
    return [n for n in order if n in main], [n for n in order if n in band]


class _View:
    """What grandalf needs of a vertex: its extent (w across ranks' rows, h along the flow)."""

    __slots__ = ("h", "w", "xy")

    def __init__(self, w: float, h: float) -> None:
        self.w, self.h = w, h
        self.xy = (0.0, 0.0)


def _components(ids: list[str], edges: list[tuple[str, str]]) -> list[list[str]]:
    """Connected components (union-find), in first-appearance order. grandalf's own `Graph` splits
    components in quadratic time, so we split first and hand each to a `graph_core`."""
    parent = {i: i for i in ids}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for s, d in edges:
        rs, rd = find(s), find(d)
        if rs != rd:
            parent[rd] = rs
    groups: dict[str, list[str]] = {}
    for i in ids:
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def _layer(topology: Topology, ids: list[str], flow: list[tuple[str, str]]) -> dict[str, tuple[float, float]]:
    """Sugiyama layout of `ids` per connected component (grandalf orders nodes within layers to reduce
    crossings); components are stacked top to bottom. Only the row order and spacing are kept: columns
    come from `_ranks`."""
    if not ids:
        return {}
    chosen = set(ids)
    edges = [(s, d) for s, d in flow if s in chosen and d in chosen]
    out: dict[str, tuple[float, float]] = {}
    bottom = 0.0
    for component in _components(ids, edges):
        members = set(component)
        if len(component) == 1:
            out[component[0]] = (0.0, bottom)
            bottom += ROW_SPACING
            continue
        vertices = {node_id: Vertex(node_id) for node_id in component}
        for v in vertices.values():
            v.view = _View(ROW_SPACING - 20, COLUMN_SPACING - 60)
        core = graph_core(
            list(vertices.values()),
            [Edge(vertices[s], vertices[d]) for s, d in edges if s in members],
        )
        sug = SugiyamaLayout(core)
        sug.xspace = 20
        sug.yspace = 60
        sug.init_all()
        sug.draw(2 if len(component) > 200 else 4)
        rows = {v.data: v.view.xy[0] for v in core.sV}
        low = min(rows.values())
        for node_id, row in rows.items():
            out[node_id] = (0.0, bottom + row - low)
        bottom = max(y for _, y in out.values()) + ROW_SPACING
    return out


def _pack(
    positions: dict[str, tuple[float, float]], ranks: dict[str, int], top: float
) -> dict[str, tuple[float, float]]:
    """Columns by rank, rows from `top` keeping grandalf's order, at least ROW_SPACING apart, snapped."""
    if not positions:
        return {}
    min_y = min(y for _, y in positions.values())
    columns: dict[int, list[tuple[float, str]]] = defaultdict(list)
    for node_id, (_, y) in positions.items():
        columns[ranks[node_id]].append((y - min_y, node_id))
    out: dict[str, tuple[float, float]] = {}
    for rank, entries in columns.items():
        last = -ROW_SPACING
        for raw, node_id in sorted(entries):
            y = max(round(raw / GRID) * GRID, last + ROW_SPACING)
            last = y
            out[node_id] = (rank * COLUMN_SPACING, top + y)
    return out


def compute_layout(topology: Topology) -> dict[str, tuple[float, float]]:
    """Positions (node centres) for every node of `topology`; deterministic for a given topology."""
    links = derived_links(topology)
    flow = _flow_edges(topology, links)
    main, band = split_bands(topology, links)
    ranks = _ranks(topology, flow)

    def layer(ids: list[str]) -> dict[str, tuple[float, float]]:
        if len(ids) > FAST_LAYOUT_NODES:
            return _layer_fast(ids, flow, ranks)
        return _layer(topology, ids, flow)

    positions = _pack(layer(main), ranks, 0.0)
    if band:
        bottom = max((y for _, y in positions.values()), default=-ROW_SPACING)
        positions.update(_pack(layer(band), ranks, bottom + ROW_SPACING + BAND_GAP))
    return positions


def _layer_fast(
    ids: list[str], flow: list[tuple[str, str]], ranks: dict[str, int]
) -> dict[str, tuple[float, float]]:
    """Rows for a large band: columns by rank; each column ordered by the barycentre of its neighbours in
    the other columns (alternating left → right and right → left sweeps), then every node pulled towards
    its neighbours' mean row, keeping the order and at least ROW_SPACING between rows. Linear in the
    number of edges per sweep; components stay apart because they start apart and only pull on their own
    members."""
    chosen = set(ids)
    neighbours: dict[str, list[str]] = {i: [] for i in ids}
    for s, d in flow:
        if s in chosen and d in chosen and s != d:
            neighbours[s].append(d)
            neighbours[d].append(s)
    columns: dict[int, list[str]] = defaultdict(list)
    for component in _components(ids, [(s, d) for s, d in flow if s in chosen and d in chosen]):
        for node_id in component:
            columns[ranks[node_id]].append(node_id)
    order = sorted(columns)
    pos: dict[str, float] = {}
    for rank in order:
        for index, node_id in enumerate(columns[rank]):
            pos[node_id] = float(index)

    def sweep(sequence: list[int], towards: int) -> None:
        for rank in sequence:
            column = columns[rank]
            keys: dict[str, float] = {}
            for node_id in column:
                near = [pos[n] for n in neighbours[node_id] if (ranks[n] - rank) * towards < 0]
                keys[node_id] = sum(near) / len(near) if near else pos[node_id]
            column.sort(key=keys.__getitem__)
            size = len(column)
            longest = max(len(c) for c in columns.values())
            offset = (longest - size) / 2  # centre short columns against the longest
            for index, node_id in enumerate(column):
                pos[node_id] = index + offset

    for i in range(SWEEPS):
        if i % 2 == 0:
            sweep(order[1:], 1)
        else:
            sweep(order[-2::-1], -1)
    # Rows: pull each node to its neighbours' mean (in row units), keep the order, at least one row apart.
    rows: dict[str, float] = {}
    for rank in order:
        column = columns[rank]
        wanted = []
        for node_id in column:
            near = [pos[n] for n in neighbours[node_id]]
            wanted.append(sum(near) / len(near) if near else pos[node_id])
        placed: list[float] = []
        for want in wanted:
            placed.append(want if not placed else max(want, placed[-1] + 1.0))
        shift = sum(w - p for w, p in zip(wanted, placed, strict=True)) / len(placed)
        for node_id, row in zip(column, placed, strict=True):
            rows[node_id] = row + shift
    return {node_id: (0.0, row * ROW_SPACING) for node_id, row in rows.items()}


def _ranks(topology: Topology, flow: list[tuple[str, str]]) -> dict[str, int]:
    """Column of each node: at least its kind's column, and right of everything that feeds it (longest
    path, bounded so that cycles of exchange-to-exchange bindings cannot push columns forever)."""
    rank = {n.id: _MIN_RANK[n.kind] for n in topology.nodes}
    for _ in range(8):
        changed = False
        for s, d in flow:
            if rank[d] < rank[s] + 1 <= 12:
                rank[d] = rank[s] + 1
                changed = True
        if not changed:
            break
    return rank
