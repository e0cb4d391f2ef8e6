"""The decoder-only Transformer: `ByteDecoder` (embeddings -> blocks -> final norm) and `ByteModel` (+ LM head).

One token's path: embed_tokens -> (+ absolute positions) -> N blocks, each reading rotary tables, the shared
mask and the caller's KV cache -> norm -> lm_head -> logits over the vocabulary.

Module names follow transformers' LlamaForCausalLM (model.embed_tokens, model.layers.i.self_attn.q_proj, ...,
model.norm, lm_head), so a Llama/Qwen/Mistral checkpoint maps onto this model with a tiny key map.

ByteModel.generate / from_pretrained / save_pretrained are thin conveniences that delegate upward to
stellarbyte.infer (generation, KV caches) and stellarbyte.hf (checkpoint formats); the model itself stays a
plain single-device nn.Module that never allocates KV memory.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from stellarbyte import kernels
from stellarbyte.config import ByteConfig
from stellarbyte.model.block import Block, build_block
from stellarbyte.model.kv import KVCache
from stellarbyte.model.masks import build_attention_mask
from stellarbyte.model.norm import build_norm
from stellarbyte.model.outputs import CausalLMOutput
from stellarbyte.model.position import build_position_encoding
from stellarbyte.model.tracing import is_tracing

IGNORE_INDEX = -100
TRAIN_LOSS_CHUNK = 2048  # tokens per chunk of the fused LM head + loss (see fused_causal_lm_loss)


class ByteDecoder(nn.Module):
    def __init__(self, config: ByteConfig) -> None:
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position = build_position_encoding(config)
        self.layers = nn.ModuleList(build_block(config, i) for i in range(config.num_hidden_layers))
        # post-norm blocks end in a norm already; only pre-norm stacks need a final one
        self.norm = build_norm(config) if config.norm_scheme == "pre" else nn.Identity()
        self.gradient_checkpointing = False

    def reserve_positions(self, length: int | None = None, device: torch.device | str | None = None) -> None:
        """Build position tables for `length` positions (default: the context window) on `device` up front,
        so a compiled or CUDA-graph-captured forward never grows them (which would read tensors on the host)."""
        device = torch.device(device) if device is not None else self.embed_tokens.weight.device
        self.position.reserve(length or self.config.context_length, device)

    def positions_from_mask(self, attention_mask: torch.Tensor, num_new: int) -> torch.Tensor:
        """Left padding: a token's position is the number of real tokens before it."""
        positions = attention_mask.long().cumsum(-1) - 1
        return positions.clamp(min=0)[:, -num_new:]

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, cache: KVCache | None = None,
                inputs_embeds: torch.Tensor | None = None,
                output_hidden_states: bool = False) -> tuple[torch.Tensor, list[torch.Tensor], tuple | None]:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids (B, T) or inputs_embeds (B, T, hidden)")
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds  # (B, T, H)
        b, t = x.shape[:2]
        if cache is None:
            query_slots = key_slots = torch.arange(t, device=x.device)
        else:
            query_slots, key_slots = cache.begin_step(t, x.device)
        if position_ids is None:
            if attention_mask is not None:
                position_ids = self.positions_from_mask(attention_mask, t)
            else:
                position_ids = query_slots[None].expand(b, t)
        limit = self.config.context_length
        if t and not is_tracing() and int(position_ids.max()) >= limit:
            raise ValueError(f"sequence reaches position {int(position_ids.max()) + 1} but the model's context "
                             f"window is {limit} tokens (max_position_embeddings); truncate the input or "
                             f"generate fewer tokens")

        absolute = self.position.embed(position_ids)
        if absolute is not None:
            x = x + absolute.to(x.dtype)
        x = F.dropout(x, self.config.embedding_dropout, self.training) if self.config.embedding_dropout else x
        rotary = self.position.rotary(position_ids)
        bias = self.position.attention_bias(query_slots, key_slots)
        window = self.config.sliding_window
        if cache is not None and cache.computes_attention:
            mask, is_causal = None, False  # the cache masks by its block tables
        elif cache is None and attention_mask is None and bias is None and (window is None or t <= window):
            mask, is_causal = None, True  # plain causal, decided without reading tensors (compile-friendly)
        else:
            mask, is_causal = build_attention_mask(query_slots, key_slots, attention_mask, window, bias, x.dtype)

        hidden_states = [] if output_hidden_states else None
        for layer in self.layers:
            if hidden_states is not None:
                hidden_states.append(x)
            layer.aux_losses.clear()
            if self.gradient_checkpointing and self.training:
                x = checkpoint(layer, x, rotary, mask, is_causal, cache, use_reentrant=False)
            else:
                x = layer(x, rotary, mask, is_causal, cache)
        x = self.norm(x)
        if hidden_states is not None:
            hidden_states.append(x)
        aux = [loss for layer in self.layers for loss in layer.aux_losses]
        return x, aux, tuple(hidden_states) if hidden_states is not None else None


class ByteModel(nn.Module):
    """Causal language model: ByteDecoder plus an LM head (optionally tied to the input embeddings)."""

    def __init__(self, config: ByteConfig) -> None:
        super().__init__()
        if not isinstance(config, ByteConfig):
            raise TypeError(f"ByteModel expects a ByteConfig, got {type(config).__name__}")
        self.config = config
        self.model = ByteDecoder(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.reset_parameters()
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    # ---- initialisation --------------------------------------------------------------------------------
    def reset_parameters(self) -> None:
        """Normal(0, initializer_range) everywhere; GPT-2 scales residual projections by 1/sqrt(2L);
        DeepNorm instead uses Xavier-normal with gain beta on v/o/MLP and gain 1 on q/k (DeepNet, Sec. 3)."""
        c = self.config
        std = c.initializer_range
        residual_std = std / math.sqrt(2 * c.num_hidden_layers) if c.scale_residual_init else std
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear):
                leaf = name.rsplit(".", 1)[-1]
                if c.norm_scheme == "deepnorm" and leaf != "lm_head":
                    gain = c.deepnorm_beta if leaf in ("v_proj", "o_proj", "gate_proj", "up_proj",
                                                       "down_proj") else 1.0
                    nn.init.xavier_normal_(module.weight, gain=gain)
                else:
                    is_residual = leaf in ("o_proj", "down_proj")
                    nn.init.normal_(module.weight, 0.0, residual_std if is_residual else std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, 0.0, std)

    # ---- forward ---------------------------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, past_key_values: KVCache | None = None,
                labels: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None,
                logits_to_keep: int | torch.Tensor = 0, output_hidden_states: bool = False,
                return_logits: bool = True, shift_labels: torch.Tensor | None = None,
                loss_reduction: str = "mean", **unused: Any) -> CausalLMOutput:
        """input_ids (B, T); attention_mask (B, past + T), 1 = token, 0 = padding; labels (B, T) with
        IGNORE_INDEX (-100) where no loss is wanted -- shifted inside, so labels may simply be input_ids.
        logits_to_keep > 0 computes logits for the last k positions only (generation); an int64 index tensor
        (K,) computes them at those positions only (the paged engine's flattened batch: each sequence's last
        scheduled token), giving logits (B, K, V).
        return_logits=False with labels: the loss goes through kernels.fused_linear_cross_entropy, which never
        materialises the (B, T, V) logits (the Triton path works in chunks), and `logits` comes back None.
        shift_labels (B, T), instead of labels: targets already aligned with the positions (shift_labels[:, t] is
        the token after position t), as transformers' loss functions take them; the last position can then have
        a target too (packed pretraining windows of T + 1 tokens).
        loss_reduction="sum": the SUM of token losses (float32), plus aux_loss x the number of targets, for a
        caller that divides by the targets of a whole accumulation window (HF's num_items_in_batch); the trainer
        uses this with return_logits=False."""
        for accepted in ("use_cache", "return_dict"):  # HF callers pass these; caching is decided by the cache
            unused.pop(accepted, None)
        if unused:
            raise TypeError(f"unexpected arguments to ByteModel.forward: {sorted(unused)}")
        hidden, aux, hidden_states = self.model(input_ids, attention_mask, position_ids, past_key_values,
                                                inputs_embeds, output_hidden_states)
        keep_some = isinstance(logits_to_keep, torch.Tensor) or logits_to_keep > 0
        if labels is not None and shift_labels is not None:
            raise ValueError("pass labels (unshifted) or shift_labels (aligned targets), not both")
        if loss_reduction not in ("mean", "sum"):
            raise ValueError(f"loss_reduction must be 'mean' or 'sum', got {loss_reduction!r}")
        if shift_labels is None and labels is not None:
            # position t predicts labels[t + 1]; the last position has no target
            shift_labels = torch.cat([labels[:, 1:], labels.new_full((labels.shape[0], 1), IGNORE_INDEX)], dim=1)
        if shift_labels is not None and keep_some:
            raise ValueError("labels need logits for every position; leave logits_to_keep at 0")
        if not return_logits and shift_labels is None:
            raise ValueError("return_logits=False only applies to a training forward: pass labels too")
        loss = aux_loss = logits = None
        if not return_logits:  # fused LM head + loss: no (B, T, V) logits
            loss = fused_causal_lm_loss(hidden, self.lm_head, shift_labels.to(hidden.device), loss_reduction)
        else:
            if isinstance(logits_to_keep, torch.Tensor):
                hidden = hidden.index_select(1, logits_to_keep)  # (B, K, H): the lm_head runs on K rows only
            elif logits_to_keep:
                hidden = hidden[:, -logits_to_keep:]
            logits = self.lm_head(hidden)  # (B, T', V)
            if labels is not None and loss_reduction == "mean":
                loss = causal_lm_loss(logits, labels)  # HF's exact arithmetic (logits shifted, not labels)
            elif shift_labels is not None:
                loss = kernels.cross_entropy(logits.flatten(0, 1), shift_labels.flatten().to(logits.device),
                                             ignore_index=IGNORE_INDEX, reduction=loss_reduction)
        if aux:
            aux_loss = torch.stack(aux).sum()
        if loss is not None and aux_loss is not None:
            if loss_reduction == "sum":  # the sum of per-token (loss + aux): aux once per target
                aux_loss_weight = (shift_labels != IGNORE_INDEX).sum()  # a tensor: no host sync
                loss = loss + aux_loss * aux_loss_weight
            else:
                loss = loss + aux_loss
        return CausalLMOutput(loss=loss, logits=logits, past_key_values=past_key_values, aux_loss=aux_loss,
                              hidden_states=hidden_states)

    @torch.no_grad()
    def forward_step(self, token_ids: torch.Tensor, cache: KVCache,
                     attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """One decoding step: token_ids (B,) or (B, T) appended to `cache`; returns next-token logits (B, V)."""
        if token_ids.dim() == 1:
            token_ids = token_ids[:, None]
        return self(token_ids, attention_mask=attention_mask, past_key_values=cache, logits_to_keep=1).logits[:, -1]

    # ---- conveniences ----------------------------------------------------------------------------------
    def gradient_checkpointing_enable(self) -> None:
        """Recompute each block's activations in backward instead of storing them (Chen et al., 2016)."""
        self.model.gradient_checkpointing = True

    def gradient_checkpointing_disable(self) -> None:
        self.model.gradient_checkpointing = False

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        params = {id(p): p for p in self.parameters()}  # tied weights count once
        if exclude_embeddings:
            params.pop(id(self.model.embed_tokens.weight), None)
            params.pop(id(self.lm_head.weight), None)
        return sum(p.numel() for p in params.values())

    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.lm_head.weight.dtype

    @property
    def blocks(self) -> list[Block]:
        return list(self.model.layers)

    def generate(self, input_ids: torch.Tensor, **kwargs: Any) -> Any:
        """Greedy or sampled generation; see stellarbyte.infer.generate.generate for every argument."""
        from stellarbyte.infer.generate import generate

        return generate(self, input_ids, **kwargs)

    def save_pretrained(self, directory: str | Path, **kwargs: Any) -> None:
        """config.json + model.safetensors + generation_config.json; HF-native when the config allows."""
        from stellarbyte.hf.checkpoint import save_pretrained

        save_pretrained(self, directory, **kwargs)

    @classmethod
    def from_pretrained(cls, directory: str | Path, **kwargs: Any) -> ByteModel:
        """Load our checkpoints or HF Llama / Qwen2 / Qwen3 / Mistral ones (single or sharded safetensors)."""
        from stellarbyte.hf.checkpoint import load_pretrained

        return load_pretrained(directory, **kwargs)


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of predicting token t+1 from position t, skipping IGNORE_INDEX targets."""
    shifted_logits = logits[:, :-1].reshape(-1, logits.shape[-1])  # (B * (T-1), V)
    shifted_labels = labels[:, 1:].reshape(-1).to(logits.device)
    # the registry's reference upcasts to float32 and calls F.cross_entropy, as this function used to
    return kernels.cross_entropy(shifted_logits, shifted_labels, ignore_index=IGNORE_INDEX)


def fused_causal_lm_loss(hidden: torch.Tensor, lm_head: nn.Linear, targets: torch.Tensor,
                         reduction: str = "mean") -> torch.Tensor:
    """cross_entropy(lm_head(hidden), targets) without the logits: hidden (B, T, H), targets (B, T) ALIGNED with
    the positions (IGNORE_INDEX where no loss is wanted) -> mean or summed loss (float32).

    The caller shifts the labels rather than the hidden states, so `hidden` is passed whole and contiguous.
    Chunks of TRAIN_LOSS_CHUNK tokens: measured 38.0 vs 40.5 ms (the kernel's default 1024) for the llama-1b
    LM head + loss forward and backward on an H100 (docs/training_performance.md), ~0.5 GB more at vocab 128k."""
    weight, bias = lm_head.weight, lm_head.bias
    device_type = hidden.device.type
    if torch.is_autocast_enabled(device_type):  # what autocast would give lm_head: both operands in its dtype
        dtype = torch.get_autocast_dtype(device_type)
        hidden, weight = hidden.to(dtype), weight.to(dtype)
        bias = bias.to(dtype) if bias is not None else None
    return kernels.fused_linear_cross_entropy(hidden, weight, targets, bias, ignore_index=IGNORE_INDEX,
                                              chunk_size=TRAIN_LOSS_CHUNK, reduction=reduction)
