#!/usr/bin/python3
"""TCP listeners on loopback that accept and never answer, for t/015_alert_delivery.pl.

Usage: listeners.py LOG PORT...

Each connection accepted is appended to LOG as "PORT\\n" and then held open, silent,
until the peer gives up.  So one listener shows that nothing ever connected to a
port (LOG has no line for it) and another plays a receiver that never answers.
Prints "ready" once every port listens.
"""
import socket
import sys
import threading

log_path, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
lock = threading.Lock()
held = []


def serve(listener, port):
    while True:
        conn, _ = listener.accept()
        with lock, open(log_path, "a", encoding="utf-8") as f:
            f.write(f"{port}\n")
            held.append(conn)       # kept open and unread: the peer waits


listeners = []
for port in ports:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    listeners.append(s)
for s, port in zip(listeners, ports):
    threading.Thread(target=serve, args=(s, port), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
