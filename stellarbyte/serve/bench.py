"""`stellarbyte bench serve`: requests/s and output tokens/s of the HTTP server under concurrent chat clients.

Starts `stellarbyte serve MODEL_DIR` on a free localhost port (or targets --url), then sends --requests short
chat requests (distinct prompts) with at most --concurrency in flight, through the official openai client
(AsyncOpenAI), streaming so that the time to first token is seen. Figures:
  requests/s        = requests / wall time (first request sent -> last response done)
  output tokens/s   = sum of usage.completion_tokens / wall time
  latency p50/p95   = per request, send -> last chunk;  TTFT = send -> first content chunk
  client/server CPU = CPU seconds the benchmark client and the server process used during the timed run
                      (process_time / Linux /proc/PID/stat): where the time goes when client and server share cores
EOS is ignored by default (vLLM's extra field ignore_eos); chat answers still end at the template's <|im_end|>,
so use --endpoint completions for answers of exactly --max-tokens tokens (decode-bound figures).
With MODEL_DIR, the same requests then run through the offline engine (LLM.generate / LLM.chat, no HTTP) in this
process after the server has stopped: the ratio of the two is the cost of HTTP, JSON and streaming.
Reference: vLLM's benchmarks/benchmark_serving.py (the same figures, measured the same way).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

TOPICS = ("cats", "the sea", "a red house", "trains", "the moon", "bread", "rain", "a small dog", "music", "trees",
          "snow", "a city park", "birds", "the sun", "a library", "friends")


@dataclass(slots=True)
class ServeBenchResult:
    endpoint: str
    threads: int
    requests: int
    concurrency: int
    max_tokens: int
    wall_s: float
    requests_per_s: float
    output_tokens: int
    output_tokens_per_s: float
    latency_p50_s: float
    latency_p95_s: float
    ttft_mean_s: float
    client_cpu_s: float
    server_cpu_s: float  # -1 when unknown (--url on another machine or no /proc)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", nargs="?", help="model directory to serve (omit with --url)")
    parser.add_argument("--url", help="benchmark a running server instead, e.g. http://127.0.0.1:8000")
    parser.add_argument("--api-key", default=os.environ.get("STELLARBYTE_API_KEY", "none"))
    parser.add_argument("--model", help="model name to send (default: the server's first /v1/models entry)")
    parser.add_argument("--requests", type=int, default=64, help="number of chat requests (default 64)")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight at once (default 64)")
    parser.add_argument("--max-tokens", type=int, default=32, help="tokens per answer (default 32)")
    parser.add_argument("--endpoint", choices=["chat", "completions"], default="chat",
                        help="chat (default) or completions (plain text prompts, fixed-length answers)")
    parser.add_argument("--keep-eos", action="store_true", help="stop at EOS (default: ignore it, fixed lengths)")
    parser.add_argument("--threads", type=int, help="torch CPU threads for the server and the offline run (default: "
                        "torch's choice; on a shared, loaded CPU 1 thread can be much faster)")
    parser.add_argument("--server-args", default="", help="extra `stellarbyte serve` options, e.g. '--threads 2'")
    parser.add_argument("--csv", help="append the result row to this CSV file")


def _messages(i: int) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": f"Tell me a short story about {TOPICS[i % len(TOPICS)]} ({i})."}]


def _prompt(i: int) -> str:
    return f"Once upon a time, there was a story about {TOPICS[i % len(TOPICS)]} ({i}). It"


async def _one(client, model: str, i: int, args: argparse.Namespace) -> tuple[float, float, int]:
    start = time.perf_counter()
    first, tokens = None, 0
    common = dict(model=model, max_tokens=args.max_tokens, temperature=0, stream=True,
                  stream_options={"include_usage": True}, extra_body={"ignore_eos": not args.keep_eos})
    if args.endpoint == "chat":
        stream = await client.chat.completions.create(messages=_messages(i), **common)
    else:
        stream = await client.completions.create(prompt=_prompt(i), **common)
    async for chunk in stream:
        text = (chunk.choices[0].delta.content if args.endpoint == "chat" else chunk.choices[0].text) \
            if chunk.choices else None
        if first is None and text:
            first = time.perf_counter()
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    end = time.perf_counter()
    return end - start, (first or end) - start, tokens


def process_cpu_seconds(pid: int | None) -> float:
    """user + system CPU seconds of a process (Linux /proc); -1 when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)
    except (OSError, ValueError, IndexError, TypeError):
        return -1.0


async def _drive(base_url: str, args: argparse.Namespace, server_pid: int | None = None) -> ServeBenchResult:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url + "/v1", api_key=args.api_key, max_retries=0, timeout=600)
    model = args.model or (await client.models.list()).data[0].id
    await _one(client, model, 0, argparse.Namespace(**{**vars(args), "max_tokens": 2}))  # warm-up
    gate = asyncio.Semaphore(args.concurrency)

    async def limited(i: int) -> tuple[float, float, int]:
        async with gate:
            return await _one(client, model, i, args)

    start, cpu, server_cpu = time.perf_counter(), time.process_time(), process_cpu_seconds(server_pid)
    results = await asyncio.gather(*(limited(i) for i in range(args.requests)))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    server_cpu = process_cpu_seconds(server_pid) - server_cpu if server_cpu >= 0 else -1.0
    await client.close()
    latencies = sorted(r[0] for r in results)
    tokens = sum(r[2] for r in results)
    return ServeBenchResult(args.endpoint, args.threads or 0, args.requests, args.concurrency, args.max_tokens, wall,
                            args.requests / wall, tokens, tokens / wall, statistics.median(latencies),
                            latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
                            statistics.fmean(r[1] for r in results), cpu, server_cpu)


def offline(args: argparse.Namespace) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, output tokens) of the same requests through LLM in process (no HTTP)."""
    import torch

    from stellarbyte.infer.engine import LLM, SamplingParams

    if args.threads:
        torch.set_num_threads(args.threads)
    llm = LLM(args.model_dir, max_num_seqs=max(args.concurrency, 1))
    params = SamplingParams(temperature=0, max_tokens=args.max_tokens, ignore_eos=not args.keep_eos)
    run_once = (lambda n: llm.chat([_messages(i) for i in range(n)], params)) if args.endpoint == "chat" else \
        (lambda n: llm.generate([_prompt(i) for i in range(n)], params))
    run_once(1)  # warm-up
    start, cpu = time.perf_counter(), time.process_time()
    outs = run_once(args.requests)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return wall, cpu, sum(len(c.token_ids) for o in outs for c in o.outputs)


def run(args: argparse.Namespace) -> int:
    for name in ("requests", "concurrency", "max_tokens"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
    if args.url:
        result = asyncio.run(_drive(args.url.rstrip("/"), args))
    else:
        if not args.model_dir:
            raise ValueError("pass MODEL_DIR to start a server, or --url of a running one")
        from stellarbyte.serve.launch import ServerProcess

        extra = ["--api-key", args.api_key, "--max-num-seqs", str(max(args.concurrency, 1)), *args.server_args.split()]
        if args.threads:
            extra += ["--threads", str(args.threads)]
        with ServerProcess(args.model_dir, extra) as server:
            result = asyncio.run(_drive(server.base_url, args, server.proc.pid))
    row = asdict(result)
    if not args.url:
        wall, cpu, tokens = offline(args)
        row.update(offline_wall_s=wall, offline_cpu_s=cpu, offline_output_tokens=tokens,
                   offline_output_tokens_per_s=tokens / wall,
                   server_vs_offline=result.output_tokens_per_s / (tokens / wall))
    width = max(map(len, row))
    print(f"{'metric':<{width}}  value")
    for key, value in row.items():
        print(f"{key:<{width}}  {value:.3f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    if args.csv:
        path = Path(args.csv)
        new = not path.exists()
        with path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
    return 0


def main() -> int:  # python -m stellarbyte.serve.bench MODEL_DIR (until `stellarbyte bench serve` is registered)
    parser = argparse.ArgumentParser(prog="stellarbyte bench serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
