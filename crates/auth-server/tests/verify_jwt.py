"""Verifies an auth-service access token the way a Python downstream service would: with
PyJWT, against the published JWKS document, pinning the algorithm and checking iss/aud/exp.

usage: verify_jwt.py JWKS_JSON TOKEN ISSUER AUDIENCE  -> prints the claims as JSON
"""
import json
import sys

import jwt


def main() -> None:
    jwks, token, issuer, audience = sys.argv[1:5]
    keys = {k["kid"]: k for k in json.loads(jwks)["keys"]}
    header = jwt.get_unverified_header(token)
    if header.get("typ") != "at+jwt":
        sys.exit(f"unexpected typ {header.get('typ')!r}")
    key = jwt.PyJWK(keys[header["kid"]])
    claims = jwt.decode(
        token,
        key.key,
        algorithms=["EdDSA"],
        audience=audience,
        issuer=issuer,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )
    print(json.dumps(claims))


if __name__ == "__main__":
    main()
