from __future__ import annotations

from console.diagram import state_diagram
from dialogue.machine import VIEW_STATES, view_edges


def test_diagram_draws_every_state_and_every_state_change_of_the_table() -> None:
    diagram = state_diagram()
    assert {n.name for n in diagram.nodes} == set(VIEW_STATES)
    drawn = {(e.source, e.dest, trigger) for e in diagram.edges for trigger in e.triggers.split(", ")}
    assert drawn == set(view_edges())
    assert ("speaking", "barge_in", "speech_started") in drawn
    assert ("barge_in", "speaking", "false_barge_in") in drawn
    assert "hangup" in diagram.any_state_triggers


def test_nodes_do_not_overlap() -> None:
    nodes = state_diagram().nodes
    for i, a in enumerate(nodes):
        for b in nodes[i + 1 :]:
            assert abs(a.x - b.x) >= 130 or abs(a.y - b.y) >= 50, (a.name, b.name)
