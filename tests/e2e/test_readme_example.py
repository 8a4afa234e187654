"""The README's API example runs as written against a served API, so it cannot rot."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx

from tests.process import clean_env, taskapi_serve
from tests.tokens import SECRET, bearer

ROOT = Path(__file__).resolve().parents[2]


def readme_example() -> str:
    readme = (ROOT / "README.md").read_text()
    block = re.search(
        r"<!-- example:start -->\n```bash\n(.*?)```\n<!-- example:end -->", readme, re.DOTALL
    )
    assert block, "README.md lost its example block"
    return block.group(1)


def test_the_readme_example_runs_against_a_served_api(
    database_url: str, tmp_path: Path, clean_tasks: None
) -> None:
    with taskapi_serve(tmp_path, DATABASE_URL=database_url, JWT_SECRET=SECRET) as (base, _):
        result = subprocess.run(  # noqa: S603  # the README's own script
            ["/bin/bash", "-euo", "pipefail", "-c", readme_example()],
            cwd=ROOT,
            env=clean_env(API=base, JWT_SECRET=SECRET),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        left = httpx.get(f"{base}/api/alice/tasks", headers=bearer("alice"), timeout=10)
    assert result.returncode == 0, result.stderr
    printed = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    listed, tags, got, updated, completed, feed = printed
    assert [task["title"] for task in listed] == ["Buy groceries"]
    assert (listed[0]["due_at"], listed[0]["tags"]) == (
        "2026-12-24T16:00:00.000000Z",
        ["errands", "home"],
    )
    assert tags == [{"tag": "errands", "count": 1}, {"tag": "home", "count": 1}]
    assert got == listed[0]
    assert (updated["title"], updated["version"]) == ("Buy almond milk", 2)
    assert completed["completed"] is True
    # Edited, completed, then deleted since the token: the feed says what it is now, deleted.
    assert [(c["op"], c["id"]) for c in feed["changes"]] == [("delete", got["id"])]
    assert feed["has_more"] is False
    assert left.json() == []  # the example deleted what it created
