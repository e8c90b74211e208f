"""Canvas performance at 1,000 nodes and 2,000 bindings against a plain QGraphicsScene baseline.

Measures, for a generated design (100 producers → 200 exchanges → 500 queues → 200 consumers, 2,000
bindings, some queues dead-lettering): building the scene from the document ("open"), auto-layout (the
fast layered layout above 200 nodes, pushed as one undo step), one full repaint of a 1280x800 view at
fit-all (first paint, which fills the item caches, and a warm one; zoomed out, the edge layer draws all
edges), and dragging one node (per step: move + repaint of the dirty region at 100 % zoom; median of at
least 20 steps). The baseline, measured in the same run, is a plain QGraphicsScene with 1,000
QGraphicsRectItems and 2,000 QGraphicsLineItems doing the same things; the ratios are what to watch,
absolute times depend on the machine.

Usage: python benchmarks/bench_canvas.py [--quick]
Goals: open + layout < 1 s, full repaint < 16 ms, drag step < 16 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ["QT_QPA_PLATFORM"] = "offscreen"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import (
    QApplication,
    QGraphicsLineItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
)

from mqstudio.core.document import TopologyDocument
from mqstudio.core.model import Binding, Consumer, Exchange, ExchangeType, Producer, Queue
from mqstudio.ui.canvas import TopologyScene, TopologyView
from mqstudio.ui.canvas.interactions import MoveInteraction
from mqstudio.ui.editor import DocumentEditor

WIDTH, HEIGHT = 1280, 800
GOAL_OPEN_LAYOUT_S = 1.0
GOAL_REPAINT_MS = 16.0
GOAL_DRAG_MS = 16.0


def generate(n_nodes: int = 1000, n_bindings: int = 2000, seed: int = 7) -> TopologyDocument:
    rng = random.Random(seed)
    doc = TopologyDocument()
    t = doc.topology
    n_prod, n_ex, n_q = n_nodes // 10, n_nodes // 5, n_nodes // 2
    n_cons = n_nodes - n_prod - n_ex - n_q
    types = [ExchangeType.DIRECT, ExchangeType.TOPIC, ExchangeType.FANOUT, ExchangeType.HEADERS]
    exchanges = [Exchange(f"ex.{i}", types[i % 4], id=f"ex-{i}") for i in range(n_ex)]
    queues = []
    for i in range(n_q):
        args: dict[str, object] = {}
        if i % 5 == 0:
            args = {"x-dead-letter-exchange": f"ex.{rng.randrange(n_ex)}", "x-message-ttl": 30_000}
        queues.append(Queue(f"queue.{i}", arguments=args, id=f"q-{i}"))
    for i, node in enumerate([*exchanges, *queues]):
        doc.set_position(node.id, (float(i % 40) * 300, float(i // 40) * 120), notify=False)
        t.add_node(node)
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < n_bindings:
        pairs.add((rng.randrange(n_ex), rng.randrange(n_q)))
    for e, q in sorted(pairs):
        t.add_binding(Binding(f"ex-{e}", f"q-{q}", f"key.{q}", id=f"b-{e}-{q}"))
    clients: list[Producer | Consumer] = [
        Producer(f"producer.{i}", target=f"ex-{rng.randrange(n_ex)}", id=f"p-{i}") for i in range(n_prod)
    ]
    clients += [
        Consumer(f"consumer.{i}", source=f"q-{rng.randrange(n_q)}", id=f"c-{i}") for i in range(n_cons)
    ]
    offset = n_ex + n_q
    for i, client in enumerate(clients, start=offset):
        doc.set_position(client.id, (float(i % 40) * 300, float(i // 40) * 120), notify=False)
        t.add_node(client)
    return doc


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def repaint(view: QGraphicsView) -> float:
    """`QGraphicsView.render` into an image: it queries items by bounding rect (one Python
    `boundingRect` call per item in view) before drawing, which a real paint event does not."""
    image = QImage(WIDTH, HEIGHT, QImage.Format.Format_ARGB32_Premultiplied)
    painter = QPainter(image)
    elapsed = timed(lambda: view.render(painter))
    painter.end()
    return elapsed


def viewport_repaint(app: QApplication, view: QGraphicsView) -> float:
    """A real paint event of the whole viewport (what the user waits for), pending events flushed first."""
    app.processEvents()
    return timed(view.viewport().repaint)


def drag_steps(
    app: QApplication, view: QGraphicsView, item: object, steps: int, move: Callable[[QPointF], None]
) -> list[float]:
    """Move `item` step by step at 100 % zoom with `move`; each step is the move plus the repaint it
    causes. The first step (a gesture's start) is element 0."""
    view.resetTransform()
    view.centerOn(item.pos())  # type: ignore[attr-defined]
    app.processEvents()
    times = []
    start = item.pos()  # type: ignore[attr-defined]
    for i in range(1, steps + 1):
        t0 = time.perf_counter()
        move(start + QPointF(i * 3.0, i * 2.0))
        app.processEvents()  # the scene collects dirty items …
        app.processEvents()  # … and the view repaints the dirty region
        times.append(time.perf_counter() - t0)
    return times


def bench_canvas(app: QApplication, doc: TopologyDocument, steps: int) -> dict[str, float]:
    editor = DocumentEditor(doc)
    out: dict[str, float] = {}
    holder: dict[str, TopologyScene] = {}
    out["open"] = timed(lambda: holder.setdefault("scene", TopologyScene(editor)))
    scene = holder["scene"]
    out["layout"] = timed(scene.auto_layout)
    assert editor.undo_stack.count() == 1
    view = TopologyView(scene)
    view.resize(WIDTH, HEIGHT)
    view.show()
    app.processEvents()
    view.fit_all()
    out["layer"] = float(scene.edge_layer_active)
    out["viewport_first"] = viewport_repaint(app, view)
    out["viewport"] = statistics.median(viewport_repaint(app, view) for _ in range(7))
    out["repaint_first"] = repaint(view)
    out["repaint"] = statistics.median(repaint(view) for _ in range(5))
    node = scene.node_item("q-0")
    assert node is not None
    # The scene's own drag gesture (what a mouse drag runs), driven without mouse events.
    scene.snap_to_grid = False  # every step moves (steps are smaller than the grid)
    scene.clearSelection()
    node.setSelected(True)
    gesture = MoveInteraction(scene, node, node.pos(), QPointF())
    scene.begin_interaction(gesture)
    times = drag_steps(app, view, node, steps + 1, gesture.drag_to)
    gesture.drag_to(node.pos())  # release without a model change: the benchmark measures the view
    gesture.cancel()
    out["drag_start"] = times[0]
    out["drag_step"] = statistics.median(times[1:])
    out["edges"] = len(node.edges)
    view.close()
    return out


def bench_baseline(app: QApplication, doc: TopologyDocument, steps: int) -> dict[str, float]:
    out: dict[str, float] = {}
    scene = QGraphicsScene()

    def build() -> tuple[dict[str, QGraphicsRectItem], list[tuple[QGraphicsLineItem, str, str]]]:
        rects: dict[str, QGraphicsRectItem] = {}
        for i, node in enumerate(doc.topology.nodes):
            rect = QGraphicsRectItem(QRectF(-92, -30, 184, 60))
            rect.setPos(float(i % 40) * 300, float(i // 40) * 120)
            scene.addItem(rect)
            rects[node.id] = rect
        lines = []
        for b in doc.topology.bindings:
            line = QGraphicsLineItem(QLineF(rects[b.source].pos(), rects[b.destination].pos()))
            scene.addItem(line)
            lines.append((line, b.source, b.destination))
        return rects, lines

    built: dict[str, object] = {}
    out["open"] = timed(lambda: built.setdefault("v", build()))
    rects, lines = built["v"]  # type: ignore[misc]
    out["layout"] = 0.0
    view = QGraphicsView(scene)
    view.setRenderHints(QPainter.RenderHint.Antialiasing)
    view.resize(WIDTH, HEIGHT)
    view.show()
    app.processEvents()
    view.fitInView(scene.itemsBoundingRect(), Qt.AspectRatioMode.KeepAspectRatio)
    out["viewport_first"] = viewport_repaint(app, view)
    out["viewport"] = statistics.median(viewport_repaint(app, view) for _ in range(7))
    out["repaint_first"] = repaint(view)
    out["repaint"] = statistics.median(repaint(view) for _ in range(5))
    target = rects["q-0"]
    attached = [(line, s, d) for line, s, d in lines if "q-0" in (s, d)]

    class Mover:
        def pos(self) -> QPointF:
            return target.pos()

        def setPos(self, p: QPointF) -> None:
            target.setPos(p)
            for line, s, d in attached:
                line.setLine(QLineF(rects[s].pos(), rects[d].pos()))

    mover = Mover()
    times = drag_steps(app, view, mover, steps + 1, mover.setPos)
    out["drag_start"] = times[0]
    out["drag_step"] = statistics.median(times[1:])
    view.close()
    return out


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer drag steps")
    args = parser.parse_args()
    steps = 20 if args.quick else 60
    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    doc = generate()
    print(f"design: {len(doc.topology.nodes)} nodes, {len(doc.topology.bindings)} bindings; "
          f"load average {_load()} on {os.cpu_count()} cores (the times are wall clock)")
    base = bench_baseline(app, generate(), steps)
    canvas = bench_canvas(app, doc, steps)
    canvas["open_layout"] = canvas["open"] + canvas["layout"]
    base["open_layout"] = base["open"] + base["layout"]
    rows = [
        ("open (scene build)", "open", 1000.0),
        ("auto-layout", "layout", 1000.0),
        ("open + auto-layout", "open_layout", 1000.0),
        ("viewport repaint, first (fit-all)", "viewport_first", 1000.0),
        ("viewport repaint, warm (fit-all)", "viewport", 1000.0),
        ("view.render, first (fit-all)", "repaint_first", 1000.0),
        ("view.render, warm (fit-all)", "repaint", 1000.0),
        ("drag start (first step)", "drag_start", 1000.0),
        ("drag step (move + repaint)", "drag_step", 1000.0),
    ]
    print(f"{'measure':34} {'canvas ms':>10} {'baseline ms':>12} {'ratio':>7}")
    for label, key, scale in rows:
        c, b = canvas[key] * scale, base[key] * scale
        ratio = f"{c / b:6.1f}x" if b > 0 else "     -"
        print(f"{label:34} {c:10.1f} {b:12.1f} {ratio:>7}")
    open_layout = canvas["open"] + canvas["layout"]
    checks = [
        (f"open + layout < {GOAL_OPEN_LAYOUT_S:g} s", open_layout, GOAL_OPEN_LAYOUT_S, "s"),
        (f"full repaint < {GOAL_REPAINT_MS:g} ms", canvas["viewport"] * 1000, GOAL_REPAINT_MS, "ms"),
        (f"drag step < {GOAL_DRAG_MS:g} ms", canvas["drag_step"] * 1000, GOAL_DRAG_MS, "ms"),
    ]
    layer = bool(canvas["layer"])
    print(f"dragged node has {int(canvas['edges'])} edges; edge layer active at fit-all: {layer}")
    for goal, value, limit, unit in checks:
        verdict = "ok" if value < limit else "MISSED"
        print(f"goal {goal:28} measured {value:8.3f} {unit:2}  {verdict}")


if __name__ == "__main__":
    main()
