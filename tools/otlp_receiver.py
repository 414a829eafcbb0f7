#!/usr/bin/env python3
"""A minimal OpenTelemetry collector for traces over OTLP/HTTP (protobuf), for tests and for
looking at what a coordinator and its workers export without running a real collector.

    python tools/otlp_receiver.py [--port N] [--out spans.jsonl]

It prints "PORT <n>", takes POST /v1/traces (Content-Type application/x-protobuf), decodes each
body with the `opentelemetry-proto` package's own messages (ExportTraceServiceRequest), and
writes every span as one JSON line: trace/span/parent ids in hex, name, kind, times in
nanoseconds, attributes, events, status and the resource's attributes. A body that does not
decode is answered 400 and counted in "rejected" lines. Needs `pip install opentelemetry-proto`.
"""
import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status


def any_value(v):
    """An AnyValue as a plain Python value (arrays as lists)."""
    which = v.WhichOneof("value")
    if which == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if which is None:
        return None
    return getattr(v, which)


def attributes(kvs):
    return {kv.key: any_value(kv.value) for kv in kvs}


def spans_of(request):
    """Every span of an ExportTraceServiceRequest as a dict."""
    out = []
    for rs in request.resource_spans:
        resource = attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append({
                    "trace_id": s.trace_id.hex(),
                    "span_id": s.span_id.hex(),
                    "parent_span_id": s.parent_span_id.hex(),
                    "name": s.name,
                    "kind": Span.SpanKind.Name(s.kind),
                    "start": s.start_time_unix_nano,
                    "end": s.end_time_unix_nano,
                    "attributes": attributes(s.attributes),
                    "events": [{"name": e.name, "time": e.time_unix_nano, "attributes": attributes(e.attributes)} for e in s.events],
                    "status": {"code": Status.StatusCode.Name(s.status.code), "message": s.status.message},
                    "scope": ss.scope.name,
                    "resource": resource,
                })
    return out


class Receiver:
    """An OTLP/HTTP trace receiver on 127.0.0.1: spans are kept in memory (and appended to
    `out` when given), each request's content type checked and its body decoded."""

    def __init__(self, port=0, out=None):
        self.spans = []
        self.requests = 0
        self.rejected = []
        self.lock = threading.Lock()
        self.out = out
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path != "/v1/traces":
                    return self.answer(404, b"")
                if self.headers.get("Content-Type") != "application/x-protobuf":
                    receiver.reject(f"content type {self.headers.get('Content-Type')!r}")
                    return self.answer(415, b"")
                request = ExportTraceServiceRequest()
                try:
                    request.ParseFromString(body)
                except DecodeError as e:
                    receiver.reject(f"undecodable body: {e}")
                    return self.answer(400, b"")
                receiver.take(spans_of(request))
                self.answer(200, ExportTraceServiceResponse().SerializeToString())

            def answer(self, code, body):
                self.send_response(code)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()

    def reject(self, why):
        with self.lock:
            self.rejected.append(why)
        if self.out:
            with open(self.out, "a") as f:
                f.write(json.dumps({"rejected": why}) + "\n")

    def take(self, spans):
        with self.lock:
            self.requests += 1
            self.spans.extend(spans)
        if self.out:
            with open(self.out, "a") as f:
                for s in spans:
                    f.write(json.dumps(s) + "\n")

    def snapshot(self):
        with self.lock:
            return list(self.spans)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--out", help="append spans here as JSON lines (default: stdout)")
    a = p.parse_args()
    r = Receiver(a.port, a.out)
    if not a.out:
        r.take = lambda spans: [print(json.dumps(s), flush=True) for s in spans]
    print(f"PORT {r.port}", flush=True)
    try:
        r.server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
