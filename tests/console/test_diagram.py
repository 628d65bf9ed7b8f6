from __future__ import annotations

from console.diagram import state_diagram
from dialogue.machine import STATES, TRANSITIONS


def test_diagram_draws_every_state_and_every_state_change_of_the_table() -> None:
    diagram = state_diagram()
    assert {n.name for n in diagram.nodes} == {str(s) for s in STATES}
    drawn = {(e.source, e.dest, trigger) for e in diagram.edges for trigger in e.triggers.split(", ")}
    for t in TRANSITIONS:
        if t.source == "*":
            assert t.trigger in diagram.any_state_triggers
            continue
        for source in t.sources():
            dest = t.dest or source
            if dest != source:
                assert (str(source), str(dest), t.trigger) in drawn


def test_nodes_do_not_overlap() -> None:
    nodes = state_diagram().nodes
    for i, a in enumerate(nodes):
        for b in nodes[i + 1 :]:
            assert abs(a.x - b.x) >= 130 or abs(a.y - b.y) >= 50, (a.name, b.name)
