"""Hooks of CI's schemathesis run (.ci/schemathesis): bearer tokens, and the one refusal that
a schema cannot state.

Tokens. Each operation gets the token of its kind of caller: the admin's (created with the
CLI) where the document names a required permission (`x-required-permission`), else the plain
user's (signed up over HTTP). Tokens are fetched by logging in and kept per kind; a 401 to a
request that carried one (its session was ended by logout, logout-all or a session revocation
the run made) logs in again and replays the request once, so the operations that end sessions
need no exclusion and take nothing away from the operations tested after them.

Refusals. JSON Schema cannot say that a new password must not be (or contain) the account's
email, its local part or its username, which the service refuses with `422 weak_password`
(documented on the operation and in the schema's description). Exactly that failure is
dropped, and only when the request did break that rule; any other 422 to valid data fails.
"""

import os

import requests
import schemathesis

BASE = os.environ["ST_BASE"]
CREDENTIALS = {
    "user": (os.environ["ST_USER_EMAIL"], os.environ["ST_USER_PASSWORD"]),
    "admin": (os.environ["ST_ADMIN_EMAIL"], os.environ["ST_ADMIN_PASSWORD"]),
}


def caller(operation) -> str:
    return "admin" if operation.definition.raw.get("x-required-permission") else "user"


@schemathesis.auth(cache_by_key=lambda case, ctx: caller(ctx.operation), retry_on=[401])
class PlatformAuth:
    def get(self, case, ctx):
        email, password = CREDENTIALS[caller(ctx.operation)]
        response = requests.post(
            f"{BASE}/auth/login", json={"email": email, "password": password}, timeout=30
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


def _breaks_the_cross_field_password_rule(body) -> bool:
    if not isinstance(body, dict) or not isinstance(body.get("password"), str):
        return False
    password = body["password"].lower()
    names = []
    if isinstance(body.get("email"), str):
        email = body["email"].lower()
        names += [email, email.rpartition("@")[0]]
    if isinstance(body.get("username"), str):
        names.append(body["username"].lower())
    return any(name and name in password for name in names)


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keep every failure but a `weak_password` refusal of a password that is the account's name."""
    if response is None or response.status_code != 422:
        return True
    try:
        problem = response.json()
    except ValueError:
        return True
    if problem.get("code") != "weak_password":
        return True
    return not _breaks_the_cross_field_password_rule(case.body)
