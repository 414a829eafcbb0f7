#!/usr/bin/env python3
"""A scripted stand-in for a model: an OpenAI-compatible chat server that answers agent work
with the right fenced blocks (DESIGN.md §7), deterministically, so that the example workflows
run end to end through real coordinator and worker processes in `make test`.

    python3 tools/standin_model.py            # prints "PORT <n>", serves 127.0.0.1:<n>, exits when stdin closes
    python3 tools/standin_model.py --port N   # serves on N until killed

It plays an agent that acts: it looks before it answers (runs a command, reads the output it
gets back in the next turn) and answers from what it saw, never from the task's hidden truth.
The role comes from the system message; the playbook from the task's text:

    find the bug in calc/stats.py   runs the tests and cats the module, then fixes the line it saw
    Read the document inputs/notes/F prints the document, then gives the record it read as JSON
                                    (with response_format: the bare JSON record from the task's copy)
    Write a short report            writes the report from the records shown in the task
    Write a Python function f(a, b) that returns EXPR.   a code module
    judge (system message)          scores a result that names populations 0.9, others 0.3

and markers (in the task): STANDIN:file:PATH=TEXT (writes PATH), STANDIN:answer=TEXT (answers),
STANDIN:schema-violation (a record of the wrong
type, every turn), STANDIN:escape (files outside the workspace and in inputs/, then an answer
quoting what it was told), STANDIN:huge-output (a 9 MB file every turn), STANDIN:flood (40 file
blocks), STANDIN:garbage in a judge's rubric (no verdict).
"""
import json
import os
import re
import sys
from http.server import BaseHTTPRequestHandler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_openai_server import serve  # noqa: E402  (one way to start and stop a scripted server)


def prompt_tokens(messages):
    return sum(len(m.get("content") or "") // 4 + 4 for m in messages) + 3


def role_of(messages):
    # The role's instructions open the first message: a system message, or, for models whose
    # chat template has no system role (Gemma), the start of the first user message.
    system = messages[0].get("content", "") if messages else ""
    if system.startswith("You are a strict judge"):
        return "judge"
    if system.startswith("You fix"):
        return "corrector"
    if system.startswith("You summarize"):
        return "summarizer"
    return "agent"


def task_and_turns(messages):
    """The task message, the agent's replies since, and the last observation (or "")."""
    first_assistant = next((i for i, m in enumerate(messages) if m["role"] == "assistant"), None)
    start = first_assistant + 1 if first_assistant is not None else 0
    task_index = next((i for i in range(start, len(messages)) if messages[i]["role"] == "user"), None)
    if task_index is None:
        task_index = max(i for i, m in enumerate(messages) if m["role"] == "user")
    task = messages[task_index]["content"]
    turns = sum(1 for m in messages[task_index + 1:] if m["role"] == "assistant")
    last = messages[-1]["content"] if len(messages) - 1 > task_index and messages[-1]["role"] == "user" else ""
    return task, turns, last


def fenced(kind, body):
    return f"```{kind}\n{body.rstrip()}\n```"


def fix_calc(task, turns, observation):
    if turns == 0 or "def mean" not in observation:
        return "I will run the tests and read the module.\n" + fenced("sh", "python3 -m unittest -q 2>&1 | tail -4\ncat calc/stats.py")
    source = observation[observation.index("def mean"):]
    source = source[:source.index("```")] if "```" in source else source
    if "len(values) - 1" not in source:
        return fenced("sh", "python3 -m unittest -q 2>&1 | tail -4")
    fixed = source.replace("(len(values) - 1)", "len(values)")
    return "The mean divides by one too few; fixing it.\n" + fenced("file:calc/stats.py", fixed)


def read_record(text):
    """The city record a document states, or None."""
    seen = re.search(r"(\w+) is the capital of (\w+)", text)
    # A number written with thousands separators is a count; a bare one (1535) may be a year.
    count = re.search(r"(\d{1,3}(?:,\d{3})+)", text) or re.search(r"(\d{5,})", text)
    if not seen or not count:
        return None
    return {"city": seen.group(1), "country": seen.group(2), "population": int(count.group(1).replace(",", ""))}


def extract(task, turns, observation, doc, constrained):
    if constrained:
        # Decoding held to the schema (response_format, sent for actions: []): no blocks, one
        # bare JSON value, from the document as the task shows it.
        shown = task.split(f"### inputs/notes/{doc}", 1)
        return json.dumps(read_record(shown[1] if len(shown) == 2 else "") or {})
    record = read_record(observation)
    if turns == 0 or not record:
        return "Let me read the document.\n" + fenced("python", f"print(open('inputs/notes/{doc}').read())")
    return fenced("json", json.dumps(record))


def records_in(text):
    found = []
    for block in re.findall(r"```\n(\{.*?\})\n```", text, re.S):
        try:
            value = json.loads(block)
        except ValueError:
            continue
        if isinstance(value, dict) and "population" in value:
            found.append(value)
    return found


def report(task, turns, observation):
    records = records_in(task) or records_in(observation)
    if not records:
        return fenced("python", "import glob\nfor p in sorted(glob.glob('inputs/*/answer.json')):\n    print(open(p).read())")
    records.sort(key=lambda r: -int(r.get("population", 0)))
    lines = [f"The records cover {len(records)} cities."]
    for r in records:
        lines.append(f"{r.get('city')}, the capital of {r.get('country')}, has a population of {int(r.get('population', 0)):,}.")
    return fenced("answer", " ".join(lines))


def code_module(task):
    m = re.search(r"Write a Python function (\w+)\(([^)]*)\) that returns ([^\n]+?)\.?\s*$", task, re.M)
    if not m:
        return "I am not sure."
    return fenced("python", f"def {m.group(1)}({m.group(2)}):\n    return {m.group(3)}")


def agent(messages, constrained):
    task, turns, observation = task_and_turns(messages)
    scripted = re.search(r"STANDIN:file:([^=\s]+)=(.*)$", task, re.M)
    if scripted:
        return fenced(f"file:{scripted.group(1)}", scripted.group(2).replace("\\n", "\n"))
    scripted = re.search(r"STANDIN:answer=(.*)$", task, re.M)
    if scripted:
        return fenced("answer", scripted.group(1))
    if "STANDIN:schema-violation" in task:
        return fenced("json", '{"city": 5}')
    if "STANDIN:escape" in task:
        if turns == 0:
            return "\n".join([fenced("file:../escaped.txt", "out"), fenced("file:/tmp/standin-escaped.txt", "out"),
                              fenced("file:inputs/notes/paris.txt", "changed"), fenced("file:a/../../escaped2.txt", "out")])
        told = [line for line in observation.splitlines() if "refused" in line]
        return fenced("answer", "I was told:\n" + "\n".join(told))
    if "STANDIN:huge-output" in task:
        return fenced("python", "open('big.bin', 'wb').write(b'0' * 9_000_000)")
    if "STANDIN:flood" in task:
        return "\n".join(fenced(f"file:f{i}.txt", str(i)) for i in range(40))
    if "find the bug" in task and "calc/stats.py" in task:
        return fix_calc(task, turns, observation)
    doc = re.search(r"Read the document inputs/notes/(\S+?)\s+and", task)
    if doc:
        return extract(task, turns, observation, doc.group(1), constrained)
    if "Write a short report" in task:
        return report(task, turns, observation)
    if task.startswith("Task:") and "Write a Python function" in task:
        return code_module(task)
    return "I am not sure."


def judge(messages):
    text = "\n".join(m.get("content", "") for m in messages if m.get("role") == "user")
    rubric = text.split("Rubric:", 1)[-1].split("Result:", 1)[0]
    result = text.split("Result:", 1)[-1]
    if "STANDIN:garbage" in rubric:
        return "What a lovely report! I would give it top marks."
    good = "population" in result.lower() and re.search(r"\d", result)
    verdict = {"score": 0.9, "reason": "names the cities with their populations"} if good else \
        {"score": 0.3, "reason": "does not give the populations"}
    return fenced("json", json.dumps(verdict))


def reply_for(messages, constrained=False):
    role = role_of(messages)
    if role == "judge":
        return judge(messages)
    if role == "summarizer":
        return "Summary: the agent is working on the task."
    if role == "corrector":
        return "I am not sure."
    return agent(messages, constrained)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.endswith("/models"):
            self.send_json(200, {"object": "list", "data": [{"id": "standin", "object": "model"}]})
        else:
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self):
        try:
            req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        except ValueError:
            self.send_json(400, {"error": {"message": "request body is not JSON"}})
            return
        if not self.path.endswith("/chat/completions"):
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        messages = req.get("messages") or []
        text = reply_for(messages, constrained=bool(req.get("response_format")))
        # One token per whitespace-separated piece, as the client counts streamed chunks.
        pieces = re.findall(r"\S+\s*|\s+", text)
        limit = req.get("max_tokens") or len(pieces)
        sent = pieces[:limit]
        finish = "length" if len(pieces) > limit else "stop"
        usage = {"prompt_tokens": prompt_tokens(messages), "completion_tokens": len(sent),
                 "total_tokens": prompt_tokens(messages) + len(sent)}
        if not req.get("stream"):
            self.send_json(200, {"id": "s", "object": "chat.completion", "model": req.get("model", "standin"),
                                 "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(sent)},
                                              "finish_reason": finish}], "usage": usage})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for i, piece in enumerate(sent):
                self.event({"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
            self.event({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
            self.event({"choices": [], "usage": usage})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped the stream (it had the block it needed)

    def event(self, obj):
        obj.update({"id": "s", "object": "chat.completion.chunk", "model": "standin"})
        self.wfile.write(f"data: {json.dumps(obj)}\n\n".encode())
        self.wfile.flush()


if __name__ == "__main__":
    serve(Handler)
