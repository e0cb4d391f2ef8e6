"""CUDA graphs for decode-only steps: one graph per batch size, replayed with fresh metadata in static buffers.

References: vLLM's CUDAGraphRunner / nano-vllm's capture_cudagraph; PyTorch's torch.cuda.graph (capture on a side
stream, replay on the current one, graphs sharing one memory pool).
Why: a decode step of a 28-layer model is ~300 small kernels; launched from Python each costs microseconds of CPU,
so at batch 1 the GPU idles between them. A graph replays the whole forward as one launch.
Contract: a graph is captured for B in sizes (1, 2, 4, ..., max_num_seqs); a decode step of b sequences replays the
smallest captured B >= b with the step padded to B (flat_batch.py's pad sequences: seq_len 0, no cache write).
The graph's inputs are views of FlatBatchBuilder's device mirror, so filling the mirror IS feeding the graph; its
outputs are a static (B, V) logits tensor and, with a sampler (the fused Gumbel-max pass reading 1/T and the seed
from the mirror), static (B,) token ids, both overwritten by each replay: read them before the next replay.
Sampling inside the graph saves the sampler's launches and host work on every decode step.
The model must not read tensors on the host while capturing (stellarbyte.model.tracing) and its position tables
are reserved for the whole window first.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

import torch

from stellarbyte.infer.engine import flat_batch as fb
from stellarbyte.infer.engine.flat_batch import FlatBatchBuilder, FlatStepMetadata


def capture_sizes(max_num_seqs: int, largest: int = 512) -> list[int]:
    """Powers of two below max_num_seqs, then max_num_seqs itself (capped at `largest`)."""
    top = min(max_num_seqs, largest)
    sizes, s = [], 1
    while s < top:
        sizes.append(s)
        s *= 2
    return sizes + [top]


class DecodeGraphs:
    def __init__(self, builder: FlatBatchBuilder, forward: Callable[[FlatStepMetadata], torch.Tensor],
                 sizes: list[int], sample: Callable[[torch.Tensor, FlatStepMetadata], torch.Tensor] | None = None):
        self.builder, self.forward, self.sizes, self.sample = builder, forward, sorted(sizes), sample
        self.graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor | None]] = {}
        self.pool = None

    @property
    def max_size(self) -> int:
        return self.sizes[-1]

    def size_for(self, num_seqs: int) -> int:
        return self.sizes[bisect.bisect_left(self.sizes, num_seqs)]

    @torch.inference_mode()
    def capture(self) -> None:
        for size in reversed(self.sizes):  # largest first: the shared pool is sized once
            meta = self._dummy_decode(size)
            self._step(meta)  # warm-up outside the graph: Triton and inductor compile, cuBLAS picks its kernels
            torch.cuda.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self.pool):
                logits, ids = self._step(meta)  # (size, V) and (size,) or None, static
            self.pool = graph.pool()
            self.graphs[size] = (graph, logits, ids)
        torch.cuda.synchronize()

    def _step(self, meta: FlatStepMetadata) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits = self.forward(meta)
        return logits, None if self.sample is None else self.sample(logits, meta)

    def replay(self, size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits (size, V), token ids (size,) or None without a sampler), static: valid until the next replay."""
        graph, logits, ids = self.graphs[size]
        graph.replay()
        return logits, ids

    def _dummy_decode(self, size: int) -> FlatStepMetadata:
        """A valid decode step for capture: every sequence reads key 0 of block 0 and writes nothing."""
        b = self.builder
        h = b.host_np
        for index, values in ((fb.IDS, 0), (fb.POSITIONS, 0), (fb.SLOTS, -1), (fb.SEQ_LENS, 1),
                              (fb.INV_TEMPERATURE, 0)):  # 0 is also 0.0 as float64 bits: greedy
            start = b.offsets[index]
            h[start:start + size] = values
        h[b.offsets[fb.SEED]] = 0
        h[b.offsets[fb.LOGITS_INDICES]:b.offsets[fb.LOGITS_INDICES] + size] = range(size)
        h[b.offsets[fb.CU_SEQLENS]:b.offsets[fb.CU_SEQLENS] + size + 1] = range(size + 1)
        h[b.offsets[fb.TABLES]:b.offsets[fb.TABLES] + size * b.width] = 0
        b.forget_rows()
        b.mirror.copy_(b.host)
        return b.views(size, size, 1)
