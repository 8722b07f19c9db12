#!/usr/bin/env python3
"""Loopback SMTP sink for the integration tests (aiosmtpd, from ./.venv).

    smtp-sink.py PORT DIR

Listens on 127.0.0.1:PORT, prints "ready" once it accepts connections, and writes every
message it receives to DIR/NNNN.json as decoded JSON: envelope sender and recipients, From,
To, Subject (RFC 2047 decoded), content type, charset and the decoded plain-text body. It
stops when its stdin closes, so it never outlives the test process that started it.
"""
import email
import email.policy
import itertools
import json
import os
import sys

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, outdir):
        self.outdir = outdir
        self.counter = itertools.count()

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "from": str(msg["From"]),
            "to": [str(a) for a in msg.get_all("To", [])],
            "subject": str(msg["Subject"]),
            "content_type": msg.get_content_type(),
            "charset": msg.get_content_charset(),
            "transfer_encoding": str(msg.get("Content-Transfer-Encoding", "")),
            "body": body.get_content() if body is not None else None,
        }
        path = os.path.join(self.outdir, "%04d.json" % next(self.counter))
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False)
        os.rename(path + ".tmp", path)
        return "250 Message accepted for delivery"


def main():
    port, outdir = int(sys.argv[1]), sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    controller = Controller(Sink(outdir), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
