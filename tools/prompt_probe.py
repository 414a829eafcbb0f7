#!/usr/bin/env python3
"""Where the agent prompt's parts go, measured on a real model: one agent call per sample.

    bash tools/start-models.sh
    python3 tools/prompt_probe.py --url http://127.0.0.1:8198/v1 --samples 20

For each prompt layout and each task (the demo's five helpers), it sends `--samples` chat
completions (seeds 0..N-1, the scaffold's temperature 0.2), takes the first ```python block of
the reply as solution.py, runs the task's check on it in a temporary directory (the earlier
helpers' code beside it, as the scaffold does), and prints how many passed.

Layouts (the texts mirror Sources/Scaffold/Prompts.swift):
    tracker-last     the budget tracker as the last line of the task message (the scaffold until
                     2026-11-25)
    tracker-system   the tracker as the last line of the system message
    example          tracker-system plus one worked exchange before the task (the scaffold now)
    imports          example, but the earlier modules are shown as import lines with their
                     signatures instead of their code (tried 2026-11-30, not adopted)
    imports-code     the import lines, then the code "for reference" (tried, not adopted)
    bare             the task alone as one user message, no system message (a reference point)
    tracker-after    example, but the tracker in a system message of its own after the task, so
                     everything before it stays byte-identical from turn to turn (prefix caching)
    tracker-first    example, but the tracker as the first line of the task message (each turn's
                     tracker then rides on that turn's new message; earlier messages never change)
    tracker-before   example, but the tracker in a system message of its own just before the task
                     (each turn adds its tracker before its new message; earlier ones never change)

--upstream picks the earlier helpers' code: `ideal` (`return sum(numbers)`) or `written`, what
SmolLM2 most often writes for them in a real run (total as a sum over an isinstance filter).

For Gemma-3-270M (port 8199), whose chat template has no system role, add --fold-system.

--role corrector measures the corrector instead: each task's solution.py with a typical bug and
its output, and whether the corrector's reply passes the check. Layouts:
    corrector-alone  its own system message and the task in its one user message (the scaffold
                     until 2026-12-06)
    corrector-shared the attempt's opening as the agent got it on turn 1 (system message, worked
                     example, tracker, task: the prefix every role shares, so a server's prefix
                     cache serves it), then the corrector's instructions and the failing code
"""
import argparse
import json
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

SYSTEM = ("You are a Python programmer working in a sandbox. Every turn, reply with exactly one "
          "```python code block holding the complete contents of solution.py. It is run, then checked "
          "by a verifier, and you see the result. Write only what the task asks for; do not call input().")
TRACKER = "[budget] 1500 tokens and 299s left; turn 1 of 3."
EXAMPLE = [
    {"role": "user", "content": "Task:\nWrite a Python function is_even(n) that returns True when n is even."},
    {"role": "assistant", "content": "```python\ndef is_even(n):\n    return n % 2 == 0\n```"},
]
MODULES = {
    "add": "def add(a, b):\n    return a + b\n",
    "square": "def square(x):\n    return x * x\n",
    "total": "def total(numbers):\n    return sum(numbers)\n",
}
# What SmolLM2-135M most often writes for the upstream helpers in a real run (8 of 12 samples of
# total at the scaffold's prompt, 2026-11-30); `average` after it copies the body.
WRITTEN = dict(MODULES, total="def total(numbers):\n    return sum(num for num in numbers if isinstance(num, (int, float)))\n")
# id: (prompt, needs, check) — the subtasks of workflows/number-helpers.yaml.
TASKS = {
    "add": ("Write a Python function add(a, b) that returns a + b.", [],
            "from solution import add\nassert add(2, 3) == 5\nassert add(-1, 1) == 0"),
    "square": ("Write a Python function square(x) that returns x * x.", [],
               "from solution import square\nassert square(3) == 9\nassert square(-2) == 4"),
    "sum_of_squares": ("Write a Python function sum_of_squares(a, b) that returns a * a + b * b.\n"
                       "You may use add (from add import add) and square (from square import square).",
                       ["add", "square"],
                       "from solution import sum_of_squares\nassert sum_of_squares(3, 4) == 25\nassert sum_of_squares(0, 2) == 4"),
    "total": ("Write a Python function total(numbers) that returns the sum of a list of numbers.", [],
              "from solution import total\nassert total([1, 2, 3]) == 6\nassert total([]) == 0"),
    "average": ("Write a Python function average(numbers) that returns the mean of a non-empty list of numbers.",
                ["total"], "from solution import average\nassert average([1, 2, 3]) == 2\nassert average([4]) == 4"),
}
CORRECTOR_SYSTEM = ("You fix broken Python code. You get a task, the code that failed and its output. Reply "
                    "with the complete corrected solution.py in one ```python code block and nothing else.")
# id: (failing solution.py, its output) — bugs SmolLM2 writes for the demo's helpers.
BUGS = {
    "add": ("def add(a, b):\n    return a - b\n",
            "Traceback (most recent call last):\n  File \"_verify.py\", line 2, in <module>\n    assert add(2, 3) == 5\nAssertionError"),
    "square": ("def square(x):\n    return x * 2\n",
               "Traceback (most recent call last):\n  File \"_verify.py\", line 2, in <module>\n    assert square(3) == 9\nAssertionError"),
    "sum_of_squares": ("from add import add\nfrom square import square\n\ndef sum_of_squares(a, b):\n    return add(squre(a), square(b))\n",
                       "Traceback (most recent call last):\n  File \"solution.py\", line 5, in sum_of_squares\n    return add(squre(a), square(b))\nNameError: name 'squre' is not defined"),
    "total": ("def total(numbers):\n    return len(numbers)\n",
              "Traceback (most recent call last):\n  File \"_verify.py\", line 2, in <module>\n    assert total([1, 2, 3]) == 6\nAssertionError"),
    "average": ("from total import total\n\ndef average(numbers):\n    return total(numbers) / len(number)\n",
                "Traceback (most recent call last):\n  File \"solution.py\", line 4, in average\n    return total(numbers) / len(number)\nNameError: name 'number' is not defined"),
}
CORRECTOR_LAYOUTS = ["corrector-alone", "corrector-shared"]


def signatures(needs):
    lines = [f"{name}.{line.strip()}" for name in sorted(needs) for line in MODULES[name].splitlines() if line.startswith("def ")]
    return "\nAvailable from earlier modules (import them):\n" + "\n".join(lines) + "\n" if lines else ""


def corrector_messages(layout, prompt, needs, code, output):
    failing = (f"This solution.py failed:\n```python\n{code.strip()}\n```\nIts output:\n```\n{output.strip()}\n```\n"
               "Reply with the corrected solution.py in one ```python block.")
    if layout == "corrector-alone":
        return [{"role": "system", "content": CORRECTOR_SYSTEM},
                {"role": "user", "content": f"Task:\n{prompt}\n{signatures(needs)}\n" + failing}]
    if layout == "corrector-shared":
        return ([{"role": "system", "content": SYSTEM}] + EXAMPLE + [{"role": "system", "content": TRACKER},
                                                                    {"role": "user", "content": task_message(prompt, needs)},
                 {"role": "system", "content": CORRECTOR_SYSTEM}, {"role": "user", "content": signatures(needs).lstrip("\n") + failing}])
    raise ValueError(layout)


LAYOUTS = ["tracker-last", "tracker-system", "example", "imports", "imports-code", "bare", "tracker-after", "tracker-first", "tracker-before"]


def task_message(prompt, needs, imports=False, code=True):
    text = "Task:\n" + prompt
    if needs and imports:
        text += "\n\nModules from earlier subtasks are in the working directory; import them:\n"
        for name in sorted(needs):
            for line in MODULES[name].splitlines():
                m = re.match(r"def (\w+)(\(.*\)):", line)
                if m:
                    text += f"from {name} import {m.group(1)}  # {m.group(1)}{m.group(2)}\n"
        if code:
            text += "Their code, for reference (do not copy it into solution.py):\n"
            for name in sorted(needs):
                text += f"### {name}.py\n```python\n{MODULES[name].rstrip()}\n```\n"
    elif needs:
        text += "\n\nModules from earlier subtasks are in the working directory; import them:\n"
        for name in sorted(needs):
            text += f"### {name}.py\n```python\n{MODULES[name].rstrip()}\n```\n"
    return text


def messages(layout, prompt, needs):
    task = task_message(prompt, needs, imports=layout in ("imports", "imports-code"), code=layout == "imports-code")
    if layout == "tracker-last":
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": task + "\n\n" + TRACKER}]
    if layout == "tracker-system":
        return [{"role": "system", "content": SYSTEM + "\n" + TRACKER}, {"role": "user", "content": task}]
    if layout in ("example", "imports", "imports-code"):
        return [{"role": "system", "content": SYSTEM + "\n" + TRACKER}] + EXAMPLE + [{"role": "user", "content": task}]
    if layout == "tracker-after":
        return [{"role": "system", "content": SYSTEM}] + EXAMPLE + [{"role": "user", "content": task}, {"role": "system", "content": TRACKER}]
    if layout == "tracker-first":
        return [{"role": "system", "content": SYSTEM}] + EXAMPLE + [{"role": "user", "content": TRACKER + "\n\n" + task}]
    if layout == "tracker-before":
        return [{"role": "system", "content": SYSTEM}] + EXAMPLE + [{"role": "system", "content": TRACKER}, {"role": "user", "content": task}]
    if layout == "bare":
        return [{"role": "user", "content": prompt}]
    raise ValueError(layout)


def fold_system(msgs):
    """Each system message at the top of the message after it, as the scaffold does for Gemma."""
    out, pending = [], []
    for m in msgs:
        if m["role"] == "system":
            pending.append(m["content"])
        else:
            out.append({"role": m["role"], "content": "\n\n".join(pending + [m["content"]])})
            pending = []
    return out


def complete(url, msgs, seed, max_tokens):
    body = json.dumps({"messages": msgs, "temperature": 0.2, "seed": seed, "max_tokens": max_tokens}).encode()
    request = urllib.request.Request(url.rstrip("/") + "/chat/completions", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        reply = json.load(response)
    return reply["choices"][0]["message"]["content"], reply["usage"]["total_tokens"]


def passes(reply, needs, check):
    match = re.search(r"```[a-zA-Z0-9]*\n(.*?)(```|$)", reply, re.S)
    with tempfile.TemporaryDirectory() as d:
        Path(d, "solution.py").write_text(match.group(1) if match else "")
        for name in needs:
            Path(d, f"{name}.py").write_text(MODULES[name])
        Path(d, "_verify.py").write_text(check)
        try:
            return subprocess.run([sys.executable, "_verify.py"], cwd=d, capture_output=True, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8198/v1")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=300)
    parser.add_argument("--layouts", default=",".join(LAYOUTS))
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--upstream", choices=["ideal", "written"], default="ideal",
                        help="the earlier helpers' code shown and placed beside solution.py")
    parser.add_argument("--role", choices=["agent", "corrector"], default="agent")
    parser.add_argument("--fold-system", action="store_true",
                        help="put each system message at the top of the message after it, as the scaffold does for Gemma")
    args = parser.parse_args()
    if args.role == "corrector" and args.layouts == ",".join(LAYOUTS):
        args.layouts = ",".join(CORRECTOR_LAYOUTS)
    if args.upstream == "written":
        MODULES.update(WRITTEN)
    tasks = args.tasks.split(",")
    print("| layout | " + " | ".join(tasks) + " | mean tokens |")
    print("|---|" + "---|" * (len(tasks) + 1))
    for layout in args.layouts.split(","):
        cells, tokens, calls = [], 0, 0
        for name in tasks:
            prompt, needs, check = TASKS[name]
            ok = 0
            for seed in range(args.samples):
                msgs = (corrector_messages(layout, prompt, needs, *BUGS[name]) if args.role == "corrector"
                        else messages(layout, prompt, needs))
                if args.fold_system:
                    msgs = fold_system(msgs)
                reply, used = complete(args.url, msgs, seed, args.max_tokens)
                ok += passes(reply, needs, check)
                tokens += used
                calls += 1
            cells.append(f"{ok}/{args.samples}")
        print(f"| {layout} | " + " | ".join(cells) + f" | {tokens // max(calls, 1)} |", flush=True)


if __name__ == "__main__":
    main()
