"""Turns call events into HTML (htmx fragments over SSE), the browser-microphone island and call history."""
