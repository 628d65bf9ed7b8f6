"""The benchmarks' count of budget expiries, fallbacks and underruns from a server's JSON log."""

from __future__ import annotations

import json
from pathlib import Path

from bench.server_log import count_trouble, log_size


def _line(event: str, **fields: object) -> str:
    return json.dumps({"event": event, "level": "warning", **fields})


def test_expiries_fallbacks_and_underruns_are_counted_once_each_from_an_offset(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(_line("provider_failed", stage="llm", detail="llm: nothing within 1.5 s") + "\n")
    start = log_size(log)
    lines = [
        "INFO:     Uvicorn running on http://127.0.0.1:8000",  # not JSON: skipped
        _line("playout_underrun", dry_ms=140),
        _line("tts_failed", engine="elevenlabs", detail="tts: nothing within 1.5 s", bytes_before=0),
        _line("tts_failed", engine="espeak", detail="tts: espeak failed", bytes_before=0),
        _line("provider_failed", stage="tts", detail="tts: espeak failed"),  # the same sentence: not again
        _line("provider_failed", stage="stt", detail="stt: no answer within 3.0 s"),
        _line("provider_failed", stage="llm", detail="llm: HTTP 500"),
        _line("call_refused", reasons=["at the limit"]),
    ]
    with log.open("a") as f:
        f.write("\n".join(lines) + "\n")
    found = count_trouble(log, start)
    assert (found.budget_expiries, found.fallbacks, found.underruns) == (2, 4, 1)
    assert count_trouble(log).budget_expiries == 3
    assert count_trouble(tmp_path / "missing.log").lines == 0
