"""The seeds' curl commands, read from the seed text and sent to the hub as printed.

`curl -d`/`--data-binary` without a Content-Type is a form post (curl's default), `-X` overrides the method,
`--location` and the host are ignored: the path, query, headers and body are what reach the hub.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

SEEDS = Path(__file__).resolve().parents[2].parent / "shared" / "seeds"
FIXTURES = Path(__file__).resolve().parent / "seeds"


@dataclass
class Curl:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    data: str | None = None

    @property
    def path(self) -> str:
        parts = urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")


def commands(text: str) -> list[str]:
    """Each `curl ...` command of the text, its continuation lines and multi-line quoted bodies joined."""
    out, lines, index = [], text.splitlines(), 0
    while index < len(lines):
        if not lines[index].lstrip().startswith("curl"):
            index += 1
            continue
        command = lines[index]
        while True:
            try:
                complete = not command.rstrip().endswith("\\") and shlex.split(re.sub(r"\\[ \t]*\n", " ", command)) is not None
            except ValueError:  # a quote still open: the body goes on
                complete = False
            if complete or index + 1 >= len(lines):
                break
            index += 1
            command = command + "\n" + lines[index]
        out.append(command)
        index += 1
    return out


def parse(command: str) -> Curl:
    words = shlex.split(re.sub(r"\\[ \t]*\n", " ", command))[1:]
    method, url, headers, data = None, None, {}, None
    index = 0
    while index < len(words):
        word = words[index]
        if word in ("-H", "--header"):
            name, _, value = words[index + 1].partition(":")
            headers[name.strip()] = value.strip()
            index += 2
        elif word in ("-X", "--request"):
            method = words[index + 1]
            index += 2
        elif word in ("-d", "--data", "--data-binary", "--data-raw"):
            data = words[index + 1]
            index += 2
        elif word == "--location":
            index += 1
        else:
            url = word.rstrip("`")  # the seed's first example ends in a stray backtick
            index += 1
    return Curl(method or ("POST" if data is not None else "GET"), url, headers, data)


def seed_curls(name: str) -> list[Curl]:
    """The curls of seed `name` (e.g. "002"): from ../shared/seeds where present, else our verbatim copy."""
    found = sorted(SEEDS.glob(f"{name}_*.txt")) if SEEDS.is_dir() else []
    text = found[0].read_text(encoding="utf-8") if found else (FIXTURES / f"{name}.curl.txt").read_text(encoding="utf-8")
    return [parse(c) for c in commands(text)]


def send(client, curl: Curl, replace: dict[str, str]):
    """Send `curl` through the Django test client, with the seed's placeholders replaced."""
    def sub(text: str) -> str:
        for old, new in replace.items():
            text = text.replace(old, new)
        return text

    headers = {name: sub(value) for name, value in curl.headers.items()}
    content_type = headers.pop("Content-Type", None) or headers.pop("Content-type", None)
    if content_type is None and curl.data is not None:
        content_type = "application/x-www-form-urlencoded"
    extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    body = sub(curl.data) if curl.data is not None else ""
    return client.generic(curl.method, sub(curl.path), body, content_type=content_type or "", **extra)
