"""Is the model being traced? While torch.compile traces or a CUDA graph captures, code must not read tensor
values on the host (`int(t.max())`, `bool(t.all())`): under compile that breaks the graph, under capture it is
an error. The model then skips its host-side checks and uses position tables reserved beforehand
(`ByteDecoder.reserve_positions`).
"""

from __future__ import annotations

import torch


def is_tracing() -> bool:
    """True inside torch.compile tracing or a CUDA-graph capture on the current stream."""
    if torch.compiler.is_compiling():
        return True
    return torch.cuda.is_available() and torch.cuda.is_initialized() and torch.cuda.is_current_stream_capturing()
