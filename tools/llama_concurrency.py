#!/usr/bin/env python3
"""Latency per request against one OpenAI-compatible server as concurrent requests share it.

    python3 tools/llama_concurrency.py [--url http://127.0.0.1:8198/v1] [--model smollm2-135m]
                                       [--levels 1,2,4,8] [--rounds 3] [--max-tokens 48]

Each round sends K identical chat completions at once (temperature 0, fixed max_tokens) and
times each until its full answer; prints per K the mean and max latency per request, the
completion tokens per request, and the mean latency relative to K=1 (the slowdown factor
`bench fleet --gpu-sharing` models: an attempt's model calls take that much longer while K
attempts share the GPU). Standard library only.
"""
import argparse
import json
import statistics
import threading
import time
import urllib.request


def one(url, model, max_tokens, out, i):
    body = json.dumps({"model": model, "temperature": 0, "max_tokens": max_tokens, "stream": False,
                       "messages": [{"role": "user", "content": "Write a Python function that adds two numbers, with a docstring."}]}).encode()
    req = urllib.request.Request(url + "/chat/completions", data=body, headers={"Content-Type": "application/json"})
    t = time.monotonic()
    with urllib.request.urlopen(req, timeout=600) as r:
        reply = json.load(r)
    out[i] = (time.monotonic() - t, (reply.get("usage") or {}).get("completion_tokens", 0))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", default="http://127.0.0.1:8198/v1")
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--levels", default="1,2,4,8")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--max-tokens", type=int, default=48)
    a = p.parse_args()
    one(a.url, a.model, a.max_tokens, [None], 0)  # warm the prompt cache and the model
    base = None
    print(f"{'K':>3} {'mean s':>8} {'max s':>8} {'tokens':>7} {'x K=1':>6}")
    for k in [int(x) for x in a.levels.split(",")]:
        lat, toks = [], []
        for _ in range(a.rounds):
            out = [None] * k
            threads = [threading.Thread(target=one, args=(a.url, a.model, a.max_tokens, out, i)) for i in range(k)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            lat += [o[0] for o in out]
            toks += [o[1] for o in out]
        mean = statistics.mean(lat)
        base = base or mean
        print(f"{k:>3} {mean:>8.3f} {max(lat):>8.3f} {statistics.mean(toks):>7.1f} {mean / base:>6.2f}")


if __name__ == "__main__":
    main()
