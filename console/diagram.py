"""The call state diagram as SVG geometry, drawn from the same tables the calls run on.

A call runs two machines (what the bot is doing, and who has the floor); the console shows them as one
view: the work state, or ``barge_in`` while the floor is paused. Edges are every change of that view the
tables allow (``dialogue.machine.view_edges``).

Positions are hand-placed for the known states (the conversational loop reads left to right, barge-in sits
beside it); a state the table gains later still appears, on an extra row, so the diagram never lies by
omission. The template only styles: the current state and the last transition get a CSS class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Final

from dialogue.machine import VIEW_STATES, view_edges

NODE_W: Final = 120
NODE_H: Final = 40
WIDTH: Final = 720
_PLACED: Final[dict[str, tuple[int, int]]] = {
    "greeting": (80, 50),
    "barge_in": (360, 50),
    "listening": (80, 220),
    "transcribing": (267, 220),
    "thinking": (453, 220),
    "speaking": (640, 220),
    "hangup": (640, 380),
}


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    x: int
    y: int

    @property
    def left(self) -> int:
        return self.x - NODE_W // 2

    @property
    def top(self) -> int:
        return self.y - NODE_H // 2


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    dest: str
    triggers: str
    path: str
    label_x: float
    label_y: float


@dataclass(frozen=True, slots=True)
class Diagram:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    height: int
    width: int = WIDTH
    any_state_triggers: str = ""
    """Triggers valid from every state (hangup): one note instead of an arrow from each box."""


def _border_point(node: Node, toward: tuple[float, float]) -> tuple[float, float]:
    dx, dy = toward[0] - node.x, toward[1] - node.y
    if dx == 0 and dy == 0:
        return float(node.x), float(node.y)
    scale = min(
        (NODE_W / 2 + 4) / abs(dx) if dx else math.inf,
        (NODE_H / 2 + 4) / abs(dy) if dy else math.inf,
    )
    return node.x + dx * scale, node.y + dy * scale


def _edge(a: Node, b: Node, triggers: str, bend: float, label_at: float) -> Edge:
    """A quadratic curve; ``bend`` separates the two directions between one pair of states.

    The label sits at ``label_at`` along the curve, toward the less busy end, where it has room.
    """
    mx, my = (a.x + b.x) / 2, (a.y + b.y) / 2
    length = math.hypot(b.x - a.x, b.y - a.y) or 1.0
    cx, cy = mx - (b.y - a.y) / length * bend, my + (b.x - a.x) / length * bend
    sx, sy = _border_point(a, (cx, cy))
    ex, ey = _border_point(b, (cx, cy))
    path = f"M{sx:.0f},{sy:.0f} Q{cx:.0f},{cy:.0f} {ex:.0f},{ey:.0f}"
    t = label_at
    lx = (1 - t) ** 2 * sx + 2 * (1 - t) * t * cx + t**2 * ex
    ly = (1 - t) ** 2 * sy + 2 * (1 - t) * t * cy + t**2 * ey
    return Edge(a.name, b.name, triggers, path, lx, ly - 3)


def _bend(a: Node, b: Node, paired: bool) -> float:
    """Arcs along a row pass below the boxes between; a pair of opposite edges splits apart."""
    if a.y == b.y and abs(a.x - b.x) > NODE_W * 2:
        depth = 0.2 * abs(b.x - a.x) + (34 if paired and b.x < a.x else 0)
        return math.copysign(depth, b.x - a.x)  # signed so that both directions curve downwards
    return 26.0 if paired else 8.0


@cache
def state_diagram() -> Diagram:
    names = list(VIEW_STATES)
    nodes: dict[str, Node] = {}
    extra = 0
    for name in names:
        if name in _PLACED:
            nodes[name] = Node(name, *_PLACED[name])
        else:
            nodes[name] = Node(name, 90 + 270 * (extra % 3), 450 + 110 * (extra // 3))
            extra += 1
    labels: dict[tuple[str, str], list[str]] = {}
    any_state = ["hangup"]
    for source, dest, trigger in view_edges():
        labels.setdefault((source, dest), []).append(trigger)
    degree: dict[str, int] = {}
    for src, dst in labels:
        degree[src] = degree.get(src, 0) + 1
        degree[dst] = degree.get(dst, 0) + 1
    edges = tuple(
        _edge(
            nodes[src],
            nodes[dst],
            ", ".join(trig),
            _bend(nodes[src], nodes[dst], (dst, src) in labels),
            0.5 if degree[src] == degree[dst] else (0.3 if degree[src] < degree[dst] else 0.7),
        )
        for (src, dst), trig in labels.items()
    )
    height = max(n.y for n in nodes.values()) + NODE_H + 30
    return Diagram(tuple(nodes.values()), edges, height, any_state_triggers=", ".join(any_state))
