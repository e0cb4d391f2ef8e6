"""Engine settings (vLLM names) and the KV-pool sizing rule.

KV memory: num_blocks if given, else kv_cache_memory_bytes // bytes_per_block (see kv_cache.py), else on a GPU
with gpu_memory_utilization set: util * total device memory - memory already in use (weights, other tensors),
as vLLM, else enough blocks for max_num_seqs sequences of a full context window, capped at DEFAULT_KV_BYTES.

Attention backends (which model runner runs a step):
  "torch"  model_runner.ModelRunner: rows padded to (B, T), each row's blocks gathered into contiguous K/V; the
           reference every other path is tested against; any model, any device
  "flat"   flat_runner.FlatModelRunner with the torch reference paged attention: one flattened row of tokens
  "triton" flat_runner.FlatModelRunner with the Triton paged-attention kernel; with cuda_graphs on a GPU, decode
           steps replay captured CUDA graphs
  "auto"   "triton" on CUDA when triton is importable and the model suits the flat path, else "torch"
compile_decode (flat runners only): decode steps of up to compile_max_batch_size sequences run a torch.compile'd
forward (fused elementwise work around custom-op attention), captured in the CUDA graphs; None = on for "triton"
with CUDA graphs on a GPU. It costs start-up time: one compile per captured batch size up to the limit (about 38 s
each for the Qwen3-0.6B shape on the H100 host; 3 sizes took 115 s), hence batch 1 alone by default.
fuse_projections (with compile_decode): the compiled step runs q/k/v and gate/up as one GEMM each, from a fused copy
of those weights built at start-up (the model's modules and names are untouched; fuse_projections.py).
sample_in_graph (CUDA graphs): decode graphs also draw the tokens (fused Gumbel-max sampler) for batches whose rows
are greedy or plain temperature sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

DEFAULT_KV_BYTES = 1 << 30  # 1 GiB
ATTENTION_BACKENDS = ("auto", "torch", "flat", "triton")


@dataclass(slots=True)
class EngineConfig:
    block_size: int = 16  # tokens per KV block
    num_blocks: int | None = None  # KV pool size in blocks (overrides the memory budget)
    kv_cache_memory_bytes: int | None = None  # KV pool size in bytes
    max_num_seqs: int = 64  # sequences in one step
    max_num_batched_tokens: int = 2048  # tokens computed in one step (prefill chunks + decodes)
    enable_prefix_caching: bool = True
    gpu_memory_utilization: float | None = None  # share of the GPU's memory the process may fill (CUDA only)
    attention_backend: str = "auto"  # "auto" | "torch" | "flat" | "triton" (see the module docstring)
    cuda_graphs: bool = True  # capture decode steps in CUDA graphs (triton backend on CUDA only)
    overlap_steps: bool | None = None  # launch step i+1 before building step i's outputs (None: on for flat/CUDA)
    compile_decode: bool | None = None  # torch.compile small decode steps (None: on for triton + graphs on CUDA)
    compile_max_batch_size: int = 1  # the largest decode batch (padded graph size) that runs compiled
    fuse_projections: bool = True  # in the compiled step: q/k/v -> one GEMM, gate/up -> one GEMM
    sample_in_graph: bool = True  # decode graphs also run the fused sampler (greedy / plain temperature rows)

    def __post_init__(self) -> None:
        for name in ("block_size", "max_num_seqs", "max_num_batched_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"EngineConfig.{name}={value!r} must be an int >= 1")
        if self.num_blocks is not None and (not isinstance(self.num_blocks, int) or self.num_blocks < 1):
            raise ValueError(f"EngineConfig.num_blocks={self.num_blocks!r} must be an int >= 1 or None")
        if self.kv_cache_memory_bytes is not None and self.kv_cache_memory_bytes < 1:
            raise ValueError(f"EngineConfig.kv_cache_memory_bytes={self.kv_cache_memory_bytes!r} must be > 0")
        util = self.gpu_memory_utilization
        if util is not None and not 0 < util <= 1:
            raise ValueError(f"EngineConfig.gpu_memory_utilization={util!r} must be in (0, 1]")
        if self.attention_backend not in ATTENTION_BACKENDS:
            raise ValueError(f"EngineConfig.attention_backend={self.attention_backend!r} must be one of "
                             f"{ATTENTION_BACKENDS}")
        if self.overlap_steps is not None and not isinstance(self.overlap_steps, bool):
            raise ValueError(f"EngineConfig.overlap_steps={self.overlap_steps!r} must be True, False or None")
        if self.compile_decode is not None and not isinstance(self.compile_decode, bool):
            raise ValueError(f"EngineConfig.compile_decode={self.compile_decode!r} must be True, False or None")
        if not isinstance(self.compile_max_batch_size, int) or self.compile_max_batch_size < 1:
            raise ValueError(f"EngineConfig.compile_max_batch_size={self.compile_max_batch_size!r} must be an int "
                             f">= 1 (decode batches up to this size run compiled)")
        for name in ("fuse_projections", "sample_in_graph"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"EngineConfig.{name}={getattr(self, name)!r} must be True or False")
        if not isinstance(self.cuda_graphs, bool):
            raise ValueError(f"EngineConfig.cuda_graphs={self.cuda_graphs!r} must be True or False")

    def resolve_num_blocks(self, bytes_per_block: int, context_length: int) -> int:
        if self.num_blocks is not None:
            return self.num_blocks
        budget = self.kv_cache_memory_bytes
        if budget is None:
            per_seq = -(-context_length // self.block_size)
            return max(1, min(self.max_num_seqs * per_seq, DEFAULT_KV_BYTES // bytes_per_block))
        blocks = budget // bytes_per_block
        if blocks < 1:
            raise ValueError(f"kv_cache_memory_bytes={budget} is smaller than one KV block ({bytes_per_block} "
                             f"bytes); raise it or lower block_size")
        return blocks


def kv_budget_from_utilization(free_bytes: int, total_bytes: int, utilization: float) -> int:
    """Bytes the KV pool may take: utilization * total minus what is already in use."""
    budget = int(utilization * total_bytes) - (total_bytes - free_bytes)
    if budget <= 0:
        raise ValueError(f"gpu_memory_utilization={utilization} allows {utilization * total_bytes / 2**30:.1f} GiB but "
                         f"{(total_bytes - free_bytes) / 2**30:.1f} GiB are already in use; raise it or free memory")
    return budget


def resolve_attention_backend(requested: str, device: torch.device, dtype: torch.dtype,
                              unsupported_reason: str | None) -> str:
    """"auto" -> "triton" on CUDA (triton importable, a float16/bfloat16/float32 model suited to the flat path),
    else "torch"."""
    if requested != "auto":
        return requested
    if device.type != "cuda" or unsupported_reason is not None:
        return "torch"
    if dtype not in (torch.float16, torch.bfloat16, torch.float32):
        return "torch"  # e.g. float64 exactness runs: the Triton kernel has no float64 path
    try:
        import triton  # noqa: F401
    except ImportError:
        return "torch"
    return "triton"
