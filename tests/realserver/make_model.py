#!/usr/bin/env python3
"""Write a tiny llama-architecture GGUF model with random weights, deterministically.

    python tests/realserver/make_model.py --preset tiny --out tiny.gguf

No weights can be downloaded, and the tests need none that mean anything: they need a model that
llama.cpp's `llama-server` and llama-cpp-python load, that generates text (readable gibberish,
with a few multi-byte characters) up to `max_tokens` without stopping early, and that gives the
same text for the same request. Runs with the build venv's Python (numpy and PyPI `gguf`), which
tests/realserver/build.py creates; the project's own test environment never imports this file.

The model: `general.architecture = llama`, RMS norm, RoPE, SwiGLU feed-forward, all tensors F32;
a SentencePiece ("llama") vocabulary with byte fallback: `<unk>` 0, `<s>` 1 (BOS), `</s>` 2
(EOS), the 256 byte tokens `<0x00>`..`<0xFF>`, printable ASCII, `▁`-prefixed words with every
prefix (SentencePiece merges pairs of pieces, so a word is reached only through its prefixes),
and a few non-ASCII pieces. Embedding dimension 0 is a large constant for every token, and the
output matrix's column 0 favours word pieces and disfavours EOS and the byte tokens, so greedy
and sampled generation run to `max_tokens` with word-like pieces. `logit_bias {"2": 100}` still
forces an immediate stop.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gguf
import numpy as np

PRESETS = {
    # ~0.6 MB: thousands of tokens a second on one thread.
    "tiny": dict(n_embd=64, n_layer=2, n_head=4, n_head_kv=4, n_ff=128, n_ctx=512, seed=20260101),
    # ~110 MB: tens of tokens a second on one thread, and a long context, so a generation lasts
    # long enough to interrupt it mid-stream.
    "slow": dict(n_embd=512, n_layer=8, n_head=8, n_head_kv=8, n_ff=1536, n_ctx=2048, seed=20260102),
}

WORDS = """
the quick brown fox jumps over lazy dog hello world stream token model server text data test
river stone light night green blue red small large cloud rain sun moon star tree leaf wind fire
water earth iron gold silver bird fish song word line page book time space code byte frame
""".split()
NON_ASCII = ["é", "ü", "ß", "ñ", "—", "…", "€", "中", "文", "字", "日本", "😀", "🚀", "▁café", "▁naïve"]
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)

UNK, BOS, EOS = 0, 1, 2
T = gguf.TokenType


def build_vocab() -> tuple[list[str], list[float], list[int], list[bool]]:
    """(pieces, scores, token types, favoured-for-generation flags)."""
    pieces: list[str] = ["<unk>", "<s>", "</s>"]
    types: list[int] = [T.UNKNOWN, T.CONTROL, T.CONTROL]
    favoured: list[bool] = [False, False, False]
    for b in range(256):
        pieces.append(f"<0x{b:02X}>")
        types.append(T.BYTE)
        favoured.append(False)
    seen = set(pieces)

    def add(piece: str, fav: bool) -> None:
        if piece in seen:
            return
        seen.add(piece)
        pieces.append(piece)
        types.append(T.NORMAL)
        favoured.append(fav)

    add("▁", False)
    for c in range(33, 127):
        add(chr(c), chr(c).isalpha())
    for word in WORDS:
        w = "▁" + word
        for i in range(2, len(w) + 1):
            add(w[:i], True)
        for i in range(2, len(word) + 1):  # the word inside other words, without the space
            add(word[:i], i == len(word))
    for piece in NON_ASCII:
        for ch in piece:  # the single characters first, so the pieces can be merged from them
            add(ch, False)
        for i in range(2, len(piece) + 1):
            add(piece[:i], i == len(piece))
        add(piece, True)
    # SentencePiece merges the pair whose merged piece scores highest: longer pieces win.
    scores = [0.0, 0.0, 0.0] + [0.0] * 256
    scores += [float(len(p)) - i * 1e-4 for i, p in enumerate(pieces[259:])]
    return pieces, scores, types, favoured


def make(out: Path, name: str, *, n_embd: int, n_layer: int, n_head: int, n_head_kv: int, n_ff: int, n_ctx: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pieces, scores, types, favoured = build_vocab()
    n_vocab = len(pieces)
    head_dim = n_embd // n_head

    def rand(*shape: int, std: float) -> np.ndarray:
        return (rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).astype(np.float32)

    w = gguf.GGUFWriter(str(out), "llama")
    w.add_name(f"acs-test-{name}")
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_context_length(n_ctx)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)

    w.add_tokenizer_model("llama")
    w.add_token_list(pieces)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(UNK)
    w.add_bos_token_id(BOS)
    w.add_eos_token_id(EOS)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(True)
    w.add_chat_template(CHAT_TEMPLATE)

    # numpy shapes are (rows, columns) = (output, input); GGUF stores the reverse, and the writer
    # reverses them: token_embd is (n_vocab, n_embd) here and [n_embd, n_vocab] in the file.
    embd = rand(n_vocab, n_embd, std=1.0)
    embd[:, 0] = 4.0 * np.sqrt(n_embd)  # a constant direction that dominates the residual stream
    w.add_tensor("token_embd.weight", embd)
    w.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    output = rand(n_vocab, n_embd, std=1.0)
    output[:, 0] = np.where(np.array(favoured), 0.5, -2.0).astype(np.float32)
    output[EOS, 0] = -4.0
    w.add_tensor("output.weight", output)
    kv_dim = head_dim * n_head_kv
    small = 0.02
    for i in range(n_layer):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(f"blk.{i}.attn_q.weight", rand(n_embd, n_embd, std=small))
        w.add_tensor(f"blk.{i}.attn_k.weight", rand(kv_dim, n_embd, std=small))
        w.add_tensor(f"blk.{i}.attn_v.weight", rand(kv_dim, n_embd, std=small))
        w.add_tensor(f"blk.{i}.attn_output.weight", rand(n_embd, n_embd, std=small))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", rand(n_ff, n_embd, std=small))
        w.add_tensor(f"blk.{i}.ffn_up.weight", rand(n_ff, n_embd, std=small))
        w.add_tensor(f"blk.{i}.ffn_down.weight", rand(n_embd, n_ff, std=small))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write a tiny deterministic llama GGUF model.")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    make(args.out, args.preset, **PRESETS[args.preset])
    print(f"{args.out}: {args.out.stat().st_size} bytes, preset {args.preset}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
