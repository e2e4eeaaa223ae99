"""led-cpp serve under concurrent streaming clients, against in-process generate_batch of the same
requests and llama-cpp-python's server (pip install "llama-cpp-python[server]==0.3.36") in the same run.

16 clients stream 128 tokens each (greedy, end-of-generation ignored by asking for prompts that
run long; the tokens actually generated are counted). Reported: aggregate tok/s and the time to
the first token at 1 and at 16 concurrent clients.

    python benchmarks/bench_server.py [--clients 16] [--tokens 128] [--threads 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import smollm2_path  # noqa: E402

PROMPTS = [
    f"Write a long story about a {animal} who learns to {skill}. Chapter one:"
    for animal, skill in zip(
        ["cat", "dog", "fox", "owl", "bear", "frog", "wolf", "duck"] * 2,
        [
            "sing",
            "fly",
            "swim",
            "cook",
            "paint",
            "dance",
            "read",
            "sail",
            "build",
            "climb",
            "skate",
            "draw",
            "knit",
            "ride",
            "code",
            "garden",
        ],
    )
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_up(base: str, process: subprocess.Popen, path: str) -> None:
    import httpx

    for _ in range(1200):
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {process.stderr.read()[-2000:]}")
        try:
            if httpx.get(base + path, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not come up")


async def stream_clients(base: str, prompts: list, tokens: int) -> dict:
    """Streams every prompt at once; returns aggregate tok/s and the mean time to first token."""
    import httpx

    async with httpx.AsyncClient(timeout=600) as client:

        async def one(prompt: str):
            start = time.perf_counter()
            first, count, chunks, finish = None, 0, 0, None
            body = {
                "prompt": prompt,
                "max_tokens": tokens,
                "temperature": 0,
                "stream": True,
                "seed": 1,
                "stream_options": {"include_usage": True},
            }
            async with client.stream("POST", base + "/v1/completions", json=body) as response:
                async for line in response.aiter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    chunk = json.loads(line[6:])
                    if chunk.get("choices") and chunk["choices"][0].get("text"):
                        chunks += 1
                        if first is None:
                            first = time.perf_counter() - start
                    if chunk.get("choices") and chunk["choices"][0].get("finish_reason"):
                        finish = chunk["choices"][0]["finish_reason"]
                    if chunk.get("usage"):
                        count = chunk["usage"]["completion_tokens"]
            # llama-cpp-python's stream has no usage: a completion that stopped on the length
            # limit has exactly max_tokens tokens; otherwise its text chunks (one per token) count.
            if not count:
                count = tokens if finish == "length" else chunks
            return first or 0.0, count

        start = time.perf_counter()
        outcomes = await asyncio.gather(*(one(prompt) for prompt in prompts))
        elapsed = time.perf_counter() - start
    total = sum(count for _, count in outcomes)
    return {"tok_s": total / elapsed, "tokens": total, "ttft_s": sum(first for first, _ in outcomes) / len(outcomes)}


def measure_server(command: list, base: str, health: str, clients: int, tokens: int) -> dict:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_up(base, process, health)
        asyncio.run(stream_clients(base, PROMPTS[:1], 8))  # warm-up
        single = asyncio.run(stream_clients(base, PROMPTS[:1], tokens))
        many = asyncio.run(stream_clients(base, PROMPTS[:clients], tokens))
        return {"tok_s": many["tok_s"], "tokens": many["tokens"], "ttft_1": single["ttft_s"], "ttft_n": many["ttft_s"]}
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def in_process(path: Path, clients: int, tokens: int, threads: int, n_ctx: int) -> dict:
    import led_cpp

    model = led_cpp.Model(path, n_ctx=n_ctx, n_threads=threads)
    config = led_cpp.SamplingConfig(temperature=0, top_k=40, top_p=1.0)
    model.generate_batch(PROMPTS[:1], config=config, max_tokens=8, seed=1)  # warm-up
    start = time.perf_counter()
    results = model.generate_batch(PROMPTS[:clients], config=config, max_tokens=tokens, seed=1, n_parallel=clients)
    elapsed = time.perf_counter() - start
    total = sum(len(sample.tokens) for prompt in results for sample in prompt)
    return {"tok_s": total / elapsed, "tokens": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default=None, help="GGUF (default: SmolLM2-135M-Instruct Q4_1)")
    args = parser.parse_args()
    path = Path(args.model) if args.model else smollm2_path()
    n_ctx = 512
    print(f"model {path.name}, {args.clients} clients x {args.tokens} tokens, greedy, {args.threads} threads")

    reference = in_process(path, args.clients, args.tokens, args.threads, n_ctx)
    print(f"in-process generate_batch: {reference['tok_s']:.1f} tok/s ({reference['tokens']} tokens)")

    port = free_port()
    ours = measure_server(
        [
            sys.executable,
            "-m",
            "led_cpp.cli",
            "serve",
            "-m",
            str(path),
            "--port",
            str(port),
            "--n-ctx",
            str(n_ctx),
            "--threads",
            str(args.threads),
            "--n-parallel",
            str(args.clients),
        ],
        f"http://127.0.0.1:{port}",
        "/health",
        args.clients,
        args.tokens,
    )
    print(
        f"led-cpp serve: {ours['tok_s']:.1f} tok/s ({ours['tokens']} tokens), "
        f"{ours['tok_s'] / reference['tok_s']:.2f}x in-process; "
        f"time to first token {ours['ttft_1'] * 1000:.0f} ms at 1 client, "
        f"{ours['ttft_n'] * 1000:.0f} ms at {args.clients}"
    )

    try:
        import llama_cpp.server  # noqa: F401
    except ImportError:
        print('llama-cpp-python server: not installed (pip install "llama-cpp-python[server]==0.3.36")')
        return
    port = free_port()
    theirs = measure_server(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(path),
            "--port",
            str(port),
            "--n_ctx",
            str(n_ctx * args.clients),
            "--n_threads",
            str(args.threads),
            "--n_threads_batch",
            str(args.threads),
            "--verbose",
            "false",
            # By default a new request interrupts the one streaming (the server decodes one at a
            # time); the benchmark's clients queue instead, as a user's concurrent requests must.
            "--interrupt_requests",
            "false",
        ],
        f"http://127.0.0.1:{port}",
        "/v1/models",
        args.clients,
        args.tokens,
    )
    print(
        f"llama-cpp-python server: {theirs['tok_s']:.1f} tok/s ({theirs['tokens']} tokens); "
        f"time to first token {theirs['ttft_1'] * 1000:.0f} ms at 1 client, {theirs['ttft_n'] * 1000:.0f} ms at "
        f"{args.clients}; led-cpp serve is {ours['tok_s'] / theirs['tok_s']:.2f}x its throughput"
    )


if __name__ == "__main__":
    main()
