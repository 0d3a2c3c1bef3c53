"""An example FastAPI service downstream of auth-service: `/hello` needs a valid access token,
`/admin` the role `admin`. Run: AUTH_JWKS_URL=... AUTH_ISSUER=... AUTH_AUDIENCE=... uvicorn app:app
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

from auth_dependency import (
    AuthSettings,
    TokenVerifier,
    current_user,
    install_error_handler,
    require_role,
)


def create_app(verifier: TokenVerifier) -> FastAPI:
    app = FastAPI(title="downstream example")
    install_error_handler(app)
    user = current_user(verifier)
    admin = require_role(verifier, "admin")

    @app.get("/hello")
    def hello(claims: dict[str, Any] = Depends(user)) -> dict[str, Any]:
        return {"hello": claims["email"], "sub": claims["sub"], "roles": claims["roles"]}

    @app.get("/admin")
    def admin_only(claims: dict[str, Any] = Depends(admin)) -> dict[str, Any]:
        return {"admin": claims["sub"]}

    return app


def _app_from_env() -> FastAPI | None:
    try:
        return create_app(TokenVerifier(AuthSettings.from_env()))
    except KeyError:
        return None


app = _app_from_env()
