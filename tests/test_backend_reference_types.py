"""The Backend API reference lists the fields of every typed answer a method returns."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from wacht_auth.backend import types

PAGE = (Path(__file__).resolve().parent.parent / "docs" / "backend.md").read_text("utf-8")
SECTION = PAGE.split("### Answer types", 1)[1]
ENTRIES = {
    match["name"]: match["rest"]
    for match in re.finditer(r"^- \*\*`(?P<name>\w+)`\*\*(?P<rest>.*)$", SECTION, re.MULTILINE)
}


def documented_fields(name: str) -> set[str]:
    rest = ENTRIES[name]
    own = set(re.findall(r"`(\w+)\??: ", rest))
    bases = re.findall(r"`(\w+)`", rest.split(":", 1)[0])
    return own.union(*(documented_fields(base) for base in bases))


def test_every_typed_answer_of_the_reference_has_its_fields_listed() -> None:
    returned = set(re.findall(r"\| `(\w+)` \|$", PAGE, re.MULTILINE))
    answers = {n for n in returned if typing.is_typeddict(getattr(types, n, None))}
    assert "UserDetails" in answers and len(answers) > 50
    for name in sorted(answers):
        fields = set(getattr(types, name).__annotations__)
        assert documented_fields(name) == fields, name
