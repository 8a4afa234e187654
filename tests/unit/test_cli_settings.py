"""``taskapi`` refuses bad configuration with one line naming the variable: in process.

``main()`` is called as the console script calls it, with the environment patched; one test in
``tests/integration/test_cli.py`` runs the real command to prove the exit code and stderr.
"""

from __future__ import annotations

import os
from pathlib import Path

import jwt
import pytest

from bootstrap import cli
from bootstrap.settings import Settings
from tests.tokens import SECRET

GOOD_URL = "postgresql://u@127.0.0.1:1/db"
JWKS_URL = "https://auth.example.com/api/auth/jwks"
_OURS = ("DATABASE_", "JWT_", "CORS_", "CURSOR_", "LOG_LEVEL")


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No variable of the service set, no ``.env`` to read, and no server ever started."""
    for key in list(os.environ):
        if key.startswith(_OURS):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("bad configuration must stop before serving")

    monkeypatch.setattr("bootstrap.cli.uvicorn.run", never)
    return monkeypatch


def _run(
    environment: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    variables: dict[str, str],
) -> tuple[int, str, str]:
    for key, value in variables.items():
        environment.setenv(key, value)
    status = cli.main(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


BAD_CONFIGURATIONS: list[tuple[dict[str, str], str]] = [
    ({"DATABASE_URL": GOOD_URL}, "JWT_SECRET"),
    ({"DATABASE_URL": GOOD_URL, "JWT_SECRET": "short"}, "JWT_SECRET"),
    ({"JWT_SECRET": SECRET}, "DATABASE_URL"),
    ({"DATABASE_URL": "mysql://u@h/db", "JWT_SECRET": SECRET}, "DATABASE_URL"),
    ({"DATABASE_URL": "not a url", "JWT_SECRET": SECRET}, "DATABASE_URL"),
    ({"DATABASE_URL": GOOD_URL, "JWT_SECRET": SECRET, "JWT_ALGORITHMS": "none"}, "JWT_ALGORITHMS"),
    ({"DATABASE_URL": GOOD_URL, "JWT_SECRET": SECRET, "JWT_ALGORITHMS": "HS257"}, "JWT_ALGORITHMS"),
    ({"DATABASE_URL": GOOD_URL, "JWT_SECRET": SECRET, "JWT_ALGORITHMS": ","}, "JWT_ALGORITHMS"),
    (
        {"DATABASE_URL": GOOD_URL, "JWT_SECRET": SECRET, "JWT_LEEWAY_SECONDS": "soon"},
        "JWT_LEEWAY_SECONDS",
    ),
    (
        {"DATABASE_URL": GOOD_URL, "JWT_SECRET": SECRET, "JWT_LEEWAY_SECONDS": "-1"},
        "JWT_LEEWAY_SECONDS",
    ),
    ({"DATABASE_URL": GOOD_URL, "JWT_SECRET": SECRET, "LOG_LEVEL": "CHATTY"}, "LOG_LEVEL"),
    (
        {"DATABASE_URL": GOOD_URL, "JWT_SECRET": SECRET, "SECURITY_LOG_MAX_PER_SECOND": "-1"},
        "SECURITY_LOG_MAX_PER_SECOND",
    ),
    (
        {"DATABASE_URL": GOOD_URL, "JWT_SECRET": SECRET, "DATABASE_POOLER": "session"},
        "DATABASE_POOLER",
    ),
    ({"DATABASE_URL": GOOD_URL, "JWT_JWKS_URL": "ftp://auth.example/jwks"}, "JWT_JWKS_URL"),
    (
        {"DATABASE_URL": GOOD_URL, "JWT_JWKS_URL": JWKS_URL, "JWT_ALGORITHMS": "HS256"},
        "JWT_ALGORITHMS",
    ),
    ({"DATABASE_URL": GOOD_URL, "JWT_SECRET": SECRET, "JWT_ALGORITHMS": "EdDSA"}, "JWT_ALGORITHMS"),
    ({"DATABASE_URL": GOOD_URL, "JWT_SECRET": SECRET, "CURSOR_SECRET": "short"}, "CURSOR_SECRET"),
    (
        {"DATABASE_URL": GOOD_URL, "JWT_SECRET": SECRET, "DATABASE_DIRECT_URL": "garbage"},
        "DATABASE_DIRECT_URL",
    ),
    (
        {"DATABASE_URL": GOOD_URL, "JWT_SECRET": SECRET, "DATABASE_DIRECT_URL": "mysql://x/y"},
        "DATABASE_DIRECT_URL",
    ),
    (
        {"DATABASE_URL": GOOD_URL, "JWT_SECRET": SECRET, "RATE_LIMIT_USER_RPS": "1e-320"},
        "RATE_LIMIT_USER_RPS",
    ),
    (
        {"DATABASE_URL": GOOD_URL, "JWT_SECRET": SECRET, "RATE_LIMIT_IP_RPS": "0.0001"},
        "RATE_LIMIT_IP_RPS",
    ),
    *(
        ({"DATABASE_URL": GOOD_URL, "JWT_SECRET": SECRET, "CORS_ORIGINS": origins}, "CORS_ORIGINS")
        for origins in (
            "https://app.example.com/",  # the trailing slash no browser sends
            "https://app.example.com,app.example.com",
            "https://App.example.com",
            "https://app.example.com/login",
            "https://app.example.com:99999",
            "https://app.example.com:443",  # browsers leave the default port out
            "https://*.example.com",
            "https://bücher.example",  # browsers send xn--bcher-kva.example
            "*,https://app.example.com",
            "file:///tmp",
        )
    ),
]


@pytest.mark.parametrize(("variables", "name"), BAD_CONFIGURATIONS, ids=repr)
def test_serve_refuses_bad_configuration_in_one_line(
    environment: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variables: dict[str, str],
    name: str,
) -> None:
    status, out, err = _run(environment, capsys, ["serve", "--port", "1"], variables)

    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("taskapi: configuration error: ")
    assert name in lines[0]
    assert "Traceback" not in err
    assert SECRET not in err + out


def test_serve_never_echoes_the_database_password(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    variables = {"DATABASE_URL": "mysql://u:hunter2hunter2@h/db", "JWT_SECRET": SECRET}

    status, out, err = _run(environment, capsys, ["serve"], variables)

    assert status == 2
    assert "DATABASE_URL" in err
    assert "hunter2hunter2" not in err + out


@pytest.mark.parametrize("command", [["migrate"], ["migrate", "base", "--down"]])
def test_migrate_without_a_database_url_is_one_line(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    status, _, err = _run(environment, capsys, command, {"JWT_SECRET": SECRET})

    assert status == 2
    assert len(err.strip().splitlines()) == 1
    assert "DATABASE_URL" in err


def test_token_prints_a_verifiable_token(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    variables = {
        "JWT_SECRET": SECRET,
        "JWT_AUDIENCE": "taskapi",
        "JWT_ISSUER": "https://auth.example",
    }

    status, out, err = _run(
        environment, capsys, ["token", "--sub", "alice", "--ttl", "120"], variables
    )

    assert status == 0, err
    claims = jwt.decode(
        out.strip(), SECRET, algorithms=["HS256"], audience="taskapi", issuer="https://auth.example"
    )
    assert claims["sub"] == "alice"
    assert claims["exp"] - claims["iat"] == 120


def test_token_signs_with_the_first_accepted_hs_algorithm_and_the_user_id_claim(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    variables = {"JWT_SECRET": SECRET, "JWT_ALGORITHMS": "HS512", "JWT_USER_ID_CLAIM": "uid"}

    status, out, err = _run(environment, capsys, ["token", "--sub", "alice"], variables)

    assert status == 0, err
    assert jwt.get_unverified_header(out.strip())["alg"] == "HS512"
    assert jwt.decode(out.strip(), SECRET, algorithms=["HS512"])["uid"] == "alice"


def test_token_needs_a_secret(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = _run(environment, capsys, ["token", "--sub", "alice"], {})

    assert status == 2
    assert len(err.strip().splitlines()) == 1
    assert "JWT_SECRET" in err


def test_token_with_only_a_jwks_says_it_needs_the_shared_secret(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = _run(
        environment, capsys, ["token", "--sub", "alice"], {"JWT_JWKS_URL": JWKS_URL}
    )

    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "JWT_SECRET" in lines[0]
    assert "JWT_JWKS_URL" in lines[0]


@pytest.mark.parametrize(
    "origins",
    [
        "https://app.example.com",
        "http://localhost:5173,https://app.example.com:8443",
        "http://[::1]:3000",
        "http://127.0.0.1:8080",
        "https://xn--bcher-kva.example",
        "*",
    ],
)
def test_origins_as_browsers_send_them_are_taken(origins: str) -> None:
    assert ",".join(Settings(_env_file=None, cors_origins=origins).cors_origins) == origins


@pytest.mark.parametrize("sub", ["", " bob", "bob\n", "a/b", ".", "..", "x" * 256])
def test_token_refuses_a_user_id_the_api_would_refuse(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], sub: str
) -> None:
    environment.setenv("JWT_SECRET", SECRET)

    with pytest.raises(SystemExit) as exited:
        cli.main(["token", "--sub", sub])

    assert exited.value.code == 2
    assert "--sub" in capsys.readouterr().err


@pytest.mark.parametrize("ttl", ["0", "-5", "soon"])
def test_token_refuses_a_ttl_that_is_not_a_positive_number(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], ttl: str
) -> None:
    environment.setenv("JWT_SECRET", SECRET)

    with pytest.raises(SystemExit) as exited:
        cli.main(["token", "--sub", "alice", "--ttl", ttl])

    assert exited.value.code == 2
    assert "--ttl" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["serve", "dev"])
@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_a_port_outside_tcps_range_is_refused(
    capsys: pytest.CaptureFixture[str], command: str, port: str
) -> None:
    # 70000 would otherwise be taken modulo 65536: uvicorn would say 70000 and listen on 4464.
    with pytest.raises(SystemExit) as exited:
        cli.main([command, "--port", port])

    assert exited.value.code == 2
    assert "--port" in capsys.readouterr().err
