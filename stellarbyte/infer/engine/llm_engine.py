"""LLMEngine: requests in, one scheduled model step at a time, outputs back.

Reference: vLLM's LLMEngine (add_request / step / has_unfinished_requests / abort_request).
One step: scheduler picks sequences and token counts -> model runner computes their K/V into the paged
cache and returns next-token logits -> newly full blocks enter the prefix cache -> sequences whose tokens
are now all computed get a sampled token -> stop checks (EOS, stop token ids, stop strings, max_tokens,
context window) -> finished sequences release their blocks.
Contract: requests that could never fit (prompt + max_tokens beyond the context window or the whole block
pool) are refused at add_request with a ValueError, so a running engine cannot deadlock.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import torch

from stellarbyte.infer.engine.block_manager import BlockManager
from stellarbyte.infer.engine.config import EngineConfig, kv_budget_from_utilization, resolve_attention_backend
from stellarbyte.infer.engine.flat_runner import FlatModelRunner, flat_path_unsupported
from stellarbyte.infer.engine.kv_cache import PagedKVCache, bytes_per_block
from stellarbyte.infer.engine.model_runner import ModelRunner
from stellarbyte.infer.engine.outputs import CompletionOutput, RequestOutput
from stellarbyte.infer.engine.sampler import sample_async
from stellarbyte.infer.engine.sampling_params import SamplingParams
from stellarbyte.infer.engine.scheduler import Scheduler
from stellarbyte.infer.engine.sequence import Sequence


@dataclass(slots=True)
class EngineStats:
    num_steps: int = 0
    num_batched_tokens: int = 0  # tokens computed (prefill + decode), summed over steps
    num_generated_tokens: int = 0
    num_preemptions: int = 0
    prefix_cache_hit_rate: float = 0.0
    num_free_blocks: int = 0
    num_blocks: int = 0


class LLMEngine:
    def __init__(self, model, config: EngineConfig | None = None, tokenizer: Any = None) -> None:
        self.model = model.eval()
        self.config = config or EngineConfig()
        self.tokenizer = tokenizer
        mc = model.config
        if mc.attention_type != "mha":
            raise ValueError(f"the paged engine supports attention_type='mha' (GQA/MQA included), not "
                             f"{mc.attention_type!r}")
        self.context_length = mc.context_length
        per_block = bytes_per_block(mc.num_hidden_layers, self.config.block_size, mc.num_key_value_heads,
                                    mc.head_dim, model.dtype)
        cfg = self.config
        if (cfg.gpu_memory_utilization is not None and cfg.num_blocks is None and cfg.kv_cache_memory_bytes is None
                and model.device.type == "cuda"):
            free, total = torch.cuda.mem_get_info(model.device)
            cfg.kv_cache_memory_bytes = kv_budget_from_utilization(free, total, cfg.gpu_memory_utilization)
        num_blocks = cfg.resolve_num_blocks(per_block, self.context_length)
        self.kv_cache = PagedKVCache(mc.num_hidden_layers, num_blocks, self.config.block_size,
                                     mc.num_key_value_heads, mc.head_dim, model.dtype, model.device)
        self.block_manager = BlockManager(num_blocks, self.config.block_size, self.config.enable_prefix_caching)
        self.scheduler = Scheduler(self.block_manager, self.config.max_num_seqs, self.config.max_num_batched_tokens)
        self.attention_backend = resolve_attention_backend(cfg.attention_backend, model.device, model.dtype,
                                                           flat_path_unsupported(mc))
        if self.attention_backend == "torch":
            self.runner = ModelRunner(model, self.kv_cache)
        else:
            compile_decode = cfg.compile_decode if cfg.compile_decode is not None else (
                self.attention_backend == "triton" and cfg.cuda_graphs and model.device.type == "cuda")
            self.runner = FlatModelRunner(model, self.kv_cache, self.attention_backend, cfg.max_num_seqs,
                                          cfg.max_num_batched_tokens, cfg.cuda_graphs, compile_decode,
                                          cfg.compile_max_batch_size, cfg.fuse_projections, cfg.sample_in_graph)
        # overlap the host's per-step work with the GPU (see step()); the synchronous order elsewhere
        self.overlap = cfg.overlap_steps if cfg.overlap_steps is not None else (
            self.attention_backend != "torch" and model.device.type == "cuda")
        self._inflight: tuple | None = None
        generation_config = getattr(model, "generation_config", None) or {}
        eos = generation_config.get("eos_token_id", mc.eos_token_id)
        self.eos_token_ids = set() if eos is None else ({eos} if isinstance(eos, int) else set(eos))
        self.requests: dict[str, list[Sequence]] = {}
        self.prompts: dict[str, str | None] = {}
        self.prompt_ids: dict[str, list[int]] = {}  # shared by every output of a request (no copy per step)
        self._ids = itertools.count()
        self.stats = EngineStats(num_blocks=num_blocks)

    # ---- requests ------------------------------------------------------------------------------------------
    def check_request(self, prompt_token_ids: list[int], params: SamplingParams | None = None) -> list[int]:
        """Validate a request without queueing it (servers call this before answering); returns the ids."""
        params = params or SamplingParams()
        if not isinstance(params, SamplingParams):
            raise ValueError(f"params must be a SamplingParams, got {type(params).__name__}")
        ids = list(prompt_token_ids)
        vocab = self.model.config.vocab_size
        if not ids:
            raise ValueError("the prompt is empty; pass at least one token id (e.g. the BOS token)")
        bad = [t for t in ids if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < vocab]
        if bad:
            raise ValueError(f"prompt token ids must be ints in [0, {vocab}); got {bad[:5]}")
        if len(ids) >= self.context_length:
            raise ValueError(f"the prompt has {len(ids)} tokens but the context window is {self.context_length}; "
                             f"truncate it to at most {self.context_length - 1} tokens")
        room = self.context_length - len(ids)
        if params.max_tokens is not None and params.max_tokens > room:
            raise ValueError(f"prompt ({len(ids)} tokens) + max_tokens ({params.max_tokens}) exceeds the context "
                             f"window ({self.context_length}); use max_tokens <= {room}")
        max_tokens = params.max_tokens or room
        need = self.block_manager.blocks_needed(len(ids) + max_tokens)
        if need > self.kv_cache.num_blocks:
            raise ValueError(f"a {len(ids)}-token prompt with max_tokens={max_tokens} needs {need} KV blocks but the "
                             f"pool has {self.kv_cache.num_blocks}; raise num_blocks/kv_cache_memory_bytes")
        if params.stop and self.tokenizer is None:
            raise ValueError("stop strings need a tokenizer; pass one to the engine or use stop_token_ids")
        return ids

    def add_request(self, prompt_token_ids: list[int], params: SamplingParams | None = None,
                    request_id: str | None = None, prompt: str | None = None) -> str:
        params = params or SamplingParams()
        ids = self.check_request(prompt_token_ids, params)
        request_id = str(next(self._ids)) if request_id is None else request_id
        if request_id in self.requests:
            raise ValueError(f"request_id {request_id!r} is already in use; pass a unique id")
        seqs = []
        for i in range(params.n):
            seq = Sequence(request_id, ids, params, index=i)
            if params.seed is not None:
                seq.generator = torch.Generator(device=self.model.device).manual_seed(params.seed + i)
            seqs.append(seq)
            self.scheduler.add(seq)
        self.requests[request_id] = seqs
        self.prompts[request_id] = prompt
        self.prompt_ids[request_id] = ids
        return request_id

    def abort_request(self, request_id: str) -> None:
        for seq in self.requests.pop(request_id, []):
            if not seq.is_finished:
                self.scheduler.finish(seq)
        self.prompts.pop(request_id, None)
        self.prompt_ids.pop(request_id, None)

    def has_unfinished_requests(self) -> bool:
        return self.scheduler.has_unfinished()

    # ---- one step ------------------------------------------------------------------------------------------
    def step(self) -> list[RequestOutput]:
        """Run one model step; return the outputs of requests that advanced (finished ones are released).

        Overlapped mode (self.overlap, on by default for the flat runner on CUDA): the step launched last time is
        finished here (its sampled ids are read), then the NEXT step is scheduled and launched on the GPU before
        this step's outputs are built, so that Python work (outputs, the caller's loop) runs while the GPU
        computes. Adds and aborts between calls still take effect: a request aborted while its step is in flight
        is skipped when the step's results arrive."""
        if not self.overlap:
            launched = self._launch()
            return [] if launched is None else [self._output(rid) for rid in self._process(launched)]
        if self._inflight is None:
            self._inflight = self._launch()
            if self._inflight is None:
                return []
        launched, self._inflight = self._inflight, None
        touched = self._process(launched)
        if self.scheduler.has_unfinished():
            self._inflight = self._launch()  # the GPU starts the next step now
        return [self._output(rid) for rid in touched]

    def _launch(self) -> tuple | None:
        """Schedule, run the model and start sampling; nothing waits for the device on the fused GPU path."""
        batch = self.scheduler.schedule()
        if not batch.seqs:
            if self.scheduler.has_unfinished() and not batch.preempted:
                raise RuntimeError("the scheduler could not place any sequence although requests are waiting; "
                                   "the KV pool is too small for them")
            return None
        logits = self.runner.run(batch)  # (B, V)
        # rows whose step reaches the end of their tokens get a sampled token (not a middle prefill chunk)
        done_rows = [row for row, (seq, n) in enumerate(zip(batch.seqs, batch.num_new_tokens))
                     if seq.num_computed_tokens + n == len(seq)]
        result = None
        if done_rows:
            seqs = [batch.seqs[r] for r in done_rows]
            every = len(done_rows) == len(batch.seqs)
            rows = logits if every else logits[done_rows]  # decode: no gather
            graph_ids = getattr(self.runner, "graph_ids", None) if every else None  # sampled inside a CUDA graph
            result = sample_async(rows, seqs, graph_ids)
        return batch, done_rows, result

    def _process(self, launched: tuple) -> list[str]:
        """Apply a launched step's results: computed counts, prefix-cache hashes, sampled tokens, stops."""
        batch, done_rows, result = launched
        tokens, logprobs = result.get() if result is not None else ([], [])
        for seq, n in zip(batch.seqs, batch.num_new_tokens):
            if seq.is_finished:
                continue  # aborted while its step was in flight
            seq.num_computed_tokens += n
            self.block_manager.cache_computed_blocks(seq)
        self.stats.num_steps += 1
        self.stats.num_batched_tokens += batch.num_tokens
        touched: dict[str, None] = {}  # request ids in first-touch order (a dict: O(1) membership at batch 256)
        for row, token, lp in zip(done_rows, tokens, logprobs):
            seq = batch.seqs[row]
            if seq.is_finished:
                continue
            seq.append_token(token)
            if lp is not None:
                seq.logprobs.append(lp)
            self._check_stop(seq, token)
            if seq.finish_reason is not None:
                self.scheduler.finish(seq)
            touched[seq.request_id] = None
            self.stats.num_generated_tokens += 1
        return list(touched)

    def _check_stop(self, seq: Sequence, token: int) -> None:
        p = seq.params
        if self.tokenizer is not None:
            seq.output_text = self.tokenizer.decode(seq.output_token_ids, skip_special_tokens=True)
            for stop in p.stop:
                at = seq.output_text.find(stop)
                if at != -1:
                    seq.output_text = seq.output_text[:at]  # the stop string is not part of the output
                    seq.finish_reason, seq.stop_reason = "stop", stop
                    return
        if token in p.stop_token_ids or (not p.ignore_eos and token in self.eos_token_ids):
            seq.finish_reason, seq.stop_reason = "stop", token
        elif seq.num_output_tokens == p.max_tokens or len(seq) >= self.context_length:
            seq.finish_reason = "length"

    def _output(self, request_id: str) -> RequestOutput:
        seqs = self.requests[request_id]
        completions = []
        for seq in seqs:
            lps = seq.logprobs if seq.params.logprobs is not None else None
            cumulative = None
            if lps is not None:
                cumulative = sum(lp[t] for lp, t in zip(lps, seq.output_token_ids))
            completions.append(CompletionOutput(seq.index, seq.output_text, seq.token_ids[seq.num_prompt_tokens:],
                                                seq.finish_reason, seq.stop_reason, lps, cumulative))
        finished = all(s.is_finished for s in seqs)
        out = RequestOutput(request_id, self.prompts.get(request_id), self.prompt_ids[request_id], completions,
                            finished, seqs[0].num_cached_tokens)
        if finished:
            del self.requests[request_id]
            self.prompts.pop(request_id, None)
            self.prompt_ids.pop(request_id, None)
        return out

    def get_stats(self) -> EngineStats:
        s = self.stats
        s.num_preemptions = self.scheduler.num_preemptions
        s.prefix_cache_hit_rate = self.block_manager.stats.hit_rate
        s.num_free_blocks = self.block_manager.num_free_blocks
        return s
