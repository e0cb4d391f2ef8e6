"""Model analysis: parameter counts, FLOPs, activation and KV-cache memory, and a per-module table.

Every number is a pure function of a ByteConfig (plus batch size, sequence length and dtype); nothing here
allocates weights. The per-module table builds the model on the meta device, so it is free for 70B shapes too.
`model_flops_per_token` is the function MFU code uses.

Conventions (the docs page docs/model_analysis.md restates them):
  * A FLOP is one multiply or one add; a (m x k) @ (k x n) matmul costs 2 m k n. Only matmuls are counted:
    projections, the LM head, and attention's QK^T and AV. Norms, activations, softmax, bias adds and RoPE are
    left out (they are O(hidden) per token against O(hidden^2)), as in Kaplan et al. (2020) and PaLM.
  * Projections cost 2 FLOPs per weight per token. The LM head costs 2 V H per token even when tied (the
    matmul happens either way). The embedding lookup costs nothing.
  * Attention scores cost 2 * 2 * T_ctx * head_dim * num_attention_heads per layer per token (QK^T plus AV),
    where T_ctx is the number of keys a query attends to: `full` (PaLM/Kaplan: T_ctx = T, what a dense
    kernel computes) or `causal` (the mean over query positions of the keys actually visible: (T + 1) / 2).
    A sliding window W caps each query's context at W keys.
  * Training = forward + backward = 3 x forward (backward computes gradients for inputs and for weights, each
    a matmul the size of the forward one). Gradient checkpointing, as ByteModel applies it (per block),
    re-runs each block's forward once more in backward: + 1 forward of the blocks, not of the LM head --
    less one matmul: torch's non-reentrant checkpoint stops recomputing once every tensor backward needs
    exists again, so a block ending in `x + down_proj(h)` (pre-norm or parallel, no LayerScale, dropout or
    DropPath after it) never recomputes down_proj.
  * model_flops_per_token(config, T, training=True) = 6 N + 12 L H Q T_ctx, PaLM (Chowdhery et al., 2022,
    appendix B), with N = weights in matmuls (LM head included, embedding lookup excluded) and the `full`
    context convention capped by the sliding window. It excludes recomputation: that is "model FLOPs", the
    numerator of MFU; counting recomputation gives "hardware FLOPs" (HFU).

Activation memory counts the tensors autograd keeps from forward for backward, as this repository's modules
produce them in eager PyTorch with the model held in `dtype` (no autocast): the accounting follows Korthikanti
et al. (2022), "Reducing Activation Recomputation in Large Transformer Models", tensor by tensor, and
tests/model/test_analysis.py checks it against torch.autograd.graph.saved_tensors_hooks. Weights, gradients,
optimizer state and temporary buffers freed during forward are not activations and are not counted.
`sdpa`/`auto` attention is assumed to run a fused kernel (flash / memory-efficient: O(T) memory, no score
matrix), which is what CUDA does in 16-bit (checked on an H100). In float32 CUDA's SDPA took a path that keeps
more (measured with grouped KV heads): estimate that case with attention_implementation='eager'.

References: Kaplan et al., 2020, "Scaling Laws for Neural Language Models" (C = 6N); Hoffmann et al., 2022,
"Training Compute-Optimal Large Language Models" (Chinchilla, C = 6ND); Chowdhery et al., 2022, "PaLM",
appendix B (MFU); Korthikanti et al., 2022 (activation memory); Dao et al., 2022, FlashAttention (O(T) memory).

Layout: params.py (parameter counts), flops.py (FLOPs, MFU), memory.py (KV cache, activations),
modules.py (per-module table), report.py (ModelReport, analyze), units.py (dtypes, human-readable units).
"""

from stellarbyte.model.analysis.flops import (
    CONTEXT_CONVENTIONS,
    FlopCounts,
    attention_context,
    count_flops,
    mfu,
    model_flops_per_token,
)
from stellarbyte.model.analysis.memory import ActivationItem, ActivationMemory, activation_memory, kv_cache_bytes
from stellarbyte.model.analysis.modules import ModuleRow, module_table
from stellarbyte.model.analysis.params import ParameterCounts, count_parameters, norm_parameters
from stellarbyte.model.analysis.report import ModelReport, analyze, format_modules
from stellarbyte.model.analysis.units import DTYPE_ALIASES, dtype_bytes, dtype_name

__all__ = [
    "CONTEXT_CONVENTIONS", "DTYPE_ALIASES", "ActivationItem", "ActivationMemory", "FlopCounts", "ModelReport",
    "ModuleRow", "ParameterCounts", "activation_memory", "analyze", "attention_context", "count_flops",
    "count_parameters", "dtype_bytes", "dtype_name", "format_modules", "kv_cache_bytes", "mfu",
    "model_flops_per_token", "module_table", "norm_parameters",
]
