"""The call: state machine table, call session, conversation context, LLM adapters, prompts and tools.

Imports no web framework and never asks which telephony vendor carries the call.
"""
