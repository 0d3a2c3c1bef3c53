"""Hooks of CI's schemathesis run (.ci/schemathesis): bearer tokens, and the one refusal that
a schema cannot state.

Tokens. Each operation gets the token of its kind of caller: the admin's (created with the
CLI) where the document names a required permission (`x-required-permission`), else the plain
user's (signed up over HTTP). Tokens are fetched by logging in and kept per kind; a 401 to a
request that carried one (its session was ended by logout, logout-all or a session revocation
the run made) logs in again and replays the request once, so the operations that end sessions
need no exclusion and take nothing away from the operations tested after them.

Own accounts. The admin API is never pointed at the run's two accounts (their ids are read at
start): disabling, erasing or re-passwording them would lock the run out, and the answers to
those requests are tested in crates/auth-server/tests/api/admin.rs. Every other id is sent.

Confirmations. `POST /auth/password/change` and `DELETE /auth/me` get the user's real password
every other time (else they could only answer 401); a change moves the password the run logs in
with on, an erasure signs the user up again.

Bodies. `PATCH /auth/me` is not sent a new `email`: the run's user logs in again with its email
whenever a session it needs was ended, and an email changed by the run would lock it out (the
change itself is tested in crates/auth-server/tests/api/profile.rs). Its other fields are sent.

Refusals. Whether a role exists is data, not schema (like the 404 of an unknown id): a `422`
that names only `roles[...]` fields as roles that do not exist in the tenant is dropped. So is
whether a mailed link's token exists: the `400 token_invalid` / `token_expired` of the two
operations that take one (`POST /auth/password-reset/confirm`, `POST /auth/verify-email`) is
dropped (their tokens are tested in crates/auth-server/tests/api/reset.rs and verify.rs).
JSON Schema cannot say that a new password must not be (or contain) the account's
email, its local part or its username, which the service refuses with `422 weak_password`
(documented on the operation and in the schema's description). Exactly that failure is
dropped, and only when the request did break that rule; any other 422 to valid data fails.
"""

import os
import sys

import requests
import schemathesis

BASE = os.environ["ST_BASE"]
CREDENTIALS = {
    "user": (os.environ["ST_USER_EMAIL"], os.environ["ST_USER_PASSWORD"]),
    "admin": (os.environ["ST_ADMIN_EMAIL"], os.environ["ST_ADMIN_PASSWORD"]),
}


def _own_id(email: str, password: str) -> str:
    login = requests.post(
        f"{BASE}/auth/login", json={"email": email, "password": password}, timeout=30
    )
    login.raise_for_status()
    token = login.json()["access_token"]
    me = requests.get(f"{BASE}/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    me.raise_for_status()
    return me.json()["id"]


OWN_IDS = {_own_id(*credentials) for credentials in CREDENTIALS.values()}


@schemathesis.hook
def filter_path_parameters(context, path_parameters):
    """Never the run's own accounts (see the module's docstring)."""
    return not (isinstance(path_parameters, dict) and path_parameters.get("id") in OWN_IDS)


# The operations confirmed with the user's password, and the field that carries it.
_CONFIRMED = {("POST", "/auth/password/change"): "current_password", ("DELETE", "/auth/me"): "password"}
_TURNS: dict = {}

# An id no account has, for the run's own ids that stateful scenarios (links inferred from
# `GET /auth/me` and listings) put in a path anyway.
NOBODY = "00000000-0000-7000-8000-000000000000"


@schemathesis.hook
def before_call(context, case, **kwargs):
    """The same for cases built from earlier responses, which no filter sees; and the run's
    user keeps its email (see the module's docstring)."""
    if isinstance(case.path_parameters, dict) and case.path_parameters.get("id") in OWN_IDS:
        case.path_parameters["id"] = NOBODY
    own_profile = case.method.upper() == "PATCH" and case.path == "/auth/me"
    if own_profile and isinstance(case.body, dict):
        case.body.pop("email", None)
    # Every other password change and erasure gets the user's real password, so both outcomes
    # are tested; `after_call` follows what a success changed.
    field = _CONFIRMED.get((case.method.upper(), case.path))
    if field and isinstance(case.body, dict) and isinstance(case.body.get(field), str):
        _TURNS[field] = _TURNS.get(field, 0) + 1
        if _TURNS[field] % 2 == 0:
            case.body[field] = CREDENTIALS["user"][1]


@schemathesis.hook
def after_call(context, case, response):
    """A successful password change moves the user's password on; a successful erasure signs
    the user up again (same email and password, a new id to keep away from)."""
    method, path, body = case.method.upper(), case.path, case.body
    if response.status_code != 204 or not isinstance(body, dict):
        return
    email, password = CREDENTIALS["user"]
    if (method, path) == ("POST", "/auth/password/change"):
        CREDENTIALS["user"] = (email, body["new_password"])
    elif (method, path) == ("DELETE", "/auth/me"):
        again = requests.post(
            f"{BASE}/auth/signup", json={"email": email, "password": password}, timeout=30
        )
        if again.status_code != 201:
            raise RuntimeError(f"signing the run's user up again: {again.status_code} {again.text}")
        OWN_IDS.add(again.json()["id"])


def caller(operation) -> str:
    return "admin" if operation.definition.raw.get("x-required-permission") else "user"


@schemathesis.auth(cache_by_key=lambda case, ctx: caller(ctx.operation), retry_on=[401])
class PlatformAuth:
    def get(self, case, ctx):
        email, password = CREDENTIALS[caller(ctx.operation)]
        response = requests.post(
            f"{BASE}/auth/login", json={"email": email, "password": password}, timeout=30
        )
        if response.status_code != 200:
            # Said on stderr too: schemathesis reports only that the token fetch failed.
            message = f"the run's {email} cannot log in: {response.status_code} {response.text}"
            print(message, file=sys.stderr, flush=True)
            raise RuntimeError(message)
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


# The operations that take a mailed link's token, refused with 400 when it is not one of ours.
_TOKEN_OPERATIONS = {("POST", "/auth/password-reset/confirm"), ("POST", "/auth/verify-email")}


def _refuses_a_mailed_token(case, response) -> bool:
    if response.status_code != 400 or (case.method.upper(), case.path) not in _TOKEN_OPERATIONS:
        return False
    try:
        return response.json().get("code") in ("token_invalid", "token_expired")
    except ValueError:
        return False


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keep every failure but a `weak_password` refusal of a password that is the account's name,
    and the refusal of a mailed link's token that is not one of ours."""
    if response is not None and _refuses_a_mailed_token(case, response):
        return False
    if response is None or response.status_code != 422:
        return True
    try:
        problem = response.json()
    except ValueError:
        return True
    if problem.get("code") == "validation_failed":
        errors = problem.get("errors") or []
        unknown_roles = errors and all(
            str(e.get("field", "")).startswith("roles[")
            and str(e.get("message", "")).startswith("no role ")
            for e in errors
        )
        return not unknown_roles
    if problem.get("code") != "weak_password":
        return True
    return not _breaks_the_cross_field_password_rule(case.body)
