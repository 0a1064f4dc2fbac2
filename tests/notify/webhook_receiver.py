#!/usr/bin/env python3
"""A webhook endpoint for the tests that checks signatures with the
`standardwebhooks` package (not Casewire's code): each request is appended
to DIR/received.jsonl with whether it verified, and answered with the
status in DIR/status (default 204) — 400 when the signature or the
timestamp (±5 min) does not verify. The secrets to try are the lines of
DIR/secrets. Prints "ready" once listening.

    webhook_receiver.py PORT DIR
"""

import json
import pathlib
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

port, out = int(sys.argv[1]), pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)


def verify(body, headers):
    secrets = (out / "secrets").read_text().split() if (out / "secrets").exists() else []
    errors = []
    for secret in secrets:
        try:
            Webhook(secret).verify(body, headers)
            return True, None
        except Exception as e:  # the library raises its own types
            errors.append(str(e))
    return False, "; ".join(errors) or "no secret"


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        ok, error = verify(body, headers)
        status_file = out / "status"
        status = int(status_file.read_text()) if status_file.exists() else 204
        if not ok:
            status = 400
        record = {"id": headers.get("webhook-id"), "verified": ok, "error": error,
                  "signature": headers.get("webhook-signature"), "status": status,
                  "body": json.loads(body or b"null")}
        with open(out / "received.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
print("ready", flush=True)
server.serve_forever()
