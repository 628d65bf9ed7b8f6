"""Alembic migrations of the call store (``voicebot migrate``; the store also runs them at start)."""
