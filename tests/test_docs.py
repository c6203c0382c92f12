"""Docs that run (issue 12): every marked code block of README.md and docs/*.md is executed.

A block is run when the line before its fence (blank lines aside) is one of these HTML
comments, which neither GitHub nor mkdocs shows:

- ``<!-- run -->``: a complete program. It runs alone, as ``python snippet.py`` in a fresh
  subprocess and an empty directory.
- ``<!-- file: NAME -->``: a file of the page's recipe project, written to ``NAME`` in an
  empty directory; ``DIR/NAME`` puts it in project ``DIR`` instead (a page may hold several
  projects). Each project must hold a ``test_*.py``; it is run with ``python -m pytest`` in a
  subprocess there, as a user would after copying the files into a new project.

Every run gets a local :class:`~wacht_auth.testing.Issuer` as its deployment through
``WACHT_FRONTEND_API_URL`` (and no other ``WACHT_*`` variable), no network beyond loopback and
a time limit. Unmarked blocks are illustrations and are not run; a marker that is not followed
by a fence, or an unknown ``<!-- ... -->`` marker of this form, fails the test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from wacht_auth.testing import Issuer

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FRAMEWORK_PAGES = ["asgi.md", "fastapi.md", "django.md", "flask.md"]
TIMEOUT = 120  # seconds per subprocess: a pytest run of a recipe takes 1 to 3

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)$")
_MARKER = re.compile(r"^\s*<!--\s*(?P<body>(run|file:)[^>]*?)\s*-->\s*$")
_FILE = re.compile(r"^file:\s*(?P<path>[\w.-]+(?:/[\w.-]+)?)$")


@dataclass(frozen=True)
class Block:
    """One marked code block: where it is, how it runs, its text."""

    page: Path
    line: int
    marker: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def _blocks(page: Path) -> Iterator[Block]:
    """The marked blocks of ``page``, in order (bounded by the page's lines)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    marker: tuple[str, int] | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        found = _MARKER.match(line)
        fence = _FENCE.match(line)
        if found:
            if marker is not None:
                raise AssertionError(f"{page.name}:{marker[1]}: marker not followed by a block")
            marker = (found["body"].strip(), index + 1)
        elif fence and marker is not None:
            indent, closing = fence["indent"], fence["fence"]
            end = index + 1
            while end < len(lines) and lines[end].strip() != closing:
                end += 1
            body = [text[len(indent) :] if text.startswith(indent) else text for text in lines]
            yield Block(page, index + 1, marker[0], "\n".join(body[index + 1 : end]) + "\n")
            marker, index = None, end
        elif fence:  # an unmarked block: skip its body, so a marker inside it is not read
            end = index + 1
            while end < len(lines) and lines[end].strip() != fence["fence"]:
                end += 1
            index = end
        elif marker is not None and line.strip():
            raise AssertionError(f"{page.name}:{marker[1]}: marker not followed by a block")
        index += 1
    if marker is not None:
        raise AssertionError(f"{page.name}:{marker[1]}: marker at the end of the page")


ALL = [block for page in PAGES for block in _blocks(page)]
PROGRAMS = [block for block in ALL if block.marker == "run"]


def _projects() -> dict[str, dict[str, Block]]:
    projects: dict[str, dict[str, Block]] = {}
    for block in ALL:
        if block.marker == "run":
            continue
        match = _FILE.match(block.marker)
        assert match, f"{block.where}: unknown marker {block.marker!r}"
        folder, _, name = match["path"].rpartition("/")
        key = f"{block.page.relative_to(ROOT)}" + (f"/{folder}" if folder else "")
        files = projects.setdefault(key, {})
        assert name not in files, f"{block.where}: {name} is given twice in {key}"
        files[name] = block
    return projects


PROJECTS = _projects()


@pytest.fixture(scope="module")
def deployment() -> Iterator[Issuer]:
    """One local deployment for the module: the blocks mint their own tokens from it or
    from their own ``wacht_issuer`` fixtures."""
    with Issuer() as issuer:
        yield issuer


def _env(issuer: Issuer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WACHT_", "NEXT_PUBLIC_"))}
    env.pop("PYTHONPATH", None)  # the copied files and the installed package, nothing else
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("PYTEST_ADDOPTS", None)
    env["WACHT_FRONTEND_API_URL"] = issuer.url
    return env


def _run(command: list[str], cwd: Path, issuer: Issuer) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=cwd,
        env=_env(issuer),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("block", PROGRAMS, ids=[block.where for block in PROGRAMS])
def test_program_runs(block: Block, deployment: Issuer, tmp_path: Path) -> None:
    (tmp_path / "snippet.py").write_text(block.code, encoding="utf-8")
    done = _run([sys.executable, "snippet.py"], tmp_path, deployment)
    assert done.returncode == 0, f"{block.where} failed:\n{done.stdout}{done.stderr}"


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_recipe_passes_its_own_tests(name: str, deployment: Issuer, tmp_path: Path) -> None:
    files = PROJECTS[name]
    assert any(f.startswith("test_") for f in files), f"{name}: the recipe has no test_*.py"
    for file, block in files.items():
        (tmp_path / file).write_text(block.code, encoding="utf-8")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", "."]
    done = _run(command, tmp_path, deployment)
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}{done.stderr}"
    assert re.search(r"\b\d+ passed\b", done.stdout), done.stdout


@pytest.mark.parametrize("page", FRAMEWORK_PAGES)
def test_each_framework_page_has_a_complete_recipe(page: str) -> None:
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    assert f"docs/{page}" in PROJECTS, f"docs/{page} has no recipe marked <!-- file: ... -->"
    assert 'pip install "wacht-auth[' in text
    assert "CORS" in text  # the order that lets a browser read our 401s


def test_collector_reads_markers_and_refuses_stray_ones(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- run -->\n\n```python\nprint(1)\n```\n\n```python\n<!-- run -->\n```\n"
        "- item\n\n  <!-- file: d/test_x.py -->\n  ```python\n  def test(): pass\n  ```\n",
        encoding="utf-8",
    )
    found = [(b.marker, b.code) for b in _blocks(page)]
    assert found == [("run", "print(1)\n"), ("file: d/test_x.py", "def test(): pass\n")]
    page.write_text("<!-- run -->\nsome text\n```python\nx\n```\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="not followed by a block"):
        list(_blocks(page))
    page.write_text("text\n<!-- file: a.py -->\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="end of the page"):
        list(_blocks(page))
