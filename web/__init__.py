"""Composition root: settings, logging, the Litestar app factory, routes and the CLI.

The only layer that reads the environment and picks concrete adapters.
"""
