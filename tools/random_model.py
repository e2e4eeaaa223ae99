"""Random-weight GGUF models of a real model's shape, for speed and memory measurements.

    python tools/random_model.py OUT.gguf [--shape qwen3-4b|tiny] [--quantize Q4_K_M]

The weights are random (a cyclic pool of normal values, scaled per tensor), so the final layer is
nearly flat and LED explores on almost every step: the worst case for its cost.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Shape:
    n_layer: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_vocab: int
    rope_theta: float = 1e6


SHAPES = {
    # Qwen3-4B: 36 layers, n_embd 2560, n_ff 9728, 32 heads, 8 KV heads, head dim 128, vocab 151936.
    "qwen3-4b": Shape(36, 2560, 9728, 32, 8, 128, 151936),
    "tiny": Shape(4, 256, 512, 4, 2, 64, 4096),
}


def _vocabulary(n_vocab: int) -> tuple[list[str], list[int]]:
    # GPT-2 byte tokens first, then unique filler tokens; two special tokens at the end.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    byte_tokens = [chr(c) for _, c in sorted(zip(bs, cs))]
    tokens = (
        byte_tokens
        + ["ĠĠ"]
        + [f"tok{i}" for i in range(n_vocab - len(byte_tokens) - 3)]
        + ["<|endoftext|>", "<|im_end|>"]
    )
    types = [1] * (n_vocab - 2) + [3, 3]
    return tokens, types


def write(path: Path, shape: Shape, seed: int = 0) -> None:
    import gguf

    rng = np.random.default_rng(seed)
    pool = rng.standard_normal(1 << 24).astype(np.float16)
    offset = 0

    def tensor(rows: int, cols: int, scale: float) -> np.ndarray:
        nonlocal offset
        size = rows * cols
        start = offset % pool.size
        offset += 7919 * 13 + size
        values = np.resize(np.roll(pool[:65536], start % 65536) if size < 65536 else pool[start:], size)
        return (values.reshape(rows, cols) * np.float16(scale)).astype(np.float16)

    writer = gguf.GGUFWriter(str(path), "qwen3")
    writer.add_name("random-qwen3")
    writer.add_context_length(4096)
    writer.add_embedding_length(shape.n_embd)
    writer.add_block_count(shape.n_layer)
    writer.add_feed_forward_length(shape.n_ff)
    writer.add_head_count(shape.n_head)
    writer.add_head_count_kv(shape.n_head_kv)
    writer.add_key_length(shape.head_dim)
    writer.add_value_length(shape.head_dim)
    writer.add_rope_freq_base(shape.rope_theta)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    tokens, types = _vocabulary(shape.n_vocab)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(["Ġ Ġ"])
    writer.add_eos_token_id(shape.n_vocab - 2)
    writer.add_bos_token_id(shape.n_vocab - 2)
    writer.add_add_bos_token(False)

    q_dim, kv_dim = shape.n_head * shape.head_dim, shape.n_head_kv * shape.head_dim
    embd_scale = 1.0
    writer.add_tensor("token_embd.weight", tensor(shape.n_vocab, shape.n_embd, embd_scale))  # tied output
    writer.add_tensor("output_norm.weight", np.ones(shape.n_embd, dtype=np.float32))
    for il in range(shape.n_layer):
        prefix = f"blk.{il}"
        writer.add_tensor(f"{prefix}.attn_norm.weight", np.ones(shape.n_embd, dtype=np.float32))
        writer.add_tensor(f"{prefix}.ffn_norm.weight", np.ones(shape.n_embd, dtype=np.float32))
        writer.add_tensor(f"{prefix}.attn_q_norm.weight", np.ones(shape.head_dim, dtype=np.float32))
        writer.add_tensor(f"{prefix}.attn_k_norm.weight", np.ones(shape.head_dim, dtype=np.float32))
        writer.add_tensor(f"{prefix}.attn_q.weight", tensor(q_dim, shape.n_embd, shape.n_embd**-0.5))
        writer.add_tensor(f"{prefix}.attn_k.weight", tensor(kv_dim, shape.n_embd, shape.n_embd**-0.5))
        writer.add_tensor(f"{prefix}.attn_v.weight", tensor(kv_dim, shape.n_embd, shape.n_embd**-0.5))
        writer.add_tensor(f"{prefix}.attn_output.weight", tensor(shape.n_embd, q_dim, 0.5 * q_dim**-0.5))
        writer.add_tensor(f"{prefix}.ffn_gate.weight", tensor(shape.n_ff, shape.n_embd, shape.n_embd**-0.5))
        writer.add_tensor(f"{prefix}.ffn_up.weight", tensor(shape.n_ff, shape.n_embd, shape.n_embd**-0.5))
        writer.add_tensor(f"{prefix}.ffn_down.weight", tensor(shape.n_embd, shape.n_ff, 0.5 * shape.n_ff**-0.5))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="qwen3-4b")
    parser.add_argument("--quantize", default=None, help="Q4_K_M: quantize with llama.cpp's API into OUT")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    f16 = args.out.with_suffix(".f16.gguf") if args.quantize else args.out
    write(f16, SHAPES[args.shape])
    print(f"wrote {f16} ({f16.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - start:.1f} s", flush=True)
    if args.quantize:
        from led_cpp import _core

        start = time.perf_counter()
        _core.quantize(str(f16), str(args.out), args.quantize, args.threads)
        f16.unlink()
        print(
            f"quantized to {args.quantize}: {args.out} ({args.out.stat().st_size / 2**30:.2f} GiB) "
            f"in {time.perf_counter() - start:.1f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
