"""CSV injection: what a spreadsheet would run is made literal; numbers and plain text stay as they are."""

import pytest

from locations.formulas import neutralised


@pytest.mark.parametrize("text, stored", [
    ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
    ("-1+cmd|' /C calc'!A0", "'-1+cmd|' /C calc'!A0"),
    ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
    ("@SUM(1+1)*cmd|' /C calc'!A0", "'@SUM(1+1)*cmd|' /C calc'!A0"),
    ("\t=1+1", "'\t=1+1"), ("\r=1+1", "'\r=1+1"),
    ("-Infinity", "'-Infinity"), ("- 3", "'- 3"),
    ("-0.1277", "-0.1277"), ("+49", "+49"), ("-12,5", "-12,5"), ("1.5e3", "1.5e3"), ("-.5", "-.5"),
    ("Marktplatz 1", "Marktplatz 1"), ("", ""), ("Yan-Yan's Store", "Yan-Yan's Store"),
])
def test_neutralised(text, stored):
    assert neutralised(text) == stored
