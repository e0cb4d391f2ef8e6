"""Special tokens and their FIXED reserved ids.

Every StellarByte tokenizer, whatever its model (BPE, WordPiece, Unigram) or vocabulary size, starts its vocabulary
with the same 16 special tokens at the same ids, so model code, data packing and the inference engine may hard-code
them:

    id  token              role
    0   <|pad|>            padding only; distinct from EOS because padding with EOS would teach the model to
                           predict padding (loss masks use the pad id, and EOS must stay a real target)
    1   <|bos|>            beginning of sequence; added by encode(..., add_special_tokens=True)
    2   <|endoftext|>      end of text (EOS): separates documents in packed pretraining data
    3   <|unk|>            unknown; never produced by byte-level BPE (every byte is in the vocabulary), required by
                           the WordPiece and Unigram models
    4   <|im_start|>       chat: opens a turn, followed by the role name and a newline (ChatML)
    5   <|im_end|>         chat: closes a turn; the stop token for chat generation
    6   <|image|>          placeholder that the vision-language model replaces with image patch embeddings
    7-15 <|reserved_0|> .. <|reserved_8|>   spare ids for later uses (tools, thinking, ...) without reshuffling

The byte alphabet and the learned merges follow from id 16 on. References: the ChatML format (OpenAI, used by
Qwen); GPT-2's <|endoftext|>; the Llama/Qwen practice of a pad token distinct from EOS.
"""

from __future__ import annotations

PAD_TOKEN = "<|pad|>"
BOS_TOKEN = "<|bos|>"
EOS_TOKEN = "<|endoftext|>"
UNK_TOKEN = "<|unk|>"
IM_START_TOKEN = "<|im_start|>"
IM_END_TOKEN = "<|im_end|>"
IMAGE_TOKEN = "<|image|>"
NUM_RESERVED = 9
RESERVED_TOKENS: tuple[str, ...] = tuple(f"<|reserved_{i}|>" for i in range(NUM_RESERVED))

# The order of this tuple IS the id assignment: SPECIAL_TOKENS[i] has id i in every StellarByte tokenizer.
SPECIAL_TOKENS: tuple[str, ...] = (
    PAD_TOKEN,
    BOS_TOKEN,
    EOS_TOKEN,
    UNK_TOKEN,
    IM_START_TOKEN,
    IM_END_TOKEN,
    IMAGE_TOKEN,
    *RESERVED_TOKENS,
)
SPECIAL_TOKEN_IDS: dict[str, int] = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}

PAD_ID = SPECIAL_TOKEN_IDS[PAD_TOKEN]  # 0
BOS_ID = SPECIAL_TOKEN_IDS[BOS_TOKEN]  # 1
EOS_ID = SPECIAL_TOKEN_IDS[EOS_TOKEN]  # 2
UNK_ID = SPECIAL_TOKEN_IDS[UNK_TOKEN]  # 3
IM_START_ID = SPECIAL_TOKEN_IDS[IM_START_TOKEN]  # 4
IM_END_ID = SPECIAL_TOKEN_IDS[IM_END_TOKEN]  # 5
IMAGE_ID = SPECIAL_TOKEN_IDS[IMAGE_TOKEN]  # 6
NUM_SPECIAL_TOKENS = len(SPECIAL_TOKENS)  # 16

NUM_BYTES = 256  # a byte-level vocabulary must hold every byte value
MIN_VOCAB_SIZE = NUM_BYTES + NUM_SPECIAL_TOKENS  # 272: the specials plus the byte alphabet, before any merge

assert NUM_SPECIAL_TOKENS == 16 and len(set(SPECIAL_TOKENS)) == NUM_SPECIAL_TOKENS
