"""An SMTP server for the tests (aiosmtpd), and a parser of the mails it keeps.

    smtp_sink.py serve --dir DIR [--tls starttls|implicit --cert PEM --key PEM]
                       [--require-starttls] [--auth USER:PASSWORD]
                       [--reject ADDRESS]... [--tempfail ADDRESS]...
    smtp_sink.py parse FILE.eml

`serve` listens on 127.0.0.1 on a free port, prints `PORT <n>` once it accepts connections,
and writes each mail it accepts to DIR as `NNNNN.json` (written whole, then renamed): the
envelope, whether TLS and AUTH were used, the raw message and its parsed headers and parts.
RCPT TO an address given with --reject is refused with 550, with --tempfail with 451. With
--auth, mail is accepted only after AUTH with that user and password. It stops when its
standard input closes (the test that started it ended) or on SIGTERM.

`parse` prints the same parsed view of a message file as JSON.
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def parse_message(raw: bytes) -> dict:
    """Headers, text part and HTML part of a message, as the standard library reads them."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)

    def body(kind):
        part = msg.get_body(preferencelist=(kind,))
        return part.get_content() if part is not None else None

    return {
        "subject": str(msg.get("Subject", "")),
        "from": str(msg.get("From", "")),
        "to": str(msg.get("To", "")),
        "message_id": str(msg.get("Message-ID", "")),
        "date": str(msg.get("Date", "")),
        "content_type": msg.get_content_type(),
        "text": body("plain"),
        "html": body("html"),
        "raw": raw.decode("utf-8", errors="replace"),
    }


class Sink:
    def __init__(self, directory, reject, tempfail):
        self.directory = directory
        self.reject = {a.lower() for a in reject}
        self.tempfail = {a.lower() for a in tempfail}
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            return f"550 5.1.1 <{address}>: unknown recipient"
        if address.lower() in self.tempfail:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "authenticated": bool(session.authenticated),
        }
        record.update(parse_message(envelope.original_content or envelope.content))
        path = os.path.join(self.directory, f"{self.count:05}.json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.replace(path + ".tmp", path)
        return "250 Message accepted for delivery"


def authenticator_for(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False)

    return authenticate


async def serve(args):
    context = None
    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
    options = {
        "hostname": "sink.test",
        "tls_context": context if args.tls == "starttls" else None,
        "require_starttls": args.require_starttls,
        "auth_require_tls": False,
        "decode_data": False,
    }
    if args.auth:
        user, _, password = args.auth.partition(":")
        options.update(authenticator=authenticator_for(user, password), auth_required=True)
    handler = Sink(args.dir, args.reject, args.tempfail)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, **options),
        host="127.0.0.1",
        port=0,
        ssl=context if args.tls == "implicit" else None,
    )
    stop = loop.create_future()
    loop.add_reader(sys.stdin.fileno(), lambda: stop.done() or _stdin_closed(stop))
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    await stop
    server.close()


def _stdin_closed(stop):
    if not sys.stdin.buffer.read1(4096):
        stop.set_result(None)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--dir", required=True)
    s.add_argument("--tls", choices=["starttls", "implicit"])
    s.add_argument("--cert")
    s.add_argument("--key")
    s.add_argument("--require-starttls", action="store_true")
    s.add_argument("--auth")
    s.add_argument("--reject", action="append", default=[])
    s.add_argument("--tempfail", action="append", default=[])
    p = sub.add_parser("parse")
    p.add_argument("file")
    args = parser.parse_args()
    if args.command == "parse":
        with open(args.file, "rb") as f:
            json.dump(parse_message(f.read()), sys.stdout)
    else:
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
