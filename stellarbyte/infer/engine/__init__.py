"""The serving engine: paged KV cache, block manager with prefix caching, continuous-batching scheduler,
per-request sampling, the offline `LLM` API and the streaming `AsyncLLM` (vLLM names throughout; see docs/engine.md)."""

from stellarbyte.infer.engine.async_llm import AsyncLLM
from stellarbyte.infer.engine.config import EngineConfig
from stellarbyte.infer.engine.llm import LLM
from stellarbyte.infer.engine.llm_engine import EngineStats, LLMEngine
from stellarbyte.infer.engine.outputs import CompletionOutput, RequestOutput
from stellarbyte.infer.engine.sampling_params import SamplingParams

__all__ = ["LLM", "AsyncLLM", "CompletionOutput", "EngineConfig", "EngineStats", "LLMEngine", "RequestOutput",
           "SamplingParams"]
