"""Verifies auth-service access tokens locally in a FastAPI service, with PyJWT's PyJWKClient.

The algorithm is pinned (EdDSA), `iss`, `aud` (unless the service runs with
`AUTH_AUDIENCE=none`), `exp`, `nbf` and `iat` are checked, and `typ` must be `at+jwt`.
Refused tokens are answered 401 (403 for a missing role) as problem+json, with the codes
auth-service itself uses. See docs/CLIENT.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

import jwt
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

ACCESS_TOKEN_TYPES = {"at+jwt", "application/at+jwt"}
MAX_TOKEN_BYTES = 8 * 1024


@dataclass(frozen=True)
class AuthSettings:
    jwks_url: str
    issuer: str
    # None: no audience expected (the service runs with AUTH_AUDIENCE=none).
    audience: str | None
    algorithms: tuple[str, ...] = ("EdDSA",)
    leeway: float = 30
    # The service sends `Cache-Control: public, max-age=300` with its JWKS.
    jwks_lifespan: float = 300
    # An unknown `kid` refetches the JWKS at most once per this many seconds.
    refetch_cooldown: float = 30
    fetch_timeout: float = 5

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "AuthSettings":
        env = os.environ if env is None else env
        audience = env["AUTH_AUDIENCE"].strip()
        return cls(
            jwks_url=env["AUTH_JWKS_URL"],
            issuer=env["AUTH_ISSUER"],
            audience=None if audience.lower() in ("", "none") else audience,
        )


class AuthError(Exception):
    """A refused request: its status and the stable code of the problem body."""

    def __init__(self, status: int, code: str, title: str):
        super().__init__(title)
        self.status, self.code, self.title = status, code, title


@dataclass
class TokenVerifier:
    settings: AuthSettings
    jwks: jwt.PyJWKClient = field(init=False)

    def __post_init__(self) -> None:
        # The JWK Set is cached whole for its lifespan; no per-kid cache without expiry
        # (`cache_keys`), so a key the service removes stops verifying.
        self.jwks = jwt.PyJWKClient(
            self.settings.jwks_url,
            lifespan=self.settings.jwks_lifespan,
            cooldown_duration=self.settings.refetch_cooldown,
            timeout=self.settings.fetch_timeout,
        )

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid access token; raises AuthError otherwise."""
        if len(token) > MAX_TOKEN_BYTES:
            raise AuthError(401, "token_invalid", "invalid token")
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in self.settings.algorithms:
                raise AuthError(401, "token_invalid", "invalid token")
            if str(header.get("typ", "")).lower() not in ACCESS_TOKEN_TYPES:
                raise AuthError(401, "token_invalid", "not an access token")
            key = self.jwks.get_signing_key(header.get("kid"))
            required = ["exp", "iat", "iss", "sub"]
            if self.settings.audience is not None:
                required.append("aud")
            claims = jwt.decode(
                token,
                key.key,
                algorithms=list(self.settings.algorithms),
                issuer=self.settings.issuer,
                audience=self.settings.audience,
                leeway=self.settings.leeway,
                options={"require": required, "verify_aud": self.settings.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError(401, "token_expired", "token expired") from None
        except jwt.PyJWKClientConnectionError:
            raise AuthError(503, "unavailable", "signing keys unavailable") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise AuthError(401, "token_invalid", "invalid token") from None
        if self.settings.audience is None and "aud" in claims:
            # A token naming an audience is meant for someone else (RFC 7519 4.1.3).
            raise AuthError(401, "token_invalid", "invalid token")
        return claims


_bearer = HTTPBearer(auto_error=False)


def current_user(verifier: TokenVerifier) -> Callable[..., dict[str, Any]]:
    """A dependency giving the verified claims of the request's bearer token."""

    def dependency(
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    ) -> dict[str, Any]:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise AuthError(401, "token_invalid", "no bearer token")
        return verifier.verify(credentials.credentials)

    return dependency


def require_role(verifier: TokenVerifier, role: str) -> Callable[..., dict[str, Any]]:
    """A dependency admitting only tokens whose `roles` hold `role` (403 otherwise)."""
    user = current_user(verifier)

    def dependency(claims: dict[str, Any] = Depends(user)) -> dict[str, Any]:
        if role not in claims.get("roles", []):
            raise AuthError(403, "forbidden", "forbidden")
        return claims

    return dependency


def install_error_handler(app: FastAPI) -> None:
    """Answers AuthError as problem+json, with `WWW-Authenticate: Bearer` on 401."""

    async def handler(_request: Request, error: AuthError) -> JSONResponse:
        headers = {}
        if error.status == 401:
            headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        body = {
            "type": f"urn:auth-service:error:{error.code}",
            "title": error.title,
            "status": error.status,
            "code": error.code,
        }
        return JSONResponse(
            body, status_code=error.status, headers=headers, media_type="application/problem+json"
        )

    app.add_exception_handler(AuthError, handler)
