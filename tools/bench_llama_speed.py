#!/usr/bin/env python3
"""Generation speed of the installed llama-cpp-python build: tokens/s on one GGUF, one prompt.

    .venv/bin/python tools/bench_llama_speed.py GGUF [--threads 1] [--tokens 128] [--runs 3]

Greedy decoding of a fixed chat prompt, `--tokens` new tokens (the end-of-sequence token is
ignored so every run generates the same count), `--runs` times after one warm-up; prints the
build's CPU features, then per run the prompt and generation rates from llama.cpp's own timers
(wall clock) and the whole completion's tokens per CPU-second of this process (steadier than
wall-clock rates on a loaded machine), and the medians. Used for the portable-vs-native
comparison in docs/benchmarks.md.
"""
import argparse
import statistics
import time

import llama_cpp

PROMPT = [{"role": "user", "content": "Write a Python function that returns the n-th Fibonacci number, with a docstring and two examples."}]

parser = argparse.ArgumentParser()
parser.add_argument("gguf")
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--tokens", type=int, default=128)
parser.add_argument("--runs", type=int, default=3)
args = parser.parse_args()

llm = llama_cpp.Llama(model_path=args.gguf, n_ctx=2048, n_threads=args.threads, n_threads_batch=args.threads, verbose=False, seed=1)
print("system info:", llama_cpp.llama_print_system_info().decode().strip())


def one():
    llm.reset()
    cpu = time.process_time()
    start = time.perf_counter()
    out = llm.create_chat_completion(messages=PROMPT, max_tokens=args.tokens, temperature=0.0, logit_bias={llm.token_eos(): -1e9})
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu
    t = llama_cpp.llama_perf_context(llm.ctx)
    prompt_rate = t.n_p_eval / (t.t_p_eval_ms / 1000) if t.t_p_eval_ms > 0 else float("nan")
    gen_rate = t.n_eval / (t.t_eval_ms / 1000) if t.t_eval_ms > 0 else float("nan")
    llama_cpp.llama_perf_context_reset(llm.ctx)
    return out["usage"]["completion_tokens"], prompt_rate, gen_rate, wall, cpu


one()  # warm-up
rates, per_cpu = [], []
for i in range(args.runs):
    n, p, g, wall, cpu = one()
    rates.append(g)
    per_cpu.append(n / cpu)
    print(f"run {i + 1}: {n} tokens, prompt {p:.1f} tok/s, generation {g:.1f} tok/s, wall {wall:.2f}s, cpu {cpu:.2f}s ({n / cpu:.1f} tok/cpu-s)")
print(f"median generation: {statistics.median(rates):.1f} tok/s, {statistics.median(per_cpu):.1f} tok/cpu-s over {args.runs} runs ({args.threads} thread(s))")
