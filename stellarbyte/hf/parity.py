"""Numerical parity with transformers, both directions, on tiny random models (no network).

  hf->ours   build a random transformers model, save_pretrained, ByteModel.from_pretrained, compare
  ours->hf   build a random ByteModel, save_pretrained, AutoModelForCausalLM.from_pretrained, compare

Each comparison runs one forward pass on the same token ids (max |logit difference|, float32) and a 32-token
greedy generation (ours: model.generate; transformers: generate(do_sample=False)), which must agree token
for token. Weights are re-drawn after construction -- norm gains around 1, non-zero biases -- because the
libraries' own initialisations (unit norms, zero biases) would leave QK-norm and attention biases untested.

Run `python -m stellarbyte.hf.parity` for the markdown table (family x case x direction); tests/hf use the
same functions with assertions. transformers is an optional dependency (pip install 'stellarbyte[hf]').
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stellarbyte.config import ByteConfig, RoPEConfig
from stellarbyte.model.transformer import ByteModel

# the tiny shape shared by every case: 2 layers, width 64, 4 query heads over 2 KV heads (GQA), head_dim 16
TINY: dict[str, Any] = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                            bos_token_id=None, eos_token_id=None, pad_token_id=None)


@dataclass(frozen=True)
class ParityCase:
    """One architecture variant, stated in both vocabularies: ByteConfig fields and HF config keys."""

    name: str
    family: str  # the HF model_type both sides must use
    byte: dict[str, Any] = field(default_factory=dict)
    hf: dict[str, Any] = field(default_factory=dict)
    seq_len: int = 24  # prompt length of the logits check; generation uses the first 8 tokens + 32 new
    force_family: bool = False  # ours->hf passes family= (the automatic choice would pick another family)


def _rope(rope_type: str, **kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ByteConfig kwargs, HF kwargs) for one rope setting."""
    return ({"rope_config": RoPEConfig(rope_type=rope_type, **kw)},
            {"rope_parameters": {"rope_type": rope_type, "rope_theta": 10000.0, **kw}})


def _case(name: str, family: str, both: dict[str, Any] | None = None, byte: dict[str, Any] | None = None,
          hf: dict[str, Any] | None = None, rope: tuple[dict, dict] | None = None, **kw: Any) -> ParityCase:
    both = both or {}
    rb, rh = rope or ({}, {})
    return ParityCase(name, family, {**both, **(byte or {}), **rb}, {**both, **(hf or {}), **rh}, **kw)


CASES: tuple[ParityCase, ...] = (
    _case("gqa", "llama"),
    _case("mha", "llama", {"num_key_value_heads": 4}),
    _case("mqa", "llama", {"num_key_value_heads": 1}),
    _case("tied", "llama", {"tie_word_embeddings": True}),
    _case("bias", "llama", byte={"qkv_bias": True, "attention_out_bias": True}, hf={"attention_bias": True}),
    _case("geglu", "llama", byte={"mlp_type": "geglu"}, hf={"hidden_act": "gelu_pytorch_tanh"}),
    _case("rope-linear", "llama", rope=_rope("linear", factor=2.0)),
    # max_position_embeddings 16 < the 24-token prompt: dynamic NTK rescales the base inside the test
    _case("rope-dynamic", "llama", {"max_position_embeddings": 16}, rope=_rope("dynamic", factor=4.0)),
    _case("rope-yarn", "llama", rope=_rope("yarn", factor=4.0, original_max_position_embeddings=32)),
    _case("rope-yarn-mscale", "llama",
          rope=_rope("yarn", factor=4.0, original_max_position_embeddings=32, beta_fast=16.0, beta_slow=2.0,
                     mscale=0.8, mscale_all_dim=0.5)),
    _case("rope-llama3", "llama",
          rope=_rope("llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                     original_max_position_embeddings=32)),
    _case("qkv-bias", "qwen2", byte={"qkv_bias": True}),
    _case("sliding-window", "qwen2", byte={"qkv_bias": True, "sliding_window": 8},
          hf={"use_sliding_window": True, "sliding_window": 8, "max_window_layers": 0}),
    _case("qk-norm", "qwen3", byte={"qk_norm": True}, hf={"head_dim": 16}),
    _case("qk-norm-bias-tied", "qwen3", {"tie_word_embeddings": True},
          byte={"qk_norm": True, "qkv_bias": True, "attention_out_bias": True},
          hf={"attention_bias": True, "head_dim": 16}),
    _case("sliding-window", "mistral", byte={"sliding_window": 8}, hf={"sliding_window": 8}),
    _case("full-attention", "mistral", hf={"sliding_window": None}, force_family=True),
)


@dataclass
class ParityResult:
    family: str
    case: str
    direction: str  # "hf->ours" | "ours->hf"
    max_abs_diff: float
    greedy_equal: bool
    generated: int  # tokens compared in the greedy check

    def row(self) -> str:
        ok = "yes" if self.greedy_equal else "NO"
        return (f"| {self.family} | {self.case} | {self.direction} | {self.max_abs_diff:.2e} | "
                f"{ok} ({self.generated}) |")


def randomize_(model: nn.Module, seed: int = 0, std: float = 0.08) -> None:
    """Re-draw every parameter: norm gains ~ 1 + N(0, 0.1), biases ~ N(0, 0.1), weights ~ N(0, std).

    Parameter names are the same in transformers and StellarByte, so both sides draw identical
    distributions; tied weights are visited once (named_parameters deduplicates)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if "norm" in name:
                value = 1.0 + 0.1 * noise
            elif name.endswith(".bias"):
                value = 0.1 * noise
            else:
                value = std * noise
            p.copy_(value.to(p.dtype))


def hf_config_for(case: ParityCase):
    """The transformers config object of a case (AutoConfig.for_model keeps this file family-agnostic)."""
    from transformers import AutoConfig

    return AutoConfig.for_model(case.family, **{**TINY, **case.hf})


def byte_config_for(case: ParityCase) -> ByteConfig:
    return ByteConfig(**{**TINY, "torch_dtype": "float32", **case.byte})


def _prompt(case: ParityCase, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed + 1)
    return torch.randint(0, TINY["vocab_size"], (2, case.seq_len), generator=gen)


@torch.no_grad()
def compare(ours: ByteModel, hf: nn.Module, ids: torch.Tensor, new_tokens: int = 32,
            prompt_len: int = 8) -> tuple[float, bool]:
    """(max |logits difference| on `ids`, whether greedy continuations of ids[:1, :prompt_len] agree)."""
    diff = (ours(ids).logits.float() - hf(input_ids=ids).logits.float()).abs().max().item()
    prompt = ids[:1, :prompt_len]
    ours_tokens = ours.generate(prompt, max_new_tokens=new_tokens)
    hf_tokens = hf.generate(prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                            pad_token_id=0)
    return diff, ours_tokens.shape == hf_tokens.shape and torch.equal(ours_tokens, hf_tokens)


def hf_to_ours(case: ParityCase, workdir: Path, seed: int = 0,
               attn_implementation: str = "auto") -> tuple[ParityResult, ByteModel, nn.Module]:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    hf = AutoModelForCausalLM.from_config(hf_config_for(case)).eval()
    randomize_(hf, seed)
    path = workdir / f"{case.family}-{case.name}-hf"
    hf.save_pretrained(path)
    ours = ByteModel.from_pretrained(path, attn_implementation=attn_implementation)
    if ours.loading_info["model_type"] != case.family:
        raise AssertionError(f"{path} loaded as {ours.loading_info['model_type']}, expected {case.family}")
    diff, same = compare(ours, hf, _prompt(case, seed))
    return ParityResult(case.family, case.name, "hf->ours", diff, same, 32), ours, hf


def ours_to_hf(case: ParityCase, workdir: Path, seed: int = 0, attn_implementation: str = "auto",
               **save_kwargs: Any) -> tuple[ParityResult, ByteModel, nn.Module]:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    ours = ByteModel(byte_config_for(case).replace(attention_implementation=attn_implementation)).eval()
    randomize_(ours, seed)
    path = workdir / f"{case.family}-{case.name}-ours"
    if case.force_family:
        save_kwargs.setdefault("family", case.family)
    ours.save_pretrained(path, **save_kwargs)
    hf = AutoModelForCausalLM.from_pretrained(path).eval()
    if hf.config.model_type != case.family:
        raise AssertionError(f"saved as {hf.config.model_type}, expected {case.family}")
    diff, same = compare(ours, hf, _prompt(case, seed))
    return ParityResult(case.family, case.name, "ours->hf", diff, same, 32), ours, hf


def quiet_transformers() -> None:
    """Hide transformers' progress bars and info-level chatter (weights loading, generation hints)."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def run_all(cases: tuple[ParityCase, ...] = CASES, seed: int = 0,
            attn_implementation: str = "auto") -> list[ParityResult]:
    """Every case both directions; attn_implementation picks our attention backend (transformers keeps sdpa)."""
    quiet_transformers()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            results.append(hf_to_ours(case, Path(tmp), seed, attn_implementation)[0])
            results.append(ours_to_hf(case, Path(tmp), seed, attn_implementation)[0])
    return results


def markdown_table(results: list[ParityResult]) -> str:
    head = ["| family | case | direction | max abs logit diff | greedy 32 tokens equal |",
            "| --- | --- | --- | --- | --- |"]
    return "\n".join(head + [r.row() for r in results])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stellarbyte.hf.parity", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--family", choices=sorted({c.family for c in CASES}), help="only this family")
    parser.add_argument("--attn-implementation", choices=["auto", "sdpa", "eager"], default="auto",
                        help="our attention backend (eager: our explicit float32 softmax against HF's sdpa)")
    parser.add_argument("--csv", type=Path, help="also write the table as CSV here")
    args = parser.parse_args(argv)
    try:
        import transformers  # noqa: F401
    except ImportError:
        print("transformers is not installed: pip install 'stellarbyte[hf]'", file=sys.stderr)
        return 1
    cases = tuple(c for c in CASES if args.family in (None, c.family))
    results = run_all(cases, args.seed, args.attn_implementation)
    print(markdown_table(results))
    worst = max(r.max_abs_diff for r in results)
    print(f"\nworst max abs logit diff: {worst:.2e}; greedy equal: "
          f"{sum(r.greedy_equal for r in results)}/{len(results)}")
    if args.csv:
        import csv

        with args.csv.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=[fl.name for fl in dataclasses.fields(ParityResult)])
            writer.writeheader()
            writer.writerows(dataclasses.asdict(r) for r in results)
    return 0 if worst <= 1e-4 and all(r.greedy_equal for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
