from __future__ import annotations

from console.live_calls import LiveCalls
from console.views import mask_number, replay, transcript_document
from dialogue.events import BotSentence, CallEnded, CallStarted, TranscriptEvent, TurnLatency
from tests.console.conftest import call_events


def test_fold_builds_state_transcript_latency_and_speech() -> None:
    view = replay("CA1", call_events("CA1", ended=False))
    assert view.live
    assert view.state == "listening"
    assert [t.dest for t in view.transitions] == [
        "listening",
        "transcribing",
        "thinking",
        "speaking",
        "barge_in",
        "listening",
    ]
    roles = [(t.role, t.interrupted, t.pending) for t in view.transcript]
    assert roles == [("bot", False, False), ("caller", False, False), ("bot", True, False)]
    cut = view.transcript[-1]
    assert (cut.text, cut.cut) == ("Wir haben montags", "bis freitags geöffnet.")
    assert view.caller_turns == 1
    assert view.last_latency_ms == 700.0
    assert [b.label for b in view.latencies[0].bars()] == [
        "STT",
        "LLM first token",
        "first sentence",
        "TTS first byte",
        "first audio",
    ]
    assert list(view.speech) == [(1_700_000_002.5, 1_700_000_004.0)]
    assert [p.name for p in view.protocol] == ["mark", "clear"]


def test_bot_sentences_show_as_pending_until_the_turn_finishes() -> None:
    calls = LiveCalls()
    calls.apply(CallStarted(call_sid="CA2", at=10.0))
    calls.apply(BotSentence(call_sid="CA2", at=11.0, text="Hallo.", turn=3))
    view = calls.apply(BotSentence(call_sid="CA2", at=11.5, text="Wie geht's?", turn=3))
    assert [(t.text, t.pending) for t in view.transcript] == [("Hallo. Wie geht's?", True)]
    calls.apply(TranscriptEvent(call_sid="CA2", at=12.0, role="bot", text="Hallo. Wie geht's?", turn=3))
    assert [(t.text, t.pending) for t in view.transcript] == [("Hallo. Wie geht's?", False)]


def test_latency_reports_for_one_turn_merge() -> None:
    calls = LiveCalls()
    calls.apply(TurnLatency(call_sid="CA3", turn=1, transcript_ms=200.0, first_audio_ms=650.0))
    view = calls.apply(TurnLatency(call_sid="CA3", turn=1, playback_done_ms=3000.0))
    assert len(view.latencies) == 1
    assert view.latencies[0].stages["first_audio_ms"] == 650.0
    assert view.latencies[0].playback_done_ms == 3000.0


def test_ended_calls_are_kept_only_up_to_a_limit() -> None:
    calls = LiveCalls(keep_ended=2)
    for i in range(4):
        calls.apply(CallStarted(call_sid=f"CA{i}", at=float(i)))
        calls.apply(CallEnded(call_sid=f"CA{i}", at=float(i) + 1))
    calls.apply(CallStarted(call_sid="CAlive", at=9.0))
    assert [v.call_sid for v in calls.ended()] == ["CA3", "CA2"]
    assert [v.call_sid for v in calls.live()] == ["CAlive"]


def test_full_numbers_are_masked_even_if_a_publisher_forgets() -> None:
    assert mask_number("+4915112345678") == "+••••••••••678"
    assert mask_number("+49 *** ***123") == "+49 *** ***123"
    assert mask_number("browser") == "browser"
    view = replay("CA4", [CallStarted(call_sid="CA4", caller="+4915112345678")])
    assert "12345" not in view.caller


def test_transcript_document_leaves_out_unfinished_turns() -> None:
    events = call_events("CA5")
    doc = transcript_document(replay("CA5", events))
    assert doc["end_reason"] == "caller_hangup"
    turns = doc["turns"]
    assert isinstance(turns, list)
    assert [t["role"] for t in turns] == ["bot", "caller", "bot"]
    assert turns[-1]["interrupted"] is True
    assert doc["latency_ms"] == [
        {
            "turn": 1,
            "transcript_ms": 300.0,
            "llm_first_token_ms": 450.0,
            "first_sentence_ms": 520.0,
            "tts_first_byte_ms": 640.0,
            "first_audio_ms": 700.0,
            "playback_done_ms": None,
            "preemptive_saved_ms": None,
        }
    ]


def test_a_live_call_that_lost_its_end_is_forgotten() -> None:
    calls = LiveCalls(silent_after_s=60)
    calls.apply(CallStarted(call_sid="CAcrashed", at=0.0))
    calls.apply(CallStarted(call_sid="CAnew", at=61.0))
    assert [v.call_sid for v in calls.live()] == ["CAnew"]


def test_an_erased_call_stays_gone_even_when_its_end_arrives_late() -> None:
    """Erasure reads the store, which may know a call ended before this view's batched events say so."""
    calls = LiveCalls()
    calls.apply(CallStarted(call_sid="CAdone", at=0.0))
    calls.apply(CallEnded(call_sid="CAdone", at=1.0))
    calls.apply(CallStarted(call_sid="CAending", at=2.0))
    calls.drop(["CAdone", "CAending", "CAnever_seen"])
    assert calls.get("CAdone") is None
    assert [v.call_sid for v in calls.live()] == ["CAending"]  # its end is still on its way
    assert calls.apply(CallEnded(call_sid="CAending", at=3.0)) is None
    assert calls.get("CAending") is None
    for sid in ("CAdone", "CAending", "CAnever_seen"):  # late or replayed events do not bring them back
        assert calls.apply(TurnLatency(call_sid=sid, at=4.0, turn=1)) is None
    assert calls.ended() == []
    assert calls.live() == []
