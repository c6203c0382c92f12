"""The project explains itself: nothing cites a design file outside the repository.

Code, tests, docs and benchmarks point at the project's own pages (``docs/architecture.md``
and the pages it links to) for the reasons behind a rule, so a reader of the package or of
the docs site can follow every pointer.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: A document that is not part of the project. Spelled in two parts so that this file is not
#: a citation of it itself.
FOREIGN = "DESIGN" + ".md"
#: Everything the project ships or runs: the package, its tests, docs, benchmarks, examples.
SCANNED = ("wacht_auth", "tests", "docs", "benchmarks", "examples", "README.md")


def _text_files(root: Path, *names: str) -> list[Path]:
    """The files under ``names`` (directories or files of ``root``), this one left out."""
    files: list[Path] = []
    for name in names:
        path = root / name
        found = sorted(path.rglob("*")) if path.is_dir() else [path]
        files += [f for f in found if f.is_file() and "__pycache__" not in f.parts]
    return [f for f in files if f != Path(__file__).resolve()]


def _citing(*names: str, root: Path = ROOT) -> list[str]:
    """The files under ``names`` that mention the foreign document, relative to ``root``."""
    citing: list[str] = []
    for file in _text_files(root, *names):
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # a binary file cites nothing
            continue
        if FOREIGN.lower() in text.lower():
            citing.append(file.relative_to(root).as_posix())
    return citing


def test_scan_finds_a_citation(tmp_path: Path) -> None:
    """The scan itself works: a file that cites the document is found, a binary is skipped."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text(f"see {FOREIGN} §4\n", encoding="utf-8")
    (tmp_path / "docs" / "clean.md").write_text("see architecture.md\n", encoding="utf-8")
    (tmp_path / "docs" / "image.png").write_bytes(b"\xff\xfe\x00" + FOREIGN.encode())
    (tmp_path / "README.md").write_text(f"({FOREIGN.lower()})\n", encoding="utf-8")
    assert _citing("docs", "README.md", root=tmp_path) == ["docs/page.md", "README.md"]


def test_docs_tests_benchmarks_and_examples_cite_only_the_project() -> None:
    assert _citing("tests", "docs", "benchmarks", "examples", "README.md") == []


def test_nothing_cites_a_design_file_outside_the_project() -> None:
    assert _citing(*SCANNED) == []
