"""Quantization for inference: dynamic int8 on CPU, weight-only int8 / group-wise int4 on GPU (docs/quantization.md).

  schemes.py       quantize / dequantize math (absmax per channel, per token, int4 groups with zero points)
  packing.py       two int4 codes per byte
  base.py          what quantized linears share (nn.Linear interface, weight bytes)
  int8_dynamic.py  Int8DynamicLinear (int8 x int8 -> int32) and torch.ao's dynamic Linear as the peer
  weight_only.py   WeightOnlyLinear (torch reference: dequantize + F.linear; Triton fused kernel on CUDA)
  triton_wo.py     the fused dequant-matmul Triton kernel (imported only when it runs)
  peers.py         torch._weight_int8pack_mm / _weight_int4pack_mm fed from our layers (benchmark peers)
  quantize.py      quantize_model(model, mode) and its report
"""

from stellarbyte.infer.quant.base import QuantizedLinear
from stellarbyte.infer.quant.int8_dynamic import Int8DynamicLinear, ao_dynamic_linear
from stellarbyte.infer.quant.packing import pack_int4, unpack_int4
from stellarbyte.infer.quant.quantize import MODES, QuantReport, model_bytes, quantize_model, resolve_mode
from stellarbyte.infer.quant.schemes import (
    dequantize_int4_groupwise,
    dequantize_int8_per_channel,
    quantize_int4_groupwise,
    quantize_int8_per_channel,
    quantize_int8_per_token,
)
from stellarbyte.infer.quant.weight_only import WeightOnlyLinear

__all__ = ["MODES", "Int8DynamicLinear", "QuantReport", "QuantizedLinear", "WeightOnlyLinear", "ao_dynamic_linear",
           "dequantize_int4_groupwise", "dequantize_int8_per_channel", "model_bytes", "pack_int4",
           "quantize_int4_groupwise", "quantize_int8_per_channel", "quantize_int8_per_token", "quantize_model",
           "resolve_mode", "unpack_int4"]
