import secrets
from pathlib import Path


def local_secret_key(path: Path) -> str:
    """Return the embedded install's secret key, creating it (owner-readable only) on first use."""
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(50)
    path.touch(mode=0o600)
    path.write_text(key)
    return key
