"""Learnability probe: can a tiny model answer the toy world's HELD-OUT questions above chance?

Not a unit test (it trains a model); run it by hand:
    python tests/toyworld/heldout_probe.py --world DIR [--pretrain-tokens 3e6 --sft-tokens 1e6 --device cuda]

Self-contained on purpose (HF `tokenizers` byte-level BPE + a ~3M-parameter GPT written here), so it measures the
dataset, not the project's trainer: pretrain on pretrain/train.txt, fine-tune on sft/train.jsonl with the loss on
assistant tokens only, then answer eval/heldout.jsonl (and a sample of rl/train.jsonl, questions of the training
distribution) greedily and score with `check_answer`. Prints accuracy and chance level per kind.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from stellarbyte.data.toyworld import check_answer, load_heldout

SPECIALS = ["<|eos|>", "<|system|>", "<|user|>", "<|assistant|>"]


def train_tokenizer(texts: list[str], vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return tok


def rope(x: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotate pairs of channels by position-dependent angles (Su et al. 2021). x: (B, T, H, Dh)."""
    T, Dh = x.shape[1], x.shape[-1]
    inv = base ** (-torch.arange(0, Dh, 2, device=x.device, dtype=torch.float32) / Dh)  # (Dh/2,)
    ang = torch.arange(T, device=x.device, dtype=torch.float32)[:, None] * inv  # (T, Dh/2)
    cos, sin = ang.cos()[None, :, None, :], ang.sin()[None, :, None, :]
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class Block(nn.Module):
    def __init__(self, d: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, self.n_heads, D // self.n_heads).unbind(2)
        q, k = rope(q), rope(k)  # rotary positions, as in the project's model (relative offsets help copying)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, D))
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    def __init__(self, vocab: int, d: int, n_layers: int, n_heads: int, ctx: int) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(Block(d, n_heads) for _ in range(n_layers))
        self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, vocab, bias=False)
        self.head.weight = self.tok.weight  # tied embeddings

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx)
        for b in self.blocks:
            x = b(x)
        return self.head(self.ln(x))


def render(messages: list[dict], ids: dict[str, int], tok: Tokenizer) -> tuple[list[int], list[int]]:
    """Chat ids and a mask that is 1 on assistant answer tokens (and their closing eos)."""
    out, mask = [], []
    for m in messages:
        out.append(ids[f"<|{m['role']}|>"])
        mask.append(0)
        body = tok.encode(m["content"]).ids
        out += body
        mask += [int(m["role"] == "assistant")] * len(body)
        if m["role"] == "assistant":
            out.append(ids["<|eos|>"])
            mask.append(1)
    return out, mask


def train(model, batches, steps: int, lr: float, device: str) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1, betas=(0.9, 0.95))
    loss_val = float("nan")
    warmup = max(1, min(50, steps // 10))
    for step in range(steps):
        for g in opt.param_groups:  # warmup then cosine
            g["lr"] = lr * min(1, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / steps))
        x, y = next(batches)
        logits = model(x.to(device))
        loss = F.cross_entropy(logits.flatten(0, 1), y.to(device).flatten(), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss_val = loss.item()
    return loss_val


@torch.no_grad()
def answer(model, tok, ids, questions: list[str], device: str, max_new: int = 24) -> list[str]:
    outs = []
    for q in questions:
        seq = [ids["<|user|>"], *tok.encode(q).ids, ids["<|assistant|>"]]
        start = len(seq)
        for _ in range(max_new):
            nxt = int(model(torch.tensor([seq[-256:]], device=device))[0, -1].argmax())
            if nxt == ids["<|eos|>"]:
                break
            seq.append(nxt)
        outs.append(tok.decode(seq[start:]))
    return outs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--world", required=True)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--pretrain-tokens", type=float, default=3e6)
    ap.add_argument("--sft-tokens", type=float, default=1e6)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seen", type=int, default=300, help="rl/train.jsonl questions to score for comparison")
    ap.add_argument("--per-kind", type=int, default=60, help="score at most this many held-out records per kind")
    args = ap.parse_args()
    torch.manual_seed(0)
    world = Path(args.world)
    text = (world / "pretrain/train.txt").read_text()
    docs = text.rstrip("\n").split("\n\n")
    t0 = time.time()
    tok = train_tokenizer(docs, args.vocab)
    ids = {s: tok.token_to_id(s) for s in SPECIALS}
    stream = []
    for d in docs:
        stream += tok.encode(d).ids + [ids["<|eos|>"]]
    data = torch.tensor(stream)
    convs = [json.loads(x) for x in (world / "sft/train.jsonl").read_text().splitlines()]
    rendered = [render(c["messages"], ids, tok) for c in convs]
    print(f"tokenizer {time.time() - t0:.1f}s; pretrain tokens {len(stream)}, sft conversations {len(convs)}")

    rng = random.Random(0)
    T, B = args.ctx, args.batch

    def pretrain_batches():
        while True:
            starts = [rng.randrange(0, len(data) - T - 1) for _ in range(B)]
            x = torch.stack([data[s:s + T] for s in starts])
            y = torch.stack([data[s + 1:s + T + 1] for s in starts])
            yield x, y

    def sft_batches():
        while True:  # pack shuffled conversations into rows; targets only on assistant tokens
            xs, ys = [], []
            for _ in range(B):
                row, lab = [], []
                while len(row) < T + 1:
                    seq, mask = rendered[rng.randrange(len(rendered))]
                    row += seq
                    lab += [t if m else -100 for t, m in zip(seq, mask)]
                xs.append(row[:T])
                ys.append(lab[1:T + 1])
            yield torch.tensor(xs), torch.tensor(ys)

    model = TinyGPT(tok.get_vocab_size(), args.d, args.layers, max(1, args.d // 64), T).to(args.device)
    n_params = sum(p.numel() for p in model.parameters())
    t0 = time.time()
    pre_steps = int(args.pretrain_tokens / (B * T))
    loss = train(model, pretrain_batches(), pre_steps, args.lr, args.device)
    t_pre = time.time() - t0
    sft_steps = int(args.sft_tokens / (B * T))
    sft_loss = train(model, sft_batches(), sft_steps, args.lr / 2, args.device)
    t_all = time.time() - t0
    print(f"params {n_params / 1e6:.2f}M; pretrain {pre_steps} steps loss {loss:.3f} ({t_pre:.0f}s); "
          f"sft {sft_steps} steps loss {sft_loss:.3f}; total train {t_all:.0f}s on {args.device}")

    model.eval()
    held, per_kind = [], defaultdict(int)
    for r in load_heldout(world):
        per_kind[r["kind"]] += 1
        if per_kind[r["kind"]] <= args.per_kind:
            held.append(r)
    seen = [json.loads(x) for x in (world / "rl/train.jsonl").read_text().splitlines()][: args.seen]
    for name, records in (("HELD-OUT", held), ("seen-distribution (rl/train)", seen)):
        responses = answer(model, tok, ids, [r["question"] for r in records], args.device)
        stats: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
        for r, resp in zip(records, responses):
            s = stats[r["kind"]]
            s[0] += check_answer(r["task"], resp)
            s[1] += 1
            s[2] += r["task"]["chance"]
        print(f"\n{name}: {'kind':<16}{'n':>5}{'acc':>8}{'chance':>9}")
        for kind in sorted(stats):
            ok, n, ch = stats[kind]
            print(f"{'':>{len(name) + 2}}{kind:<16}{n:>5}{ok / n:>8.2f}{ch / n:>9.3f}")
        total = sum(s[0] for s in stats.values()) / max(1, len(records))
        print(f"{'':>{len(name) + 2}}{'ALL':<16}{len(records):>5}{total:>8.2f}")
        for r, resp in list(zip(records, responses))[:6]:
            print(f"    Q: {r['question']!r} -> {resp!r} (want {r['answer']!r})")


if __name__ == "__main__":
    main()
