"""A problem's ``type`` leads to a page that says what the problem means (RFC 9457, 3.1.1)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from adapters.http.problem_pages import PROBLEM_MEANINGS
from adapters.http.schemas import PROBLEM_TITLES, ProblemCode
from tests.e2e.helpers import assert_problem, assert_validation_problem
from tests.tokens import bearer

API_GUIDE = Path(__file__).parents[3] / "docs" / "api.md"


def _documented_codes() -> list[tuple[str, str, str]]:
    """docs/api.md's table of codes: (code, status, meaning) per row, in order."""
    text = API_GUIDE.read_text(encoding="utf-8")
    table = text.split("| `code` | status | meaning |\n| --- | --- | --- |\n", 1)[1]
    rows = re.findall(r"^\| `([a-z_]+)` \| ([^|]+) \| (.+) \|$", table.split("\n\n", 1)[0], re.M)
    return [(code, status, meaning) for code, status, meaning in rows]


def test_the_pages_say_what_the_guide_says_for_every_code() -> None:
    pages = [(code.value, status, meaning) for code, (status, meaning) in PROBLEM_MEANINGS.items()]

    assert pages == _documented_codes()
    assert set(PROBLEM_MEANINGS) == set(ProblemCode)


async def test_the_type_of_real_problems_leads_to_their_page(client: httpx.AsyncClient) -> None:
    answers = [
        (await client.get("/api/alice/tasks"), 401, "unauthorized"),
        (await client.get("/api/bob/tasks", headers=bearer("alice")), 403, "forbidden"),
        (await client.get("/api/alice/tasks/123", headers=bearer("alice")), 404, "task_not_found"),
        (await client.delete("/api/alice/tags", headers=bearer("alice")), 405, None),
        (await client.get("/nowhere"), 404, "not_found"),
    ]
    invalid = await client.post("/api/alice/tasks", json={"title": ""}, headers=bearer("alice"))
    bodies = [assert_problem(answer, status, code) for answer, status, code in answers]
    bodies.append(assert_validation_problem(invalid))

    for body in bodies:
        # Resolved against the URL of the request that failed, as a client would.
        page = await client.get(str(httpx.URL("http://test/api/alice/tasks").join(body["type"])))

        assert page.status_code == 200, body["type"]
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert f"<h1>{body['title']}</h1>" in page.text
        assert f'<code>"code": "{body["code"]}"</code>' in page.text
        assert f"HTTP {body['status']}," in page.text


@pytest.mark.parametrize("code", list(ProblemCode))
async def test_every_code_has_a_page_with_its_title_status_and_meaning(
    code: ProblemCode, client: httpx.AsyncClient
) -> None:
    page = await client.get("/problems/" + code.value.replace("_", "-"))
    status, meaning = PROBLEM_MEANINGS[code]

    assert page.status_code == 200
    assert f"<title>{PROBLEM_TITLES[code]} - Task API problem type</title>" in page.text
    assert (f"HTTP {status}," if status.isdigit() else "Any other HTTP error status,") in page.text
    # Code spans become <code>; the rest is the guide's sentence, escaped.
    shown = re.sub(r"`([^`]+)`", r"<code>\1</code>", meaning.replace("&", "&amp;"))
    assert f"<p>{shown}</p>" in page.text
    assert "<script" not in page.text


async def test_a_page_runs_nothing_and_any_cache_may_keep_it(client: httpx.AsyncClient) -> None:
    page = await client.get("/problems/task-not-found")
    head = await client.head("/problems/task-not-found")

    assert page.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "public, max-age=86400"
    assert head.status_code == 200
    assert head.headers["content-length"] == page.headers["content-length"]
    assert head.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/problems/nothing-of-the-kind",
        "/problems/task_not_found",  # the code, not its type
        "/problems/TASK-NOT-FOUND",
        "/problems/%2E%2E",
        "/problems/",
        "/problems",
    ],
)
async def test_any_other_name_is_a_404_problem(client: httpx.AsyncClient, path: str) -> None:
    assert_problem(await client.get(path), 404, "not_found")


async def test_a_page_is_only_read(client: httpx.AsyncClient) -> None:
    answer = await client.post("/problems/task-not-found")

    assert_problem(answer, 405, "method_not_allowed")
    assert answer.headers["allow"] == "GET, HEAD"
