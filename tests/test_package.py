"""The distributions: the sdist runs its own tests, the wheel works with no web framework.

One module-scoped build (sdist, then the wheel from that sdist, without build isolation so
no network is needed) and one fresh virtual environment that gets the wheel and its runtime
dependencies only. About 5-30 s, most of it pip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from collections.abc import Iterator
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

import pytest

import wacht_auth

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS = ("starlette", "fastapi", "django", "rest_framework", "flask", "uvicorn", "httpx")
# What an unpacked sdist needs to run `make test`, beyond the package itself.
SDIST_NEEDS = (
    "LICENSE",
    "README.md",
    "Makefile",
    "MANIFEST.in",
    "pyproject.toml",
    "mkdocs.yml",
    ".ci/run",
    "tests/__init__.py",
    "tests/conftest.py",
    "tests/helpers.py",
    "tests/integrations/__init__.py",
    "tests/integrations/conftest.py",
    "tests/integrations/contract.py",
    "tests/integrations/django_settings.py",
    "tests/vectors/README.md",
    "tests/test_package.py",
    "examples/starlette_app.py",
    "benchmarks/__main__.py",
    "docs/cli.md",
    "docs/changelog.md",
)
_IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.py[cod]", ".*_cache", "site"
)

pytestmark = pytest.mark.timeout(300)


class Built:
    """The built sdist and wheel and a fresh environment with the wheel installed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        dist = root / "dist"
        self.sdist = next(dist.glob("wacht_auth-*.tar.gz"))
        self.wheel = next(dist.glob("wacht_auth-*.whl"))
        self.env = root / "fresh"
        self.bin = self.env / ("Scripts" if sys.platform == "win32" else "bin")

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """Run a command of the fresh environment (``python``, ``wacht-auth``)."""
        return subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.root,  # not the checkout: nothing importable by accident
            env=_clean_env(),
        )


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}


def _check(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240, env=_clean_env())
    assert done.returncode == 0, f"{argv[:4]} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    work = tmp_path_factory.mktemp("package")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=_IGNORED)  # builds write egg-info: not in the checkout
    # No flags: the sdist first, then the wheel built from the unpacked sdist, which proves
    # the sdist complete enough to build.
    dist = work / "dist"
    _check([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(source)])
    result = Built(work)
    # A fresh environment without pip; this environment's pip installs into it: the wheel
    # and its runtime dependencies, nothing else (no web framework).
    venv.EnvBuilder(with_pip=False).create(result.env)
    python = result.bin / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check"]
    _check([*pip, "install", "--quiet", str(result.wheel)])
    yield result


def test_the_sdist_carries_what_its_tests_need(built: Built) -> None:
    with tarfile.open(built.sdist) as archive:
        top = archive.getnames()[0].split("/")[0]
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    missing = [name for name in SDIST_NEEDS if name not in names]
    assert not missing
    assert not [name for name in names if "__pycache__" in name or name.startswith(".venv")]
    if (ROOT / ".git").exists():  # a checkout: every tracked file but .gitignore ships
        tracked = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
        assert sorted(set(tracked) - names - {".gitignore"}) == []
    assert top == f"wacht_auth-{wacht_auth.__version__}"


def test_the_wheel_holds_the_package_and_its_metadata(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as archive:
        names = set(archive.namelist())
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = HeaderParser().parsestr(archive.read(f"{info}/METADATA").decode())
    assert {"wacht_auth/py.typed", "wacht_auth/_demo.py", "wacht_auth/cli.py"} <= names
    assert {"wacht_auth/testing/__init__.py", "wacht_auth/testing/_plugin.py"} <= names
    assert "wacht_auth/backend/_table.json" in names  # the fake Backend API answers from it
    assert f"{info}/licenses/LICENSE" in names
    assert {name.split("/")[0] for name in names} == {"wacht_auth", info}  # no tests/, examples/
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Version"] == wacht_auth.__version__
    classifiers = metadata.get_all("Classifier") or []
    assert not [c for c in classifiers if c.startswith("License ::")]
    assert {"Typing :: Typed", "Framework :: Django", "Framework :: AsyncIO"} <= set(classifiers)
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL") or [])
    assert {"Homepage", "Documentation", "Source", "Changelog"} <= set(urls)
    assert "demo" in (metadata.get_all("Provides-Extra") or [])


def test_the_wheel_works_in_a_fresh_environment_without_a_framework(built: Built) -> None:
    probe = (
        "import importlib.metadata, importlib.util, json, sys\n"
        "import wacht_auth, wacht_auth.cli, wacht_auth.testing, wacht_auth._dev\n"
        f"frameworks = {FRAMEWORKS!r}\n"
        "print(json.dumps({\n"
        "  'installed': [f for f in frameworks if importlib.util.find_spec(f)],\n"
        "  'imported': sorted({m.split('.')[0] for m in sys.modules} & set(frameworks)),\n"
        "  'version': wacht_auth.__version__,\n"
        "  'metadata_version': importlib.metadata.version('wacht-auth'),\n"
        "  'file': wacht_auth.__file__,\n"
        "}))\n"
    )
    done = built.run("python", "-c", probe)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["installed"] == [] and report["imported"] == []
    assert report["version"] == report["metadata_version"] == wacht_auth.__version__
    assert Path(report["file"]).is_relative_to(built.env)

    done = built.run("wacht-auth", "--version")
    assert done.returncode == 0 and done.stdout.split() == ["wacht-auth", wacht_auth.__version__]

    done = built.run("wacht-auth", "demo", "--json")  # no demo extra: it says which to install
    assert done.returncode == 2
    error = json.loads(done.stdout)["error"]  # --json: every verdict on stdout
    assert (error["code"], error["extra"]) == ("missing_dependency", "demo")

    done = built.run("wacht-auth", "dev", "--seconds", "0", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["claims"]["sub"] == "user_1"
