"""The few lines ``voicebot serve`` prints on a terminal: where to click, who plays each role, what to add.

The structured log stays the record (JSON when not on a terminal); this is for the person who just typed
the command and wants to know whether they can call the bot now.
"""

from __future__ import annotations

from web.providers import Providers
from web.settings import Settings

ADD = {
    "stt": "add OPENAI_API_KEY to .env for OpenAI transcription",
    "llm": "add OPENAI_API_KEY to .env for an OpenAI model (or OPENAI_BASE_URL for a local server)",
    "tts": "add ELEVENLABS_API_KEY to .env for an ElevenLabs voice",
}
ROLES = {"stt": "speech-to-text", "llm": "language model", "tts": "text-to-speech"}


def banner(settings: Settings, providers: Providers) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104 - compared only
    base = f"http://{host}:{settings.port}"
    lines = [
        "",
        f"  voicebot on {base}",
        f"  console      {base}/console  (talk to it: {base}/console/browser-call)",
    ]
    cloud = {
        "stt": bool(settings.openai_api_key.get_secret_value()),
        "llm": bool(settings.openai_api_key.get_secret_value()),
        "tts": bool(settings.elevenlabs_api_key.get_secret_value()),
    }
    for role, engine in providers.describe().items():
        hint = "" if cloud[role] else f"   <- {ADD[role]}"
        if engine == "missing":
            hint = "   <- MISSING: calls are refused; see `voicebot check`"
        lines.append(f"  {ROLES[role]:<15}{engine}{hint}")
    if getattr(providers.stt, "state", None) in ("idle", "loading"):
        lines.append("  (the local speech model loads in a few seconds: /ready answers 200 once it is there)")
    if settings.public_url:
        lines.append(f"  phone        Twilio webhooks go to {settings.public_url}/voice")
    else:
        lines.append("  phone        not connected   <- `voicebot connect` points your Twilio number here")
    lines.append("")
    return "\n".join(lines)
