#!/usr/bin/python3
"""A real SMTP server (aiosmtpd) and an HTTP webhook receiver on loopback, for
t/009_alerts.pl and t/015_alert_delivery.pl.

Usage: receivers.py SMTP_PORT HTTP_PORT LOG FAIL_FILE [REDIRECT_URL]

Every mail and every POST received is appended to LOG as one JSON object per line:
{"via": "smtp", "to": [...], "subject": <decoded>, "headers": [names, in order],
 "raw_subject": <as sent>, "body": ...} or
{"via": "http", "path": ..., "body": <the parsed JSON body>}.
While FAIL_FILE exists the webhook answers 503 and logs nothing, so a test can make
deliveries fail and watch them retried.  A POST to /redirect is answered 307 to
REDIRECT_URL (and logged with "redirected": true).  Prints "ready" once both listen.
"""
import email
import email.policy
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

smtp_port, http_port, log_path, fail_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
redirect_url = sys.argv[5] if len(sys.argv) > 5 else None
lock = threading.Lock()


def record(entry):
    with lock, open(log_path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
        f.flush()


class Mail:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        raw = email.message_from_bytes(envelope.content, policy=email.policy.compat32)
        record({"via": "smtp", "from": envelope.mail_from, "to": envelope.rcpt_tos,
                "subject": str(msg["subject"]), "headers": list(msg.keys()),
                "raw_subject": raw["subject"], "body": msg.get_content()})
        return "250 OK"


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/redirect" and redirect_url:
            record({"via": "http", "path": self.path, "redirected": True, "body": json.loads(body)})
            self.send_response(307)
            self.send_header("Location", redirect_url)
            self.end_headers()
            return
        if os.path.exists(fail_path):
            self.send_response(503)
            self.end_headers()
            return
        record({"via": "http", "path": self.path, "type": self.headers.get("Content-Type"),
                "body": json.loads(body)})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


controller = Controller(Mail(), hostname="127.0.0.1", port=smtp_port)
controller.start()
http = ThreadingHTTPServer(("127.0.0.1", http_port), Hook)
print("ready", flush=True)
try:
    http.serve_forever()
finally:
    controller.stop()
