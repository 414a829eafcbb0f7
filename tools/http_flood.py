#!/usr/bin/env python3
"""Hostile HTTP clients for the connection-limit test (standard library only).

Opens, spread over many loopback source addresses (127.0.0.2, 127.0.0.3, ...):
  --sse N        Server-Sent Event clients of GET /api/v1/jobs/JOB/events, reading what comes;
  --slowloris M  connections that send half a request head, then one header line every
                 --drip seconds, never finishing it.
Holds them --hold seconds, then closes everything, and prints one JSON object:
  sse_streaming (got 200 and event data), sse_refused (got 503), sse_other, slow_refused (503
  before anything else), slow_closed (closed by the server without a response: header
  timeout), slow_reset (reset by the server: a refusal whose 503 the reset overtook, the
  client having written more after the server closed), slow_open (still open at the end),
  connect_errors.

usage: http_flood.py --port P --job J [--sse N] [--slowloris M] [--sources K] [--hold S] [--drip S]
"""
import argparse
import json
import selectors
import socket
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--job", required=True)
    ap.add_argument("--sse", type=int, default=0)
    ap.add_argument("--slowloris", type=int, default=0)
    ap.add_argument("--sources", type=int, default=50)
    ap.add_argument("--hold", type=float, default=10)
    ap.add_argument("--drip", type=float, default=1)
    a = ap.parse_args()
    # Every connection is a descriptor here too: take the hard limit.
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    sel = selectors.DefaultSelector()
    conns = []  # dicts: kind, sock, data, state
    errors = 0
    total = a.sse + a.slowloris
    for i in range(total):
        kind = "sse" if i < a.sse else "slow"
        src = "127.0.0.%d" % (2 + i % a.sources)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((src, 0))
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", a.port))
        except OSError:
            errors += 1
            s.close()
            continue
        c = {"kind": kind, "sock": s, "data": b"", "state": "connecting", "sent": False}
        conns.append(c)
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)

    sse_request = ("GET /api/v1/jobs/%s/events?maxSeconds=600 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: text/event-stream\r\n\r\n"
                   % (a.job, a.port)).encode()
    slow_start = ("GET /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % a.port).encode()
    end = time.time() + a.hold
    next_drip = time.time() + a.drip
    while time.time() < end:
        for key, mask in sel.select(timeout=0.2):
            c = key.data
            s = c["sock"]
            if mask & selectors.EVENT_WRITE and not c["sent"]:
                try:
                    s.send(sse_request if c["kind"] == "sse" else slow_start)
                    c["sent"] = True
                    c["state"] = "open"
                except OSError:
                    c["state"] = "error"
                    sel.unregister(s)
                    continue
                sel.modify(s, selectors.EVENT_READ, c)
            if mask & selectors.EVENT_READ:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    c["state"] = "reset"
                    sel.unregister(s)
                    continue
                except OSError:
                    chunk = b""
                if chunk:
                    if len(c["data"]) < 4096:
                        c["data"] += chunk[:4096]
                else:
                    c["state"] = "closed"
                    sel.unregister(s)
        if time.time() >= next_drip:
            next_drip = time.time() + a.drip
            for c in conns:
                if c["kind"] == "slow" and c["state"] == "open" and not c["data"]:
                    try:
                        c["sock"].send(b"X-Drip: 1\r\n")
                    except OSError:
                        pass

    r = {"sse_streaming": 0, "sse_refused": 0, "sse_other": 0, "slow_refused": 0, "slow_closed": 0, "slow_reset": 0, "slow_open": 0,
         "connect_errors": errors + sum(1 for c in conns if c["state"] in ("connecting", "error"))}
    for c in conns:
        head = c["data"][:16]
        if c["kind"] == "sse":
            if head.startswith(b"HTTP/1.1 200") and b"event:" in c["data"]:
                r["sse_streaming"] += 1
            elif head.startswith(b"HTTP/1.1 503"):
                r["sse_refused"] += 1
            else:
                r["sse_other"] += 1
        else:
            if head.startswith(b"HTTP/1.1 503"):
                r["slow_refused"] += 1
            elif c["state"] == "closed" and not c["data"]:
                r["slow_closed"] += 1
            elif c["state"] == "reset":
                r["slow_reset"] += 1
            elif c["state"] == "open":
                r["slow_open"] += 1
        c["sock"].close()
    print(json.dumps(r))


if __name__ == "__main__":
    main()
