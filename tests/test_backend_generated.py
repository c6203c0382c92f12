"""The generated Backend API code is current, matches Wacht's description, and types a user's
calls: ``make generate`` output equals the committed files, and ``mypy --strict`` catches a
wrong argument or a misspelt field in code that uses the clients."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wacht_auth.backend import _generate as gen

ROOT = Path(__file__).resolve().parent.parent
#: Wacht's API description, as the workspace keeps it next to the repository.
DESCRIPTION = Path(
    os.environ.get("WACHT_API_DESCRIPTION", ROOT.parent / "shared" / "wacht" / "platform-api.json")
)


def test_committed_code_is_what_the_generator_makes_from_the_table() -> None:
    outputs = gen.render(gen.load_table())
    assert set(outputs) >= {gen.HERE / "_api.py", gen.HERE / "_types.py", gen.DOC}
    for path, text in outputs.items():
        assert path.read_text(encoding="utf-8") == text, f"run make generate: {path.name}"


def test_the_table_is_derived_from_the_description() -> None:
    if not DESCRIPTION.is_file():
        pytest.skip(f"Wacht's API description is not at {DESCRIPTION}")
    source = DESCRIPTION.read_bytes()
    table = gen.derive_table(json.loads(source), source)
    assert gen.TABLE.read_text(encoding="utf-8") == gen.dump_table(table)


def test_the_table_holds_no_prose() -> None:
    text = gen.TABLE.read_text(encoding="utf-8")
    for word in ("description", "summary", "example", "title"):
        assert f'"{word}":"' not in text  # a member of that name may exist; its prose may not
    assert '"nullable"' not in text and '"examples"' not in text


def test_naming_rule() -> None:
    assert gen.snake("getUserDetails") == "get_user_details"
    assert gen.snake("createOauthApp") == "create_oauth_app"
    assert gen.snake("getAPIKeys") == "get_api_keys"
    assert gen.namespace("API Auth") == "api_auth" and gen.namespace("OAuth") == "oauth"
    assert gen.walker_name("get_active_user_list") == "iter_active_user_list"
    assert gen.walker_name("search_actor_projects") == "iter_search_actor_projects"
    assert gen.arg_name("from") == "from_"
    assert gen.arg_name("app_slug", {"app_slug"}) == "body_app_slug"


def test_importing_the_package_or_the_table_needs_no_httpx() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["httpx"] = None  # any import of httpx now fails
        import wacht_auth
        from wacht_auth.backend import OPERATIONS, BackendAPIError
        from wacht_auth.backend.types import UserDetails
        assert len(OPERATIONS) == 265
        try:
            from wacht_auth.backend import BackendClient
        except ImportError as exc:
            assert "wacht-auth[backend]" in str(exc)
        else:
            raise AssertionError("the clients need httpx")
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


USER_CODE = """\
from wacht_auth.backend import AsyncBackendClient, BackendClient
from wacht_auth.backend.types import UserDetails


def good(client: BackendClient) -> str:
    user: UserDetails = client.users.get_user_details("1")
    for member in client.organizations.iter_organization_members("7", limit=50):
        print(member["id"])
    ticket = client.session.create_backend_session_ticket(
        ticket_type="impersonation", user_id="1", idempotency_key=True, timeout=3
    )
    return user["first_name"] + ticket["url"]


async def misspelt(client: AsyncBackendClient) -> None:
    user = await client.users.get_user_details("1")
    print(user["first_nam"])


def wrong(client: BackendClient) -> None:
    client.users.get_user_details()
    client.users.create_user(first_name="A")
    client.users.get_active_user_list(limit="10")
    client.users.get_user_details("1", retries="x")
"""


def test_mypy_checks_a_users_calls_and_the_fields_they_read(tmp_path: Path) -> None:
    """Only the six mistakes in ``USER_CODE`` are reported, each with its own error code."""
    pytest.importorskip("mypy")
    snippet = tmp_path / "user_code.py"
    snippet.write_text(USER_CODE, encoding="utf-8")
    # A subprocess: mypy in-process raises the interpreter's recursion limit for good.
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(snippet)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    stdout, status = result.stdout, result.returncode
    errors = sorted(
        (int(line.split(":")[1]), line.rsplit("[", 1)[1].rstrip("]"))
        for line in stdout.splitlines()
        if ": error:" in line
    )
    assert status == 1
    assert errors == [
        (17, "typeddict-item"),
        (21, "call-arg"),
        (22, "call-arg"),
        (23, "arg-type"),
        (24, "arg-type"),
    ], stdout
