"""StellarByte: a from-scratch LLM stack in PyTorch.

Public API: ByteConfig, RoPEConfig (configuration) and ByteModel (the causal language model).
"""

from stellarbyte.config import ByteConfig, RoPEConfig
from stellarbyte.model.transformer import ByteModel

__all__ = ["ByteConfig", "ByteModel", "RoPEConfig"]
__version__ = "0.1.0"
