"""Server metrics: engine state (queues, KV blocks, prefix cache) plus request counters, as JSON or Prometheus.

Reference: the Prometheus text exposition format (`# HELP`, `# TYPE`, `name value` lines); metric names
follow vLLM's (`vllm:num_requests_running` -> `stellarbyte_num_requests_running`, ...).
Contract: a snapshot only reads the engine (list lengths, counters) and is safe while a step runs in the
worker thread; `kv_blocks_free == kv_blocks_total` means no request holds KV memory (cached-but-free prefix
blocks count as free: they are reclaimable).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# name -> (type, help)
_HELP = {
    "num_requests_running": ("gauge", "sequences in the running batch"),
    "num_requests_waiting": ("gauge", "sequences waiting for admission"),
    "kv_blocks_total": ("gauge", "KV cache blocks in the pool"),
    "kv_blocks_free": ("gauge", "KV cache blocks on the free list (cached prefix blocks included)"),
    "kv_blocks_used": ("gauge", "KV cache blocks held by sequences"),
    "kv_cache_usage": ("gauge", "share of KV blocks held by sequences"),
    "prefix_cache_hit_rate": ("gauge", "cached prompt tokens / prompt tokens looked up"),
    "num_preemptions_total": ("counter", "sequences preempted by recomputation"),
    "engine_steps_total": ("counter", "engine steps run"),
    "generation_tokens_total": ("counter", "tokens sampled by the engine"),
    "prompt_tokens_total": ("counter", "prompt tokens of accepted HTTP requests"),
    "requests_total": ("counter", "accepted HTTP generation requests"),
    "requests_finished_total": ("counter", "HTTP generation requests answered in full"),
    "requests_aborted_total": ("counter", "HTTP generation requests stopped early (client disconnect)"),
}


@dataclass(slots=True)
class RequestCounters:
    requests_total: int = 0
    requests_finished_total: int = 0
    requests_aborted_total: int = 0
    prompt_tokens_total: int = 0


def snapshot(engine: Any, counters: RequestCounters) -> dict[str, float]:
    sched, blocks = engine.scheduler, engine.block_manager
    total = engine.kv_cache.num_blocks
    free = blocks.num_free_blocks
    return {
        "num_requests_running": len(sched.running),
        "num_requests_waiting": len(sched.waiting),
        "kv_blocks_total": total,
        "kv_blocks_free": free,
        "kv_blocks_used": total - free,
        "kv_cache_usage": (total - free) / total,
        "prefix_cache_hit_rate": blocks.stats.hit_rate,
        "num_preemptions_total": sched.num_preemptions,
        "engine_steps_total": engine.stats.num_steps,
        "generation_tokens_total": engine.stats.num_generated_tokens,
        "prompt_tokens_total": counters.prompt_tokens_total,
        "requests_total": counters.requests_total,
        "requests_finished_total": counters.requests_finished_total,
        "requests_aborted_total": counters.requests_aborted_total,
    }


def prometheus_text(values: dict[str, float], prefix: str = "stellarbyte_") -> str:
    lines = []
    for name, value in values.items():
        kind, text = _HELP[name]
        lines += [f"# HELP {prefix}{name} {text}", f"# TYPE {prefix}{name} {kind}", f"{prefix}{name} {value}"]
    return "\n".join(lines) + "\n"
