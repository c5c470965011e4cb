"""Text that a spreadsheet would run as a formula (CSV injection, OWASP), made literal with a leading `'`.

Applied where the portal's users put text in (CSV uploads, webhooks) and wherever we write a CSV. A cell
starting with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to Excel and LibreOffice, with
one exception kept as it is: a plain number (`-0.1277`, `+49`), which stays a number wherever it is read.
`-1+cmd|' /C calc'!A0` starts like a number and is none.
"""

from __future__ import annotations

import re

STARTS = "=+-@\t\r"
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?")


def neutralised(text: str) -> str:
    # The first character rules out nearly every text before the regex runs.
    if not text or text[0] not in STARTS:
        return text
    if text[0] in "+-" and _PLAIN_NUMBER.fullmatch(text):
        return text
    return "'" + text
