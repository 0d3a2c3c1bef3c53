"""Decodes an HS256 access token exactly as the old services' downstream code does, with no
change on their side: python-jose (the FastAPI token factory), PyJWT (the Flask service) and
Django REST framework SimpleJWT's `JWTStatelessUserAuthentication` (the Django service),
configured with `SIGNING_KEY` and `ALGORITHM` only, plus `AUDIENCE` when one is given.

usage: downstream_decode.py SECRET TOKEN AUDIENCE
       AUDIENCE `-`: decode without an audience, as those services do today.
prints {"python-jose": ..., "pyjwt": ..., "simplejwt": ...}: each the claims (SimpleJWT: the
user id and token type it authenticated) or {"refused": "<why>"}.
"""
import json
import sys


def python_jose(secret, token, audience):
    from jose import jwt

    if audience is None:
        return jwt.decode(token, secret, algorithms=["HS256"])
    return jwt.decode(token, secret, algorithms=["HS256"], audience=audience)


def pyjwt(secret, token, audience):
    import jwt

    if audience is None:
        return jwt.decode(token, secret, algorithms=["HS256"])
    return jwt.decode(token, secret, algorithms=["HS256"], audience=audience)


def simplejwt(secret, token, audience):
    import django
    from django.conf import settings

    simple_jwt = {"SIGNING_KEY": secret, "ALGORITHM": "HS256"}
    if audience is not None:
        simple_jwt["AUDIENCE"] = audience
    settings.configure(
        SECRET_KEY="not-the-signing-key-" + "x" * 40,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "rest_framework",
        ],
        SIMPLE_JWT=simple_jwt,
    )
    django.setup()
    from django.test import RequestFactory
    from rest_framework.request import Request
    from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication

    request = Request(RequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {token}"))
    found = JWTStatelessUserAuthentication().authenticate(request)
    if found is None:
        raise ValueError("no credentials found")
    user, validated = found
    return {"user_id": user.id, "token_type": validated["token_type"]}


def main() -> None:
    secret, token, audience = sys.argv[1:4]
    audience = None if audience == "-" else audience
    out = {}
    for name, decode in [("python-jose", python_jose), ("pyjwt", pyjwt), ("simplejwt", simplejwt)]:
        try:
            out[name] = decode(secret, token, audience)
        except Exception as e:  # every refusal, whichever library's exception it is
            out[name] = {"refused": f"{type(e).__name__}: {e}"}
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
