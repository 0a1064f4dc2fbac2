#!/usr/bin/env python3
"""An SMTP server for the tests (aiosmtpd): every message it receives is
written to DIR as <n>.json ({"from", "to", "data", "text", "html"}: the
raw message, and its plain-text and HTML parts decoded by Python's own
`email` parser), so a test counts and reads what was sent. Recipients
`rejected@...` are refused (550), as a server refuses an unknown mailbox. Prints "ready" once listening; runs until killed.

    smtp_sink.py PORT DIR
"""

import asyncio
import email
import email.policy
import itertools
import json
import pathlib
import sys

from aiosmtpd.controller import Controller

port, out = int(sys.argv[1]), pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
counter = itertools.count(1)


class Sink:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        # A mailbox that does not exist, for the tests of undeliverable mail.
        if address.startswith("rejected@"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        n = next(counter)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = {"text/plain": None, "text/html": None}
        for part in message.walk():
            if part.get_content_type() in parts and parts[part.get_content_type()] is None:
                parts[part.get_content_type()] = part.get_content()
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", errors="replace"),
            "text": parts["text/plain"],
            "html": parts["text/html"],
        }
        tmp = out / f".{n}.tmp"
        tmp.write_text(json.dumps(record))
        tmp.rename(out / f"{n}.json")
        return "250 OK"


controller = Controller(Sink(), hostname="127.0.0.1", port=port)
controller.start()
print("ready", flush=True)
try:
    asyncio.get_event_loop().run_forever()
finally:
    controller.stop()
