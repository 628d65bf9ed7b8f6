"""The instance secret: signs console cookies and CSRF tokens and keys the hash of caller numbers.

``SECRET_KEY`` when set (several instances behind one load balancer must share it); otherwise 32 random
bytes made once and kept in ``DATA_DIR/secret_key`` (mode 0600), so cookies and caller hashes survive a
restart. Never derived from the console password: a guessable password must not make forgeable cookies.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from web.settings import Settings

KEY_FILE = "secret_key"


def instance_secret(settings: Settings) -> bytes:
    configured = settings.secret_key.get_secret_value()
    if configured:
        return hashlib.sha256(b"voicebot-secret\0" + configured.encode()).digest()
    path = settings.data_dir / KEY_FILE
    existing = _read(path)
    if existing is not None:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return _read(path) or key
    with os.fdopen(fd, "wb") as out:
        out.write(key.hex().encode())
    return key


def _read(path: Path) -> bytes | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    return key if len(key) >= 16 else None
