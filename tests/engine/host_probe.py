"""Host time per batch-1 token of the engine, the model replaced by a stub that returns at once (what the host does
around a GPU graph replay): an older FlatBatchBuilder vs the current one, alternating in one process.
Usage (the figure in docs/engine.md, the decode-step fill before and after commit 23af39b):
  git show 23af39b~1:stellarbyte/infer/engine/flat_batch.py > /tmp/old_flat_batch.py
  python tests/engine/host_probe.py /tmp/old_flat_batch.py
"""

import importlib.util
import sys
import time

import torch

sys.path.insert(0, "tests")
from tiny_models import tiny_model  # noqa: E402

from stellarbyte.infer.engine import LLM, SamplingParams  # noqa: E402

TOKENS = 2000


def load_old_builder(path: str):
    spec = importlib.util.spec_from_file_location("old_flat_batch", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_flat_batch"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.FlatBatchBuilder


def main(old_path: str) -> None:
    model = tiny_model(max_position_embeddings=4096)
    llm = LLM(model, attention_backend="flat", num_blocks=400, block_size=16, max_num_seqs=4, overlap_steps=True)
    runner = llm.engine.runner
    new = runner.builder
    old = load_old_builder(old_path)(new.max_tokens, new.max_seqs, new.width, new.block_size, "cpu")
    vocab = model.config.vocab_size
    logits, ids = torch.zeros(1, vocab), torch.tensor([5])

    def stub_run(batch):  # fill the step buffer as the graph path does, skip the model
        decode = max(batch.num_new_tokens) == 1
        if runner.builder is new:
            new.build(batch, pad_seqs_to=1 if decode else None, sampling=decode, views=not decode)
        else:
            old.build(batch, pad_seqs_to=1 if decode else None)
        runner.graph_ids = ids if decode else None
        return logits.expand(len(batch), vocab)

    runner.run = stub_run
    params = SamplingParams(temperature=0, max_tokens=TOKENS, ignore_eos=True)
    for name, builder in [("old", old), ("new", new)] * 3:
        runner.builder = builder
        start = time.perf_counter()
        llm.generate([[1, 2, 3]], params)
        print(f"{name}: host per token {(time.perf_counter() - start) / TOKENS * 1e6:.0f} us")


if __name__ == "__main__":
    main(sys.argv[1])
