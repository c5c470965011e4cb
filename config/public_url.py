"""The hub's public address (settings.PUBLIC_BASE_URL): what it puts in every URL it gives out.

`EVHUB_BASE_URL` when set: production sets it, and `make run` exports it to all of its processes (honcho
gives each process of the Procfile a PORT of its own, web 8000, worker 8100, beat 8200: only the web's is
served). Else `PORT`, the port gunicorn serves on (Procfile). Else the address `make run` last served,
which it records in the var directory, so that `manage.py ocpi_invite` run in another shell, without the
server's environment, prints the URL the server really serves (`PORT=8080 make run`). Else port 8000,
`make run`'s default.
"""

from pathlib import Path

RECORD = "base_url"  # in the var directory, written by `make run`


def public_base_url(*, environ, var_dir: Path) -> str:
    explicit = (environ.get("EVHUB_BASE_URL") or "").strip()
    if explicit:
        return explicit.rstrip("/")
    port = (environ.get("PORT") or "").strip()
    if port.isdigit() and 0 < int(port) < 65536:
        return f"http://127.0.0.1:{int(port)}"
    try:
        recorded = (var_dir / RECORD).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        recorded = ""
    if recorded.startswith(("http://", "https://")) and len(recorded) <= 255 and recorded.isprintable():
        return recorded.rstrip("/")
    return "http://127.0.0.1:8000"
