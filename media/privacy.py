"""Caller numbers are personal data: what leaves a call (logs, events, pages) carries only a masked form."""

from __future__ import annotations

import re


def mask_phone(number: str) -> str:
    """Keep the country prefix and the last two digits, enough to tell calls apart, not to call back."""
    digits = re.sub(r"\D", "", number)
    if len(digits) < 5:
        return "***" if digits else number
    prefix = "+" + digits[:2] if number.strip().startswith("+") else digits[:2]
    return f"{prefix}{'*' * (len(digits) - 4)}{digits[-2:]}"
