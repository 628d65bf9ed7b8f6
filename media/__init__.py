"""Bytes and wires: μ-law/PCM, VAD and turn detection, the Media Streams codec, playback, speech adapters.

Knows nothing of LLMs, dialogue or HTML; every layer above may import it.
"""
