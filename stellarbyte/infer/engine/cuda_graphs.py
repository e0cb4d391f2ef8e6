"""CUDA graphs for decode-only steps: one graph per batch size, replayed with fresh metadata in static buffers.

References: vLLM's CUDAGraphRunner / nano-vllm's capture_cudagraph; PyTorch's torch.cuda.graph (capture on a side
stream, replay on the current one, graphs sharing one memory pool).
Why: a decode step of a 28-layer model is ~300 small kernels; launched from Python each costs microseconds of CPU,
so at batch 1 the GPU idles between them. A graph replays the whole forward as one launch.
Contract: a graph is captured for B in sizes (1, 2, 4, ..., max_num_seqs); a decode step of b sequences replays the
smallest captured B >= b with the step padded to B (flat_batch.py's pad sequences: seq_len 0, no cache write).
The graph's inputs are views of FlatBatchBuilder's device mirror, so filling the mirror IS feeding the graph; its
output is a static (B, V) logits tensor overwritten by each replay. The model must not read tensors on the host
while capturing (stellarbyte.model.tracing) and its position tables are reserved for the whole window first.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

import torch

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
                 sizes: list[int]) -> None:
        self.builder, self.forward, self.sizes = builder, forward, sorted(sizes)
        self.graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
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
            self.forward(meta)  # warm-up outside the graph: Triton compiles, cuBLAS picks its kernels
            torch.cuda.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self.pool):
                logits = self.forward(meta)  # (size, V), static
            self.pool = graph.pool()
            self.graphs[size] = (graph, logits)
        torch.cuda.synchronize()

    def replay(self, size: int) -> torch.Tensor:
        graph, logits = self.graphs[size]
        graph.replay()
        return logits

    def _dummy_decode(self, size: int) -> FlatStepMetadata:
        """A valid decode step for capture: every sequence reads key 0 of block 0 and writes nothing."""
        b = self.builder
        h = b.host_np
        for index, values in ((0, 0), (1, 0), (2, -1), (5, 1)):
            start = b.offsets[index]
            h[start:start + size] = values
        h[b.offsets[3]:b.offsets[3] + size] = range(size)
        h[b.offsets[4]:b.offsets[4] + size + 1] = range(size + 1)
        h[b.offsets[6]:b.offsets[6] + size * b.width] = 0
        b.forget_rows()
        b.mirror.copy_(b.host)
        return b.views(size, size, 1)
