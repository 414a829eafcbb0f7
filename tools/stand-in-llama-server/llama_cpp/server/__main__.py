"""A stand-in for `python -m llama_cpp.server` (see ../../README.md)."""
import argparse
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--model_alias", default="stand-in")
args, _ = parser.parse_known_args()
# Like the real server, stop on SIGTERM even when the launcher handed down a blocked mask.
signal.pthread_sigmask(signal.SIG_SETMASK, set())
signal.signal(signal.SIGTERM, signal.SIG_DFL)
mode = os.environ.get("AGENTFLOW_STANDIN", "ok")
if mode == "exit3":
    print("stand-in: exiting with status 3 before listening", file=sys.stderr, flush=True)
    sys.exit(3)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def answer(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.answer(200, {"object": "list", "data": [{"id": args.model_alias, "object": "model"}]})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if mode == "sigill":
            print("stand-in: first chat completion, raising SIGILL", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGILL)
        elif mode == "http500":
            self.answer(500, {"error": {"message": "stand-in failure", "type": "internal_server_error"}})
        else:
            self.answer(200, {"id": "x", "object": "chat.completion", "model": args.model_alias,
                              "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"},
                                           "finish_reason": "length"}],
                              "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}})


print(f"stand-in llama_cpp.server on {args.host}:{args.port} ({mode})", file=sys.stderr, flush=True)
HTTPServer((args.host, args.port), Handler).serve_forever()
