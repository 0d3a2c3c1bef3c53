"""Checks the FastAPI example against a running auth-service (started by .ci/python-downstream):
a valid token passes; expired, tampered, wrong-audience, wrong-issuer, foreign-key and
algorithm-confused tokens are refused; an unknown kid waits for the cooldown; a rotated key is
picked up. Prints `N passed, M failed` and exits non-zero on any failure.

Environment: TEST_AUTH_URL, AUTH_ISSUER, AUTH_AUDIENCE, TEST_AUTH_DB (the service's SQLite file,
for its signing key), TEST_AUTH_BINARY and DATABASE_URL (for `auth-service keys rotate`).
"""

from __future__ import annotations

import base64
import os
import sqlite3
import subprocess
import sys
import time
import traceback
import uuid
import warnings
from dataclasses import replace

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
# Starlette's TestClient still runs on httpx, which it now calls deprecated.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
from fastapi.testclient import TestClient  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from app import create_app  # noqa: E402
from auth_dependency import AuthSettings, TokenVerifier  # noqa: E402

BASE = os.environ["TEST_AUTH_URL"]
SETTINGS = AuthSettings(
    jwks_url=f"{BASE}/.well-known/jwks.json",
    issuer=os.environ["AUTH_ISSUER"],
    audience=os.environ["AUTH_AUDIENCE"],
)
PASSWORD = "a downstream password of some length"
service = httpx.Client(base_url=BASE, timeout=30)


def login(email: str) -> str:
    r = service.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def signup_and_login(email: str) -> str:
    r = service.post("/auth/signup", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    return login(email)


def counted(settings: AuthSettings) -> tuple[TokenVerifier, list[int]]:
    """A verifier whose JWKS fetches are counted."""
    verifier = TokenVerifier(settings)
    fetches = [0]
    fetch = verifier.jwks.fetch_data

    def counting():
        fetches[0] += 1
        return fetch()

    verifier.jwks.fetch_data = counting
    return verifier, fetches


def active_key() -> tuple[str, Ed25519PrivateKey]:
    """The service's active signing key, read from its database (stored unsealed here)."""
    with sqlite3.connect(os.environ["TEST_AUTH_DB"]) as db:
        kid, private = db.execute(
            "SELECT kid, private_key FROM signing_keys WHERE state = 'active'"
        ).fetchone()
    assert private.startswith("plain:"), "the test service runs without AUTH_MASTER_KEY"
    seed = base64.urlsafe_b64decode(private[len("plain:"):] + "==")
    return kid, Ed25519PrivateKey.from_private_bytes(seed)


def resign(token: str, key=None, kid=None, alg="EdDSA", **changes) -> str:
    """The token's claims with `changes`, signed with the service's key unless told."""
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    if key is None:
        kid, key = active_key()
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, "typ": "at+jwt"})


def get(client: TestClient, path: str, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.get(path, headers=headers)


def refused(client: TestClient, token: str | None, code: str, path: str = "/hello"):
    r = get(client, path, token)
    want = 403 if code == "forbidden" else 401
    assert r.status_code == want, f"{r.status_code} {r.text}"
    assert r.headers["content-type"] == "application/problem+json", r.headers
    assert r.json()["code"] == code, r.text
    if want == 401:
        assert r.headers["www-authenticate"].startswith("Bearer"), r.headers


TOKEN = signup_and_login(f"py-{uuid.uuid4().hex[:8]}@example.com")
APP = TestClient(create_app(TokenVerifier(SETTINGS)))


def test_a_valid_token_is_admitted():
    r = get(APP, "/hello", TOKEN)
    assert r.status_code == 200, r.text
    assert r.json()["sub"] == jwt.decode(TOKEN, options={"verify_signature": False})["sub"]


def test_no_token_and_a_missing_role_are_refused():
    refused(APP, None, "token_invalid")
    refused(APP, "garbage", "token_invalid")
    refused(APP, TOKEN, "forbidden", path="/admin")


def test_an_expired_token_signed_by_the_service_key_is_refused():
    now = int(time.time())
    live = resign(TOKEN, exp=now + 600, iat=now)
    assert get(APP, "/hello", live).status_code == 200, "the re-signed token is otherwise valid"
    refused(APP, resign(TOKEN, exp=now - 3600, iat=now - 4500), "token_expired")


def test_tampered_tokens_are_refused():
    header, payload, signature = TOKEN.split(".")
    claims = jwt.decode(TOKEN, options={"verify_signature": False})
    claims["roles"] = ["admin"]
    forged = jwt.utils.base64url_encode(jwt.api_jws.json.dumps(claims).encode()).decode()
    refused(APP, f"{header}.{forged}.{signature}", "token_invalid")
    refused(APP, f"{header}.{payload}.{signature[:-4]}AAAA", "token_invalid")


def test_wrong_audience_and_issuer_are_refused():
    refused(APP, resign(TOKEN, aud="billing"), "token_invalid")
    refused(APP, resign(TOKEN, aud=None), "token_invalid")
    refused(APP, resign(TOKEN, iss="https://evil.test"), "token_invalid")
    other = TestClient(create_app(TokenVerifier(replace(SETTINGS, audience="billing"))))
    refused(other, TOKEN, "token_invalid")


def test_foreign_keys_and_algorithm_confusion_are_refused():
    kid, _ = active_key()
    refused(APP, resign(TOKEN, key=Ed25519PrivateKey.generate(), kid=kid), "token_invalid")
    none = jwt.encode(jwt.decode(TOKEN, options={"verify_signature": False}), None, algorithm="none")
    refused(APP, none, "token_invalid")
    jwk = service.get("/.well-known/jwks.json").json()["keys"][0]
    public = base64.urlsafe_b64decode(jwk["x"] + "==")
    header, payload, _ = TOKEN.split(".")
    swapped_header = jwt.utils.base64url_encode(
        f'{{"alg":"HS256","typ":"at+jwt","kid":"{kid}"}}'.encode()
    ).decode()
    import hmac, hashlib  # noqa: E401

    mac = hmac.new(public, f"{swapped_header}.{payload}".encode(), hashlib.sha256).digest()
    swapped = f"{swapped_header}.{payload}.{jwt.utils.base64url_encode(mac).decode()}"
    refused(APP, swapped, "token_invalid")
    refused(APP, "x" * 10_000, "token_invalid")


def test_unknown_kids_refetch_at_most_once_per_cooldown():
    verifier, fetches = counted(SETTINGS)
    client = TestClient(create_app(verifier))
    assert get(client, "/hello", TOKEN).status_code == 200
    assert fetches[0] == 1
    for n in range(3):
        refused(client, resign(TOKEN, key=Ed25519PrivateKey.generate(), kid=f"k-{n}"), "token_invalid")
    assert fetches[0] == 1, f"{fetches[0]} fetches: the cooldown was not honoured"


def test_a_rotated_key_is_picked_up():
    verifier, fetches = counted(replace(SETTINGS, refetch_cooldown=1))
    client = TestClient(create_app(verifier))
    assert get(client, "/hello", TOKEN).status_code == 200
    old_kid = jwt.get_unverified_header(TOKEN)["kid"]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "AUTH_KEY_PROPAGATION_SECONDS": "0",
    }
    subprocess.run(
        [os.environ["TEST_AUTH_BINARY"], "keys", "rotate"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    email = jwt.decode(TOKEN, options={"verify_signature": False})["email"]
    deadline, new = time.monotonic() + 30, TOKEN
    while jwt.get_unverified_header(new)["kid"] == old_kid:
        assert time.monotonic() < deadline, "the service did not sign with the new key in 30 s"
        time.sleep(0.5)
        new = login(email)
    time.sleep(1.1)  # past the verifier's cooldown since its first fetch
    r = get(client, "/hello", new)
    assert r.status_code == 200, r.text
    assert fetches[0] == 2, f"{fetches[0]} fetches"
    assert get(client, "/hello", TOKEN).status_code == 200, "the old key is still published"
    assert fetches[0] == 2


def main() -> int:
    tests = [(name, f) for name, f in globals().items() if name.startswith("test_")]
    failed = 0
    for name, test in tests:
        try:
            test()
            print(f"ok      {name}")
        except Exception:  # noqa: BLE001 - every failure is reported, then counted
            failed += 1
            print(f"FAILED  {name}")
            traceback.print_exc()
    print(f"{len(tests) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
