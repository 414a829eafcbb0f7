#!/usr/bin/env python3
"""A scripted OpenAI chat-completions server for the LLM client's tests.

    python3 tools/fake_openai_server.py     # prints "PORT <n>" and serves on 127.0.0.1:<n>
    python3 tools/fake_openai_server.py --port N   # serves on N until killed (agentflow node's serve:)

It exits when its standard input closes, so a test process that dies takes it along.

Endpoint options (what hosted APIs, LiteLLM and vLLM --api-key do):
    env FAKE_OPENAI_API_KEY=K   every request needs "Authorization: Bearer K"; otherwise 401 with
                                OpenAI's body, which echoes the key presented ("Incorrect API key
                                provided: ...") as OpenAI's does
    --revoke-after N            after N chat completions the key is refused (401) everywhere
    --require-header NAME=VALUE every request needs this header; otherwise 400
    --tls CERT KEY              serve https with this certificate and key (PEM)
    --reply-file PATH           the text the `canned` model streams
    --log-requests PATH         appends each chat request (messages dropped) as a JSON line
    --metrics-file PATH         GET /metrics answers this file's text (read per request, so a test
                                can change it), as vLLM's Prometheus page does; else 404
    --slots-file PATH           GET /slots answers this file's JSON, as llama.cpp's server does; else 404
GET /v1/models answers (with the same checks) so readiness probes work.
The request's `model` picks the behaviour; state (try counters) is kept per model string:

    echo                 streams "echo: <last user message>", one word per chunk, honouring
                         max_tokens (finish_reason "length"), then a usage chunk and [DONE]
    status:<code>        answers <code> with an OpenAI error body
    flaky:<n>:<code>:<k> the first <n> requests answer <code> (429 adds Retry-After: 1), then echo
    drop:<n>:<k>         the first <n> requests are closed without a response, then echo
    stall                sends two chunks, then nothing (until the client goes away)
    queued               waits 2 s before answering at all (a request queued on a busy server), then echo
    slow                 one chunk every 0.1 s, 200 chunks
    malformed            one chunk of broken JSON
    nousage              echo without the usage chunk
    plain                a non-streaming JSON completion
    reply:<text>         streams <text> (one chunk per word) with usage
    inspect              streams "max_tokens=<n> include_usage=<b> stream=<b>" from the request
    inspect-body         streams the request as JSON (messages dropped) with the headers it had:
                         {"request": {...}, "headers": {"authorization": "Bearer ***", "x-...": ...}}
    canned               streams the --reply-file text in 8-character chunks
    cached:<n>           echo, its usage saying <n> prompt tokens came from the prefix cache (as vLLM's does)
    code                 a scripted agent: streams a ```python block holding the text found between
                         "<<<CODE" and "CODE>>>" in the request's messages (the escape tests put
                         the attack in the subtask's prompt), one line per chunk
"""
import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

counters = {}
lock = threading.Lock()
API_KEY = os.environ.get("FAKE_OPENAI_API_KEY")


def option(name, count=1):
    if name not in sys.argv:
        return None
    i = sys.argv.index(name)
    return sys.argv[i + 1:i + 1 + count] if count > 1 else sys.argv[i + 1]


REVOKE_AFTER = int(option("--revoke-after")) if option("--revoke-after") is not None else None
REQUIRED_HEADER = option("--require-header")
REPLY_FILE = option("--reply-file")
REQUEST_LOG = option("--log-requests")
METRICS_FILE = option("--metrics-file")
SLOTS_FILE = option("--slots-file")
completions = 0


def prompt_tokens(messages):
    return sum(len(m.get("content", "")) // 4 + 4 for m in messages) + 3


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def error(self, code, message, extra=None):
        body = json.dumps({"error": {"message": message, "type": "fake", "code": code}}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def start_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def event(self, obj):
        data = obj if isinstance(obj, str) else json.dumps(obj)
        self.wfile.write(f"data: {data}\n\n".encode())
        self.wfile.flush()

    def chunk(self, content=None, finish=None):
        return {"id": "c", "object": "chat.completion.chunk", "model": "fake",
                "choices": [{"index": 0, "delta": {} if content is None else {"content": content},
                             "finish_reason": finish}]}

    def stream_words(self, words, req, usage=True, delay=0.0, joiner=" ", cached=None):
        limit = req.get("max_tokens") or 1 << 30
        sent = words[:limit]
        self.start_stream()
        self.event({"id": "c", "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]})
        for i, w in enumerate(sent):
            self.event(self.chunk(w if i == 0 else joiner + w))
            if delay:
                time.sleep(delay)
        self.event(self.chunk(None, "length" if len(words) > limit else "stop"))
        if usage:
            counts = {"prompt_tokens": prompt_tokens(req["messages"]), "completion_tokens": len(sent),
                      "total_tokens": prompt_tokens(req["messages"]) + len(sent)}
            if cached is not None:
                counts["prompt_tokens_details"] = {"cached_tokens": cached}
            self.event({"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": counts})
        self.event("[DONE]")

    def admitted(self, chat=False):
        """Checks the key and the required header; answers the refusal itself when not admitted."""
        global completions
        if REQUIRED_HEADER:
            name, _, value = REQUIRED_HEADER.partition("=")
            if self.headers.get(name) != value:
                self.error(400, f"missing or wrong header {name}")
                return False
        if API_KEY is not None:
            presented = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            with lock:
                revoked = REVOKE_AFTER is not None and completions >= REVOKE_AFTER
                if chat and presented == API_KEY and not revoked:
                    completions += 1
            if presented != API_KEY or (chat and revoked):
                self.error(401, f"Incorrect API key provided: {presented}. You can find your API key at your provider.")
                return False
        return True

    def do_GET(self):
        served = {"/metrics": (METRICS_FILE, "text/plain; version=0.0.4"), "/slots": (SLOTS_FILE, "application/json")}
        if self.path in served and served[self.path][0]:
            if not self.admitted():
                return
            with open(served[self.path][0], "rb") as f:
                body = f.read()
            self.send_response(200)
            self.send_header("Content-Type", served[self.path][1])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path.rstrip("/") != "/v1/models":
            self.error(404, f"no route {self.path}")
            return
        if not self.admitted():
            return
        body = json.dumps({"object": "list", "data": [{"id": "fake", "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def stream_code(self, req):
        text = "\n".join(m.get("content", "") for m in req.get("messages", []))
        start, end = text.find("<<<CODE"), text.find("CODE>>>")
        body = text[start + len("<<<CODE"):end].strip("\n") if 0 <= start < end else "print('no code in the prompt')"
        lines = ("```python\n" + body + "\n```").split("\n")
        self.start_stream()
        self.event({"id": "c", "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]})
        for i, line in enumerate(lines):
            self.event(self.chunk(line if i == 0 else "\n" + line))
        self.event(self.chunk(None, "stop"))
        self.event({"id": "c", "object": "chat.completion.chunk", "choices": [],
                    "usage": {"prompt_tokens": prompt_tokens(req["messages"]), "completion_tokens": len(lines),
                              "total_tokens": prompt_tokens(req["messages"]) + len(lines)}})
        self.event("[DONE]")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        if not self.admitted(chat=True):
            return
        if REQUEST_LOG:
            try:
                shown = {k: v for k, v in json.loads(raw).items() if k != "messages"}
            except ValueError:
                shown = {"unreadable": True}
            with lock, open(REQUEST_LOG, "a") as f:
                f.write(json.dumps(shown, sort_keys=True) + "\n")
        try:
            req = json.loads(raw)
        except ValueError:
            self.error(400, "request body is not JSON")
            return
        if not self.path.endswith("/chat/completions"):
            self.error(404, f"no route {self.path}")
            return
        model = req.get("model", "echo")
        with lock:
            counters[model] = counters.get(model, 0) + 1
            n = counters[model]
        last = req["messages"][-1]["content"] if req.get("messages") else ""
        echo = ("echo: " + last).split()
        kind, _, rest = model.partition(":")

        if kind == "status":
            self.error(int(rest), f"scripted status {rest}")
        elif kind == "flaky":
            fails, code, _ = rest.split(":", 2)
            if n <= int(fails):
                self.error(int(code), "scripted failure", {"Retry-After": "1"} if code == "429" else None)
            else:
                self.stream_words(echo, req)
        elif kind == "drop":
            fails, _ = rest.split(":", 1)
            if n <= int(fails):
                self.close_connection = True
                self.connection.shutdown(2)
            else:
                self.stream_words(echo, req)
        elif kind == "stall":
            self.start_stream()
            self.event(self.chunk("Hello"))
            self.event(self.chunk(" there"))
            try:
                for _ in range(600):
                    time.sleep(0.1)
            except Exception:
                pass
        elif kind == "queued":
            time.sleep(2)
            self.stream_words(echo, req)
        elif kind == "slow":
            self.stream_words(["tok"] * 200, req, delay=0.1)
        elif kind == "malformed":
            self.start_stream()
            self.event(self.chunk("Hi"))
            self.event('{"choices": [ {"delta": ')
            self.event("[DONE]")
        elif kind == "nousage":
            self.stream_words(echo, req, usage=False)
        elif kind == "plain":
            body = json.dumps({"id": "c", "object": "chat.completion",
                               "choices": [{"index": 0, "message": {"role": "assistant", "content": "plain reply"},
                                            "finish_reason": "stop"}],
                               "usage": {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif kind == "inspect":
            opts = req.get("stream_options") or {}
            self.stream_words([f"max_tokens={req.get('max_tokens')}",
                               f"include_usage={opts.get('include_usage')}",
                               f"stream={req.get('stream')}"], req)
        elif kind == "code":
            self.stream_code(req)
        elif kind == "reply":
            self.stream_words(rest.split(), req)
        elif kind == "inspect-body":
            shown = {k: v for k, v in req.items() if k != "messages"}
            headers = {k.lower(): v for k, v in self.headers.items() if k.lower().startswith("x-")}
            if self.headers.get("Authorization"):
                headers["authorization"] = "Bearer ***"
            text = json.dumps({"request": shown, "headers": headers}, sort_keys=True)
            self.stream_words([text], req)
        elif kind == "cached":
            self.stream_words(echo, req, cached=int(rest))
        elif kind == "canned":
            with open(REPLY_FILE) as f:
                text = f.read()
            self.stream_words([text[i:i + 8] for i in range(0, len(text), 8)], req, joiner="")
        else:
            self.stream_words(echo, req)


def serve(handler):
    """--port N: serve on that port and run until killed (a model server that `agentflow node`
    supervises); without it, a free port (printed as "PORT n") and exit when stdin closes.
    --tls CERT KEY: HTTPS. Also what tools/standin_model.py serves with."""
    port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    tls = option("--tls", 2)
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls[0], tls[1])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"PORT {server.server_address[1]}", flush=True)

    def watch_stdin():
        sys.stdin.read()
        server.shutdown()

    if port == 0:
        threading.Thread(target=watch_stdin, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    serve(Handler)
