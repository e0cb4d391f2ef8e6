"""Tensor parallelism (Megatron-LM style) for a ByteModel's blocks through DTensor `parallelize_module`.

Per block, on the "tp" mesh dimension of size t (Shoeybi et al., 2019, "Megatron-LM", Sec. 3):

    attention  q, k, v = x Wq, x Wk, x Wv     ColwiseParallel: W (out, in) split on out = by heads; each rank
                                               computes its Hq/t query heads and Hkv/t KV heads (no communication)
               out = concat_heads(...) Wo      RowwiseParallel: Wo split on in; each rank's partial product is
                                               summed by one all-reduce of (B, T, hidden)
    MLP        g, u = x Wg, x Wu               ColwiseParallel (intermediate/t columns each)
               y = act(g) * u Wd               RowwiseParallel + all-reduce

So a block costs two all-reduces of the activations forward and two backward (the grad of x at the column
split), and each rank stores 1/t of the projection weights. Embeddings, norms and the LM head stay replicated
(identical on every tp rank, their gradients identical because the input-gradient all-reduce at the column split
makes every rank see the full dL/dx). The attention module infers its local head count from the projection
shapes, so the model code is unchanged (model/attention.py).

Not covered: sequence parallelism of norms/dropout, vocab-parallel embedding and loss (torchtitan adds both);
MoE experts; KV-cache generation on a TP model (the cache is sized by the config's head counts).
"""

from __future__ import annotations

from torch import nn

# projection name inside a block -> "colwise" | "rowwise" (HF names, DESIGN.md)
BLOCK_PLAN = {
    "self_attn.q_proj": "colwise", "self_attn.k_proj": "colwise", "self_attn.v_proj": "colwise",
    "self_attn.o_proj": "rowwise",
    "mlp.gate_proj": "colwise", "mlp.up_proj": "colwise", "mlp.down_proj": "rowwise",
}


def check_tensor_parallel(config, tp: int) -> None:
    """Raise ValueError naming the field when `config` cannot be split `tp` ways."""
    if tp == 1:
        return
    if getattr(config, "attention_type", "mha") != "mha":
        raise ValueError(f"tensor parallel supports attention_type mha, not {config.attention_type!r}")
    if config.mlp_type not in ("swiglu", "geglu", "gelu", "relu2"):
        raise ValueError(f"tensor parallel splits dense MLPs only, not mlp_type {config.mlp_type!r}; use "
                         f"parallel fsdp without tensor_parallel")
    for key in ("num_attention_heads", "num_key_value_heads", "intermediate_size"):
        value = getattr(config, key)
        if value % tp:
            raise ValueError(f"tensor_parallel {tp} must divide model.{key} ({value}); pick a divisor")


def block_plan(block: nn.Module) -> dict:
    """The parallelize_module plan for one block: the projections it has (gated or plain MLP)."""
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel

    plan = {}
    for name, kind in BLOCK_PLAN.items():
        try:
            sub = block.get_submodule(name)
        except AttributeError:  # e.g. a plain MLP has no gate_proj
            continue
        if isinstance(sub, nn.Linear):
            plan[name] = ColwiseParallel() if kind == "colwise" else RowwiseParallel()
    return plan


def apply_tensor_parallel(model: nn.Module, tp_mesh) -> None:
    """Shard every block's projections over `tp_mesh` (1-D DeviceMesh) in place."""
    from torch.distributed.tensor.parallel import parallelize_module

    for block in model.model.layers:
        plan = block_plan(block)
        if "self_attn.q_proj" not in plan:
            raise ValueError("tensor parallel needs blocks with q/k/v/o_proj linear layers")
        parallelize_module(block, tp_mesh, plan)
