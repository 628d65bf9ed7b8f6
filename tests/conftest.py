"""Suite-wide settings: the transitions library narrates every callback at INFO; tests want our logs only."""

from __future__ import annotations

import logging

logging.getLogger("transitions").setLevel(logging.WARNING)
