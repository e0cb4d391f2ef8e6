"""`stellarbyte serve MODEL_DIR`: load a checkpoint + tokenizer, build the engine, serve the OpenAI API.

The model directory holds config.json + safetensors (ours or HF Llama/Qwen2/Qwen3/Mistral) and tokenizer.json
(or pass --tokenizer). Engine options map one to one onto EngineConfig (see docs/engine.md); the server's
API is documented in docs/serving.md.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

EXAMPLES = """examples:
  stellarbyte serve runs/quickstart/model --port 8000 --api-key secret

  curl http://127.0.0.1:8000/v1/chat/completions -H 'Authorization: Bearer secret' \\
       -H 'Content-Type: application/json' \\
       -d '{"model": "model", "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 32}'
  curl -N http://127.0.0.1:8000/v1/completions -H 'Authorization: Bearer secret' \\
       -H 'Content-Type: application/json' \\
       -d '{"model": "model", "prompt": "Once upon a time", "max_tokens": 32, "stream": true}'
  curl http://127.0.0.1:8000/metrics

  python -c "from openai import OpenAI
  client = OpenAI(base_url='http://127.0.0.1:8000/v1', api_key='secret')
  r = client.chat.completions.create(model='model', messages=[{'role': 'user', 'content': 'Hello!'}],
                                     max_tokens=32, temperature=0)
  print(r.choices[0].message.content)"

The model name clients send is --served-model-name (default: the directory's name, 'model' above).
"""

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_bytes(text: str) -> int:
    """'512MiB', '2GiB', '1.5GB', '1000000' -> bytes."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-zA-Z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"--kv-memory {text!r} is not a size; write e.g. 512MiB, 2GiB or a number of bytes")
    value = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if value < 1:
        raise ValueError(f"--kv-memory {text!r} must be > 0")
    return value


def add_parser(subparsers: Any, verb: str) -> None:
    p = subparsers.add_parser(verb, help="OpenAI-compatible HTTP server (and the web chat page)",
                              description=__doc__, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", help="checkpoint directory (config.json + safetensors, tokenizer.json)")
    p.add_argument("--tokenizer", help="tokenizer directory (default: MODEL_DIR)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (0.0.0.0 for all; default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--api-key", default=os.environ.get("STELLARBYTE_API_KEY"),
                   help="require 'Authorization: Bearer KEY' on /v1 paths (default: env STELLARBYTE_API_KEY; "
                        "unset = no key)")
    p.add_argument("--served-model-name", help="the name clients pass as 'model' (default: MODEL_DIR's name)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="weights and KV dtype (auto: bfloat16 on CUDA, float32 on CPU)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (CUDA when available)")
    p.add_argument("--quantize", default="none", choices=["none", "int8", "int8-dynamic", "int8-weight", "int4"],
                   help="quantize the linear layers with stellarbyte.infer.quant: int8 = dynamic int8 on CPU, "
                        "weight-only int8 on CUDA; int4 = group-wise weight-only (CUDA); default none")
    p.add_argument("--max-num-seqs", type=int, default=64, help="sequences per engine step (default 64)")
    p.add_argument("--max-num-batched-tokens", type=int, default=2048,
                   help="tokens computed per step, prefill chunks + decodes (default 2048)")
    p.add_argument("--block-size", type=int, default=16, help="tokens per KV block (default 16)")
    kv = p.add_mutually_exclusive_group()
    kv.add_argument("--num-blocks", type=int, help="KV pool size in blocks")
    kv.add_argument("--kv-memory", help="KV pool size in bytes, e.g. 512MiB or 4GiB")
    kv.add_argument("--gpu-memory-utilization", type=float,
                    help="CUDA: share of GPU memory the process may fill (weights + KV), e.g. 0.9")
    p.add_argument("--no-prefix-caching", action="store_true", help="disable the prefix cache")
    p.add_argument("--attention-backend", default="auto", choices=["auto", "torch", "flat", "triton"],
                   help="engine model runner: torch (padded reference), flat (varlen, torch paged attention), "
                        "triton (paged-attention kernel, CUDA); auto = triton on CUDA when it applies, else torch")
    p.add_argument("--no-cuda-graphs", action="store_true", help="do not capture decode steps in CUDA graphs")
    p.add_argument("--max-n", type=int, default=16, help="largest n (completions per prompt) a request may ask")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn log level (info logs one line per request)")
    p.set_defaults(func=run)


def build_llm(args: argparse.Namespace) -> Any:
    """The engine the server runs (LLM), with the model loaded, cast, moved and quantized."""
    from stellarbyte.infer.engine import LLM
    from stellarbyte.serve.loading import load_for_inference

    model, tokenizer = load_for_inference(args.model_dir, args.tokenizer, args.device, args.dtype, args.quantize,
                                          args.threads or None)
    engine = dict(block_size=args.block_size, max_num_seqs=args.max_num_seqs,
                  max_num_batched_tokens=args.max_num_batched_tokens, num_blocks=args.num_blocks,
                  enable_prefix_caching=not args.no_prefix_caching,
                  gpu_memory_utilization=args.gpu_memory_utilization, attention_backend=args.attention_backend,
                  cuda_graphs=not args.no_cuda_graphs)
    if args.kv_memory is not None:
        engine["kv_cache_memory_bytes"] = parse_bytes(args.kv_memory)
    return LLM(model, tokenizer=tokenizer, **engine)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from stellarbyte.serve.app import create_app

    if args.max_n < 1:
        raise ValueError(f"--max-n {args.max_n} must be >= 1")
    llm = build_llm(args)
    name = args.served_model_name or Path(args.model_dir).resolve().name
    app = create_app(llm, name, api_key=args.api_key or None, max_n=args.max_n)
    eng = llm.engine
    print(f"serving {name!r} ({args.model_dir}) on http://{args.host}:{args.port}/v1  "
          f"[{eng.model.device}, {eng.model.dtype}, {eng.kv_cache.num_blocks} KV blocks x {eng.config.block_size} "
          f"tokens, context {eng.context_length}, api key {'on' if args.api_key else 'off'}]", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
