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


_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^/@\s:]*)(?::[^/\s]*)?@")
_DIGIT_RUN = re.compile(r"(?<![\w+\-:.])\d(?: ?\d){5,}(?![\w\-:]|\.\d)")


def mask_url_credentials(text: str) -> str:
    """``postgresql://bot:s3cret@db/x`` → ``postgresql://bot:***@db/x``: the one masker for URLs with a login.

    Applied to every log line and to ``voicebot check``; the user name stays so an operator can still
    tell which account is meant.
    """
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:***@", text)


def mask_digit_runs(text: str) -> str:
    """Dictated numbers (IBAN, card, customer, phone numbers): six or more digits, spaced or not, keep the
    last two. Digits glued to letters (call ids such as ``CA12ab…``, ``DE89`` of an IBAN) are left alone,
    so log lines can still be correlated; the long run after an IBAN's country code is masked."""

    def hide(match: re.Match[str]) -> str:
        run = match.group(0)
        total = sum(c.isdigit() for c in run)
        seen = 0
        out = []
        for ch in run:
            if ch.isdigit():
                seen += 1
                out.append(ch if seen > total - 2 else "•")
            else:
                out.append(ch)
        return "".join(out)

    return _DIGIT_RUN.sub(hide, text)


def caller_digits(number: str) -> str:
    """The number as digits only (with a leading + kept), so "+49 170 1234" and "+491701234" match."""
    digits = re.sub(r"\D", "", number)
    return ("+" + digits) if number.strip().startswith("+") else digits


def caller_hash(key: bytes, number: str) -> str:
    """A keyed hash of a caller number: enough to find one caller's calls (Art. 17), useless to dial back.

    Keyed with the instance's secret so a leaked database cannot be reversed by hashing all numbers.
    """
    import hashlib
    import hmac

    digits = caller_digits(number)
    if not digits.strip("+"):
        return ""
    return hmac.new(key, b"caller\0" + digits.encode(), hashlib.sha256).hexdigest()
