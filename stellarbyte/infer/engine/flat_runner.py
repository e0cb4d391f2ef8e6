"""The engine's fast model runner: one flattened row of all scheduled tokens, paged attention, CUDA graphs.

Reference: vLLM v1's GPUModelRunner (flattened varlen batch, logits only at each sequence's last token, CUDA graphs
for decode), nano-vllm's ModelRunner. Compare model_runner.py, the padded torch reference this path must match.
One step:
  1. flat_batch.FlatBatchBuilder fills ids/positions/slots/cu_seqlens/seq_lens/block tables on the host and copies
     them to the device in one transfer;
  2. decode-only steps (every sequence computes 1 token) of up to max_num_seqs sequences replay a captured CUDA
     graph (cuda_graphs.py) padded to the next captured batch size; steps with prefill tokens run eagerly;
  3. the model runs on input_ids (1, N) with position_ids (1, N) and a FlatStepCache (flat_cache.py) that writes
     K/V at their slots and runs paged attention; logits_to_keep = each sequence's last token -> (B, V).
compile_decode: decode steps of up to compile_max_batch_size sequences run a torch.compile'd forward (inductor fuses
RMSNorm, QK-norm, RoPE, SiLU * up and the residual adds; paged attention and the KV write are custom ops,
kernels/ops/paged_library.py), compiled once per captured batch size at start-up and then captured in the CUDA
graphs, so a batch-1 decode replays fewer, fused kernels. Larger decode steps and prefill steps stay eager (there
the step is attention- and GEMM-bound, and compiling every size would cost start-up time). With fuse_projections the
compiled graph also computes q/k/v and gate/up as one GEMM each (fuse_projections.py; the model is untouched).
sample_in_graph: the decode graphs also run the fused Gumbel-max sampler (1/T and the seed come with the step's
metadata), so run() leaves the sampled ids in self.graph_ids; the engine uses them when every row is one the fused
sampler serves (greedy or plain temperature), else it samples the logits as usual.
Backends: "triton" (Triton kernels; CUDA graphs on CUDA) or "flat" (torch reference attention, CPU-testable).
Unsupported models raise ValueError (auto picks the torch path for them): ALiBi (its bias needs the slot distances
the flat path does not build) and dynamic-NTK RoPE (its frequencies follow the batch's longest position).
"""

from __future__ import annotations

import types

import torch

from stellarbyte.infer.engine.cuda_graphs import DecodeGraphs, capture_sizes
from stellarbyte.infer.engine.flat_batch import FlatBatchBuilder, FlatStepMetadata
from stellarbyte.infer.engine.flat_cache import FlatStepCache
from stellarbyte.infer.engine.fuse_projections import fusing_inductor_backend
from stellarbyte.infer.engine.kv_cache import PagedKVCache
from stellarbyte.infer.engine.scheduler import ScheduledBatch


def _graph_sampler(logits: torch.Tensor, meta: FlatStepMetadata) -> torch.Tensor:
    """The fused Gumbel-max sampler on a decode graph's logits, 1/T and seed read from the step buffer: (B,) ids."""
    from stellarbyte.kernels.ops.sampling import sample_rows

    return sample_rows(logits, meta.inv_temperature, meta.seed, any_sampled=True)


def _own_code(method):
    """A copy of a bound method whose function has its OWN code object. Dynamo keeps its cache of compiled graphs,
    and the recompile limit, per code object: compiling the class's method directly would make every engine of a
    process (tests, a server that rebuilds its engine, the benchmark's variants) add its graphs to one shared cache
    and fail with fullgraph=True once 8 are there. With a private code object each runner's cache lives and dies
    with the runner."""
    f = method.__func__
    clone = types.FunctionType(f.__code__.replace(), f.__globals__, f.__name__, f.__defaults__, f.__closure__)
    return types.MethodType(clone, method.__self__)


def flat_path_unsupported(config) -> str | None:
    """Why a model config cannot run on the flattened path, or None."""
    if config.position_embedding_type == "alibi":
        return "ALiBi adds a slot-distance bias that the paged-attention kernel does not compute"
    rope = getattr(config, "rope_config", None)
    if config.position_embedding_type in ("rope", "xpos") and rope is not None and rope.rope_type == "dynamic":
        return "dynamic-NTK RoPE rescales with the batch's longest position, not each sequence's own length"
    if config.attention_type != "mha":
        return f"attention_type={config.attention_type!r} is not plain multi-head attention"
    return None


class FlatModelRunner:
    def __init__(self, model, cache: PagedKVCache, backend: str, max_num_seqs: int, max_num_batched_tokens: int,
                 cuda_graphs: bool = True, compile_decode: bool = False, compile_max_batch_size: int = 1,
                 fuse_projections: bool = False, sample_in_graph: bool = False) -> None:
        reason = flat_path_unsupported(model.config)
        if reason:
            raise ValueError(f"attention_backend={backend!r} cannot run this model: {reason}; use "
                             f"attention_backend='torch'")
        self.model, self.cache, self.backend = model, cache, backend
        self.device = model.device
        self.block_size = cache.block_size
        self.num_kv_heads = model.config.num_key_value_heads
        self.window = model.config.sliding_window
        context = model.config.context_length
        width = -(-context // self.block_size)  # block-table columns for a full window
        use_graphs = cuda_graphs and backend == "triton" and self.device.type == "cuda"
        sizes = capture_sizes(max_num_seqs) if use_graphs else []
        max_seqs = max([max_num_seqs, *sizes])
        self.builder = FlatBatchBuilder(max(max_num_batched_tokens, max_seqs), max_seqs, width, self.block_size,
                                        self.device)
        self.compile_max_batch_size = compile_max_batch_size if compile_decode else 0
        self.compiled = None
        if compile_decode:
            import stellarbyte.kernels.ops.paged_library  # noqa: F401  (registers torch.ops.stellarbyte.paged_*)

            model.model.reserve_positions(context, self.device)  # no table growth (host reads) while tracing
            # one graph per batch size (dynamic=False: static shapes, no symbolic-size kernels); fullgraph: a graph
            # break would silently fall back to eager pieces
            self.fused_weights: dict = {}  # shared by the graphs of every batch size
            self.fused_groups: list[int] = []  # projection groups fused, per compiled graph
            backend = fusing_inductor_backend(self.fused_weights, self.fused_groups) if fuse_projections else "inductor"
            self.compiled = torch.compile(_own_code(self._model_forward), backend=backend, dynamic=False,
                                          fullgraph=True)
        self.graphs = None
        self.graph_ids: torch.Tensor | None = None  # ids sampled by the last replayed graph (sample_in_graph)
        if use_graphs:
            model.model.reserve_positions(context, self.device)  # no table growth (host reads) under capture
            self.graphs = DecodeGraphs(self.builder, self.forward, sizes, _graph_sampler if sample_in_graph else None)
            self.graphs.capture()

    def num_splits(self, meta: FlatStepMetadata) -> int:
        if self.backend != "triton":
            return 1
        from stellarbyte.kernels.ops.paged_attention import default_num_splits

        return default_num_splits(meta.num_tokens, self.num_kv_heads, meta.max_query_len, self.device)

    def uses_compiled(self, meta: FlatStepMetadata) -> bool:
        """Decode steps of up to compile_max_batch_size sequences (padding included) run the compiled forward."""
        return (self.compiled is not None and meta.max_query_len == 1
                and meta.num_seqs <= self.compile_max_batch_size)

    def forward(self, meta: FlatStepMetadata) -> torch.Tensor:
        """Logits (B, V) at each sequence's last token, in the model's dtype."""
        splits = self.num_splits(meta)  # a host int, decided outside the compiled graph
        if self.uses_compiled(meta):
            # one graph per batch size: up to compile_max_batch_size of them (without CUDA graphs every size is
            # seen), which may exceed dynamo's default limit of 8 per function
            with torch._dynamo.config.patch(recompile_limit=max(8, self.compile_max_batch_size + 1)):
                return self.compiled(meta.input_ids, meta.positions, meta.slot_mapping, meta.cu_seqlens_q,
                                     meta.seq_lens, meta.block_tables, meta.logits_indices, meta.max_query_len, splits)
        return self._model_forward(meta.input_ids, meta.positions, meta.slot_mapping, meta.cu_seqlens_q,
                                   meta.seq_lens, meta.block_tables, meta.logits_indices, meta.max_query_len, splits)

    def _model_forward(self, input_ids: torch.Tensor, positions: torch.Tensor, slot_mapping: torch.Tensor,
                       cu_seqlens_q: torch.Tensor, seq_lens: torch.Tensor, block_tables: torch.Tensor,
                       logits_indices: torch.Tensor, max_query_len: int, num_splits: int) -> torch.Tensor:
        """The model on one flattened row; tensors in, (B, V) logits out (what torch.compile traces)."""
        meta = FlatStepMetadata(input_ids.shape[0], seq_lens.shape[0], max_query_len, input_ids, positions,
                                slot_mapping, cu_seqlens_q, seq_lens, block_tables, logits_indices)
        cache = FlatStepCache(self.cache, meta, self.backend, self.window, num_splits)
        out = self.model(input_ids[None], position_ids=positions[None], past_key_values=cache,
                         logits_to_keep=logits_indices)
        return out.logits[0]

    @torch.inference_mode()
    def run(self, batch: ScheduledBatch) -> torch.Tensor:
        """Next-token logits (B, V) in the model's dtype for every scheduled sequence (the sampler upcasts where
        it needs float32; its fused GPU path reads them as they are)."""
        b = len(batch)
        self.graph_ids = None
        if self.graphs is not None and max(batch.num_new_tokens) == 1 and b <= self.graphs.max_size:
            size = self.graphs.size_for(b)
            self.builder.build(batch, pad_seqs_to=size, sampling=self.graphs.sample is not None, views=False)
            logits, ids = self.graphs.replay(size)
            self.graph_ids = None if ids is None else ids[:b]
        else:
            logits = self.forward(self.builder.build(batch))
        return logits[:b]
