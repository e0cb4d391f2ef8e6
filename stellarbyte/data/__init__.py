"""StellarByte data pipeline: ingest -> clean -> dedup -> analyse -> pack -> load, SFT and preference data, and the
offline toy world. See docs/data.md.

Names are imported lazily (PEP 562 `__getattr__`): only the submodules a caller touches are loaded, and the toy
world (written separately) is imported only when `build_toyworld` is asked for.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Document": "records", "Stats": "records", "write_jsonl": "records",
    "IngestConfig": "ingest", "read_files": "ingest", "read_hf_dataset": "ingest",
    "UnicodeNormalizer": "clean", "HtmlStripper": "clean", "BoilerplateFilter": "clean",
    "QualityConfig": "quality", "QualityFilter": "quality", "quality_signals": "quality",
    "PiiScrubber": "pii",
    "ExactDedup": "dedup", "NearDedup": "dedup", "find_duplicate_pairs": "dedup",
    "MinHashConfig": "minhash", "MinHasher": "minhash",
    "run_steps": "pipeline",
    "TokenizerLike": "tokenizing", "load_tokenizer": "tokenizing", "tokenizer_fingerprint": "tokenizing",
    "PackConfig": "pack", "pack_documents": "pack", "read_index": "pack",
    "PackedTokens": "loader", "TokenBlockLoader": "loader",
    "analyse_documents": "analyse", "analyse_packed": "analyse", "write_report": "analyse",
    "to_messages": "conversations", "IGNORE_INDEX": "conversations",
    "SFTConfig": "sft", "SFTExample": "sft", "tokenize_conversation": "sft", "build_sft_examples": "sft",
    "pad_collate": "sft", "pack_examples": "sft", "collate_packed": "sft", "packed_attention_mask": "sft",
    "PreferenceConfig": "preference", "PreferencePair": "preference", "tokenize_preference": "preference",
    "build_preference_pairs": "preference", "collate_preference": "preference", "sequence_logps": "preference",
    "build_toyworld": "toyworld",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'stellarbyte.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"stellarbyte.data.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
