"""docs/testing.md's reference lists every public helper of the test kit, with its members.

The names come from ``wacht_auth.testing.__all__`` and the classes themselves, so a helper
added to the kit without a reference entry (or an entry left behind by a removed one) fails.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

import wacht_auth.testing as kit

PAGE = Path(__file__).resolve().parent.parent / "docs" / "testing.md"
REFERENCE = PAGE.read_text(encoding="utf-8").split("\n## Reference\n", 1)[1]
ENTRIES = set(re.findall(r"^\*\*`(\w+)", REFERENCE, re.MULTILINE))
CONSTANTS = re.search(r"^\*\*Constants\*\*:(.*?)(?:\n\n|\Z)", REFERENCE, re.MULTILINE | re.DOTALL)
FIXTURES = re.search(r"^\*\*Fixtures\*\*:(.*?)(?:\n\n|\Z)", REFERENCE, re.MULTILINE | re.DOTALL)
CLASSES = sorted(name for name in kit.__all__ if inspect.isclass(getattr(kit, name)))


def mentioned(name: str) -> bool:
    """``name`` as the reference writes a member: `` `name` ``, ``name(...)``, ``.name()``
    or ``name=default``."""
    return re.search(rf"[`.\s,(]{re.escape(name)}[`(=]", REFERENCE) is not None


def test_every_exported_name_has_an_entry() -> None:
    assert CONSTANTS is not None
    constants = set(re.findall(r"`([A-Z_]+)`", CONSTANTS.group(1)))
    documented = ENTRIES | constants
    assert set(kit.__all__) == documented


def test_every_fixture_is_listed() -> None:
    assert FIXTURES is not None
    listed = set(re.findall(r"`(wacht_\w+)`", FIXTURES.group(1)))
    fixtures = {name for name in dir(kit) if name.startswith("wacht_")}
    assert fixtures and fixtures == listed


@pytest.mark.parametrize("name", CLASSES)
def test_every_public_member_of_a_class_is_in_its_reference(name: str) -> None:
    cls = getattr(kit, name)
    members = [m for m in vars(cls) if not m.startswith("_")]
    if dataclasses.is_dataclass(cls):
        members += [f.name for f in dataclasses.fields(cls)]
    missing = [m for m in members if not mentioned(m)]
    assert not missing, f"{name}: {missing}"
