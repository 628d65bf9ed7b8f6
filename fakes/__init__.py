"""Loopback servers that speak the OpenAI, ElevenLabs and Twilio REST wire protocols.

The real SDK clients talk to them through their base URLs, in tests, benchmarks and from the command line.
"""
