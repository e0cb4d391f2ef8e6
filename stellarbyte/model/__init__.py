"""Single-device nn.Modules of the decoder-only Transformer; caches arrive as arguments (see kv.py)."""

from stellarbyte.model.outputs import CausalLMOutput
from stellarbyte.model.transformer import ByteDecoder, ByteModel

__all__ = ["ByteDecoder", "ByteModel", "CausalLMOutput"]
