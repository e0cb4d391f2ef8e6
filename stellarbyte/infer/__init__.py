"""Inference: KV caches, sampling and generation (the serving engine joins later)."""

from stellarbyte.infer.cache import DynamicCache, SlidingWindowCache, StaticCache, make_cache
from stellarbyte.infer.generate import generate, stream_generate
from stellarbyte.infer.sampling import SamplingConfig

__all__ = ["DynamicCache", "SamplingConfig", "SlidingWindowCache", "StaticCache", "generate", "make_cache",
           "stream_generate"]
