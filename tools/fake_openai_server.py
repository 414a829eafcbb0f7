#!/usr/bin/env python3
"""A scripted OpenAI chat-completions server for the LLM client's tests.

    python3 tools/fake_openai_server.py     # prints "PORT <n>" and serves on 127.0.0.1:<n>
    python3 tools/fake_openai_server.py --port N   # serves on N until killed (agentflow node's serve:)

It exits when its standard input closes, so a test process that dies takes it along.
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
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

counters = {}
lock = threading.Lock()


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

    def stream_words(self, words, req, usage=True, delay=0.0):
        limit = req.get("max_tokens") or 1 << 30
        sent = words[:limit]
        self.start_stream()
        self.event({"id": "c", "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]})
        for i, w in enumerate(sent):
            self.event(self.chunk(w if i == 0 else " " + w))
            if delay:
                time.sleep(delay)
        self.event(self.chunk(None, "length" if len(words) > limit else "stop"))
        if usage:
            self.event({"id": "c", "object": "chat.completion.chunk", "choices": [],
                        "usage": {"prompt_tokens": prompt_tokens(req["messages"]),
                                  "completion_tokens": len(sent),
                                  "total_tokens": prompt_tokens(req["messages"]) + len(sent)}})
        self.event("[DONE]")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
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
        elif kind == "reply":
            self.stream_words(rest.split(), req)
        else:
            self.stream_words(echo, req)


def main():
    # --port N: serve on that port and run until killed (a model server that `agentflow node`
    # supervises); without it, a free port and exit when stdin closes.
    port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)

    def watch_stdin():
        sys.stdin.read()
        server.shutdown()

    if port == 0:
        threading.Thread(target=watch_stdin, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
