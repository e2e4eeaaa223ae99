"""Tiny random GGUF models for tests (llama, qwen3, gemma3).

``write_tiny_model`` writes a small F32 GGUF file that llama.cpp loads as the
requested architecture and returns a :class:`TinyModel` holding the
hyperparameters, the vocabulary and the exact weights (as float32 numpy arrays,
keyed by GGUF tensor name).  ``tests/support/numpy_forward.py`` runs an independent
NumPy forward pass over those weights, so tests can compare llama.cpp's output
(through led_cpp) against it.

Orientation of ``TinyModel.weights``: numpy (row-major, PyTorch-like) order,
i.e. a linear layer ``y = x @ W.T`` is stored as ``W`` with shape
``[n_out, n_in]``; ``token_embd.weight`` is ``[n_vocab, n_embd]``.  This is
what ``gguf.GGUFWriter.add_tensor`` expects: GGUF/ggml stores the dimensions
reversed, so llama.cpp sees ``ne = {n_in, n_out}`` exactly as it asks for in
``create_tensor(..., {n_embd, n_out})``.

Vocabulary (``tokenizer.ggml.model = "gpt2"``, pre-tokenizer ``"default"``):

* ids 0..255: the 256 byte tokens, id == byte value, spelled with GPT-2's
  ``bytes_to_unicode`` mapping (so byte 0x20 is ``"Ġ"``, 0x0A is ``"Ċ"``);
* id 256: ``"ĀĀ"`` (two NUL bytes), the product of the one BPE merge
  ``"Ā Ā"`` (GGUF arrays cannot be empty and llama.cpp insists on a merges
  key; a merge between NUL bytes never fires on ordinary text);
* then special tokens: ``<|bos|>``, ``<|endoftext|>`` (eos), ``<|im_start|>``,
  ``<|im_end|>``, ``<think>``, ``</think>``, ``<|pad|>``.

So for ordinary text, ``tokens == [bos] + list(text.encode("utf-8"))``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = [
    "ARCHS",
    "CHATML_TEMPLATE",
    "TOKEN_TYPE_NORMAL",
    "TOKEN_TYPE_CONTROL",
    "TOKEN_TYPE_USER_DEFINED",
    "SPECIAL_TOKENS",
    "TinyModel",
    "bytes_to_unicode",
    "build_vocab",
    "write_tiny_model",
]

ARCHS = ("llama", "qwen3", "gemma3")

# llama_token_type values (gguf.TokenType)
TOKEN_TYPE_NORMAL = 1
TOKEN_TYPE_CONTROL = 3
TOKEN_TYPE_USER_DEFINED = 4

# (text, token type) in id order, starting right after the merged token.
SPECIAL_TOKENS: tuple[tuple[str, int], ...] = (
    ("<|bos|>", TOKEN_TYPE_CONTROL),
    ("<|endoftext|>", TOKEN_TYPE_CONTROL),  # eos; llama.cpp marks it EOG by its text
    ("<|im_start|>", TOKEN_TYPE_CONTROL),
    ("<|im_end|>", TOKEN_TYPE_CONTROL),  # llama.cpp auto-detects it as EOT/EOG by its text
    ("<think>", TOKEN_TYPE_USER_DEFINED),
    ("</think>", TOKEN_TYPE_USER_DEFINED),
    ("<|pad|>", TOKEN_TYPE_CONTROL),
)

MERGES: tuple[str, ...] = ("Ā Ā",)

# A plain ChatML template (jinja), the shape Qwen-style chat templates have.
CHATML_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- endif -%}"
)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> unicode character mapping (as in llama.cpp's unicode.cpp)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = list(bs)
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


_B2U = bytes_to_unicode()
_U2B = {u: b for b, u in _B2U.items()}


THINK_TOKENS = ("<think>", "</think>")


def build_vocab(extra_tokens: Sequence[tuple[str, int]] = (), think_tokens: bool = True) -> tuple[list[str], list[int]]:
    """Token texts and token types, in id order: ``SPECIAL_TOKENS`` (without ``<think>`` and
    ``</think>`` when not ``think_tokens``), then ``extra_tokens``."""
    tokens = [_B2U[b] for b in range(256)]
    types = [TOKEN_TYPE_NORMAL] * 256
    for m in MERGES:
        tokens.append(m.replace(" ", ""))
        types.append(TOKEN_TYPE_NORMAL)
    for text, ttype in tuple(SPECIAL_TOKENS) + tuple(extra_tokens):
        if text in THINK_TOKENS and not think_tokens:
            continue
        tokens.append(text)
        types.append(ttype)
    assert len(set(tokens)) == len(tokens)
    return tokens, types


@dataclass
class TinyModel:
    """A tiny GGUF model written by :func:`write_tiny_model`."""

    path: Path
    arch: str
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    n_ff: int
    head_dim: int
    n_vocab: int
    context_length: int
    rms_eps: float
    rope_type: str  # "norm" (adjacent pairs, llama) or "neox" (halves, qwen3/gemma3)
    rope_freq_base: float  # global (non-SWA) layers
    rope_freq_scale: float  # global layers: 1 / rope.scaling.factor (linear scaling)
    rope_freq_base_swa: float  # SWA layers (gemma3)
    rope_freq_scale_swa: float  # SWA layers (gemma3): llama.cpp never scales them
    sliding_window: int | None  # gemma3: keys at distance >= sliding_window are masked on SWA layers
    swa_layers: tuple[bool, ...]  # per layer: True = sliding-window layer
    tied_output: bool  # True: no output.weight, the head is token_embd.weight
    final_logit_softcapping: float | None
    attn_scale: float  # scale applied to q.k (gemma3: applied to Q before attention)
    embd_scale: float  # input embedding multiplier (gemma3: sqrt(n_embd); else 1)
    seed: int
    tokens: list[str]
    token_types: list[int]
    bos_id: int
    eos_id: int
    pad_id: int
    special_ids: dict[str, int]
    eog_ids: frozenset[int]  # ids llama.cpp treats as end-of-generation
    chat_template: str | None
    weights: dict[str, np.ndarray] = field(repr=False)

    # ------------------------------------------------------------------ weights
    def w(self, name: str, il: int | None = None) -> np.ndarray:
        """Weight by short name, e.g. ``w("attn_q", 0)`` -> ``blk.0.attn_q.weight``."""
        key = f"blk.{il}.{name}.weight" if il is not None else f"{name}.weight"
        return self.weights[key]

    @property
    def output_weight(self) -> np.ndarray:
        """The LM head [n_vocab, n_embd] (token_embd when tied)."""
        if self.tied_output:
            return self.weights["token_embd.weight"]
        return self.weights["output.weight"]

    @property
    def token_embd(self) -> np.ndarray:
        return self.weights["token_embd.weight"]

    # ---------------------------------------------------------------- tokenizer
    def encode(self, text: str, *, add_bos: bool = True, parse_special: bool = True) -> list[int]:
        """Tokenize like llama.cpp does for this vocabulary.

        Control tokens (``<|im_start|>`` ...) are recognised only when
        ``parse_special``; user-defined ones (``<think>``) always, as in
        llama.cpp's tokenizer_st_partition.  Everything else is byte-level.
        """
        specials = [
            (t, i)
            for i, (t, ty) in enumerate(zip(self.tokens, self.token_types))
            if (ty == TOKEN_TYPE_USER_DEFINED) or (parse_special and ty == TOKEN_TYPE_CONTROL)
        ]
        out: list[int] = [self.bos_id] if add_bos else []
        if specials:
            # longest first so that e.g. "</think>" wins over a shorter prefix
            specials.sort(key=lambda p: -len(p[0]))
            pat = re.compile("|".join(re.escape(t) for t, _ in specials))
            ids = dict(specials)
        else:
            pat, ids = None, {}
        pos = 0
        pieces: list[tuple[str, bool]] = []
        if pat is not None:
            for m in pat.finditer(text):
                if m.start() > pos:
                    pieces.append((text[pos : m.start()], False))
                pieces.append((m.group(0), True))
                pos = m.end()
        if pos < len(text):
            pieces.append((text[pos:], False))
        for piece, special in pieces:
            if special:
                out.append(ids[piece])
            else:
                out.extend(_encode_bytes(piece.encode("utf-8")))
        return out

    def token_bytes(self, token_id: int) -> bytes:
        """Raw bytes of a token (special tokens: their UTF-8 text)."""
        text = self.tokens[token_id]
        if self.token_types[token_id] != TOKEN_TYPE_NORMAL:
            return text.encode("utf-8")
        return bytes(_U2B[c] for c in text)

    def decode(self, ids: Iterable[int], *, skip_special: bool = False) -> str:
        buf = bytearray()
        for i in ids:
            if skip_special and self.token_types[i] == TOKEN_TYPE_CONTROL:
                continue
            buf += self.token_bytes(i)
        return buf.decode("utf-8", errors="replace")

    @property
    def hparams(self) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            for k in (
                "arch",
                "n_layer",
                "n_embd",
                "n_head",
                "n_head_kv",
                "n_ff",
                "head_dim",
                "n_vocab",
                "context_length",
                "rms_eps",
                "rope_type",
                "rope_freq_base",
                "rope_freq_scale",
                "rope_freq_base_swa",
                "rope_freq_scale_swa",
                "sliding_window",
                "swa_layers",
                "tied_output",
                "final_logit_softcapping",
                "attn_scale",
                "embd_scale",
            )
        }


def _encode_bytes(data: bytes) -> list[int]:
    """Byte tokens, applying the single merge (0x00 0x00 -> id 256) left to right."""
    out: list[int] = []
    i = 0
    while i < len(data):
        if data[i] == 0 and i + 1 < len(data) and data[i + 1] == 0:
            out.append(256)
            i += 2
        else:
            out.append(data[i])
            i += 1
    return out


# --------------------------------------------------------------------------- writer

_ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "llama": dict(rms_eps=1e-5, rope_freq_base=10000.0, tied_output=False, rope_type="norm"),
    "qwen3": dict(rms_eps=1e-6, rope_freq_base=1_000_000.0, tied_output=True, rope_type="neox"),
    "gemma3": dict(rms_eps=1e-6, rope_freq_base=1_000_000.0, tied_output=True, rope_type="neox"),
}


def write_tiny_model(
    path: str | Path,
    arch: str,
    *,
    n_layer: int = 4,
    n_embd: int = 64,
    n_head: int = 4,
    n_head_kv: int = 2,
    n_ff: int = 128,
    head_dim: int | None = None,
    seed: int = 0,
    context_length: int = 256,
    tied_output: bool | None = None,
    rms_eps: float | None = None,
    rope_freq_base: float | None = None,
    rope_scaling_factor: float | None = None,
    sliding_window: int | None = None,
    swa_pattern: int | Sequence[bool] | None = None,
    rope_freq_base_swa: float = 10000.0,
    final_logit_softcapping: float | None = None,
    chat_template: str | bool | None = None,
    embd_std: float | None = None,
    logit_std: float = 4.0,
    proj_gain: float = 1.0,
    norm_std: float = 0.1,
    name: str | None = None,
    edit_weights: Callable[[dict[str, np.ndarray]], None] | None = None,
    split_max_tensors: int = 0,
    extra_tokens: Sequence[tuple[str, int]] = (),
    think_tokens: bool = True,
) -> TinyModel:
    """Write a tiny random F32 GGUF model and return its description.

    arch: "llama" (NORM rope, SiLU FFN, untied head by default),
    "qwen3" (NEOX rope, per-head q/k RMS norm, tied head by default) or
    "gemma3" (NEOX rope, q/k norm, post-attn/post-ffw norms, GELU(tanh) FFN,
    sqrt(n_embd) embedding scale, sliding-window layers, tied head by default).

    head_dim: per-head size (default n_embd // n_head); written as
    attention.key_length/value_length and rope.dimension_count.

    gemma3 only: ``sliding_window`` (default 8 tokens) and ``swa_pattern``
    (default 2: layers with ``il % 2 == 0`` slide, odd layers are global;
    an int n gives llama.cpp's rule ``il % n < n - 1``, a bool sequence gives
    the layers explicitly).  SWA layers use rope base ``rope_freq_base_swa``
    (10000) without scaling; global layers use ``rope_freq_base`` (1e6) and
    linear ``rope_scaling_factor`` (default 8.0 for gemma3, as in Gemma 3 4B+;
    default none for the other archs).

    chat_template: None (no template key), True (``CHATML_TEMPLATE``) or a
    jinja string.  extra_tokens: (text, token type) pairs appended to the
    vocabulary (a model family's markers and control tokens); think_tokens
    False leaves ``<think>`` and ``</think>`` out.

    split_max_tensors: > 0 writes a split model of parts with at most that many
    tensors, named ``<stem>-00001-of-0000N.gguf`` beside ``path`` (gguf-py's
    writer, as convert_hf_to_gguf.py --split-max-tensors writes them).

    Weight scales: linear layers N(0, proj_gain**2 / n_in) (O(1)
    activations, attention neither uniform nor one-hot); norm weights
    1 + N(0, norm_std**2); token_embd N(0, embd_std**2) (default 0.5, gemma3
    1/sqrt(n_embd) so that the sqrt(n_embd)-scaled input has RMS ~1); logits
    get a std of about ``logit_std`` (not flat, not saturated).  Untied head:
    output.weight N(0, (logit_std/sqrt(n_embd))**2).  Tied head:
    output_norm.weight has balanced random signs and magnitude
    logit_std/(sqrt(n_embd)*embd_std) - with a tied head and positive norm
    weights a random model mostly predicts the token it has just read (its
    own embedding sits in the residual stream), which would make greedy
    decoding insensitive to the context.

    edit_weights: called with the weight dict (name -> numpy array) before it is
    written, to force exact ties (zeroed layers, repeated head rows); the
    returned TinyModel holds the edited weights.
    """
    import gguf  # imported lazily so that importing this module never fails

    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; expected one of {ARCHS}")
    if n_head % n_head_kv != 0:
        raise ValueError("n_head must be a multiple of n_head_kv")
    d = dict(_ARCH_DEFAULTS[arch])
    path = Path(path)
    head_dim = head_dim if head_dim is not None else n_embd // n_head
    if head_dim % 2:
        raise ValueError("head_dim must be even (RoPE)")
    if tied_output is None:
        tied_output = d["tied_output"]
    rms_eps = d["rms_eps"] if rms_eps is None else rms_eps
    rope_freq_base = d["rope_freq_base"] if rope_freq_base is None else rope_freq_base
    if arch == "gemma3" and rope_scaling_factor is None:
        rope_scaling_factor = 8.0
    rope_freq_scale = 1.0 if not rope_scaling_factor else 1.0 / rope_scaling_factor

    # --- sliding window (gemma3)
    if arch == "gemma3":
        if sliding_window is None:
            sliding_window = 8
        if swa_pattern is None:
            swa_pattern = 2
        if sliding_window > 0:
            if isinstance(swa_pattern, int):
                n = swa_pattern
                swa_layers = tuple(n == 0 or (il % n < n - 1) for il in range(n_layer))
            else:
                swa_layers = tuple(bool(x) for x in swa_pattern)
                if len(swa_layers) != n_layer:
                    raise ValueError("swa_pattern sequence must have n_layer entries")
        else:
            sliding_window = None
            swa_layers = (False,) * n_layer
    else:
        if sliding_window:
            raise ValueError("sliding_window is only supported for gemma3 here")
        sliding_window = None
        swa_layers = (False,) * n_layer

    tokens, types = build_vocab(extra_tokens, think_tokens)
    n_vocab = len(tokens)
    special_ids = {t: tokens.index(t) for t, _ in tuple(SPECIAL_TOKENS) + tuple(extra_tokens) if t in tokens}
    bos_id = special_ids["<|bos|>"]
    eos_id = special_ids["<|endoftext|>"]
    pad_id = special_ids["<|pad|>"]
    eog_ids = frozenset({eos_id, special_ids["<|im_end|>"]})

    if chat_template is True:
        chat_template = CHATML_TEMPLATE
    elif chat_template is False:
        chat_template = None

    # float32 rounding where llama.cpp computes these constants in float
    if arch == "gemma3":
        embd_scale = float(np.float32(math.sqrt(n_embd)))
        attn_scale = float(np.float32(1.0) / np.sqrt(np.float32(head_dim)))
    else:
        embd_scale = 1.0
        attn_scale = float(np.float32(1.0) / np.sqrt(np.float32(head_dim)))

    # --- weights (numpy orientation: [n_out, n_in])
    rng = np.random.default_rng(seed)
    n_q = n_head * head_dim
    n_kv = n_head_kv * head_dim

    def lin(n_out: int, n_in: int) -> np.ndarray:
        return (rng.standard_normal((n_out, n_in)) * (proj_gain / math.sqrt(n_in))).astype(np.float32)

    def norm(n: int) -> np.ndarray:
        return (1.0 + norm_std * rng.standard_normal(n)).astype(np.float32)

    if embd_std is None:
        embd_std = 1.0 / math.sqrt(n_embd) if arch == "gemma3" else 0.5

    W: dict[str, np.ndarray] = {}
    W["token_embd.weight"] = (rng.standard_normal((n_vocab, n_embd)) * embd_std).astype(np.float32)
    for il in range(n_layer):
        p = f"blk.{il}."
        W[p + "attn_norm.weight"] = norm(n_embd)
        W[p + "attn_q.weight"] = lin(n_q, n_embd)
        W[p + "attn_k.weight"] = lin(n_kv, n_embd)
        W[p + "attn_v.weight"] = lin(n_kv, n_embd)
        W[p + "attn_output.weight"] = lin(n_embd, n_q)
        if arch in ("qwen3", "gemma3"):
            W[p + "attn_q_norm.weight"] = norm(head_dim)
            W[p + "attn_k_norm.weight"] = norm(head_dim)
        if arch == "gemma3":
            W[p + "post_attention_norm.weight"] = norm(n_embd)
        W[p + "ffn_norm.weight"] = norm(n_embd)
        W[p + "ffn_gate.weight"] = lin(n_ff, n_embd)
        W[p + "ffn_up.weight"] = lin(n_ff, n_embd)
        W[p + "ffn_down.weight"] = lin(n_embd, n_ff)
        if arch == "gemma3":
            W[p + "post_ffw_norm.weight"] = norm(n_embd)
    if tied_output:
        signs = np.ones(n_embd)
        signs[rng.permutation(n_embd)[: n_embd // 2]] = -1.0
        gain = logit_std / (math.sqrt(n_embd) * embd_std)
        W["output_norm.weight"] = (norm(n_embd) * signs * gain).astype(np.float32)
    else:
        W["output_norm.weight"] = norm(n_embd)
        output_std = logit_std / math.sqrt(n_embd)
        W["output.weight"] = (rng.standard_normal((n_vocab, n_embd)) * output_std).astype(np.float32)

    if edit_weights is not None:  # tests force exact ties (zeroed layers, repeated head rows)
        edit_weights(W)

    # --- GGUF
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), arch, split_max_tensors=split_max_tensors)
    A = arch
    writer.add_name(name or f"tiny-{arch}-s{seed}")
    writer.add_file_type(0)  # ALL_F32
    writer.add_uint32(f"{A}.context_length", context_length)
    writer.add_uint32(f"{A}.embedding_length", n_embd)
    writer.add_uint32(f"{A}.block_count", n_layer)
    writer.add_uint32(f"{A}.feed_forward_length", n_ff)
    writer.add_uint32(f"{A}.attention.head_count", n_head)
    writer.add_uint32(f"{A}.attention.head_count_kv", n_head_kv)
    writer.add_float32(f"{A}.attention.layer_norm_rms_epsilon", rms_eps)
    writer.add_uint32(f"{A}.attention.key_length", head_dim)
    writer.add_uint32(f"{A}.attention.value_length", head_dim)
    writer.add_uint32(f"{A}.rope.dimension_count", head_dim)
    writer.add_float32(f"{A}.rope.freq_base", rope_freq_base)
    writer.add_uint32(f"{A}.vocab_size", n_vocab)
    if rope_scaling_factor:
        writer.add_string(f"{A}.rope.scaling.type", "linear")
        writer.add_float32(f"{A}.rope.scaling.factor", float(rope_scaling_factor))
    if arch == "gemma3":
        if sliding_window:
            writer.add_uint32(f"{A}.attention.sliding_window", sliding_window)
            if isinstance(swa_pattern, int):
                writer.add_uint32(f"{A}.attention.sliding_window_pattern", swa_pattern)
            else:
                writer.add_array(f"{A}.attention.sliding_window_pattern", [bool(x) for x in swa_layers])
            writer.add_float32(f"{A}.rope.freq_base_swa", rope_freq_base_swa)
        if final_logit_softcapping:
            writer.add_float32(f"{A}.final_logit_softcapping", final_logit_softcapping)
    elif final_logit_softcapping:
        raise ValueError("final_logit_softcapping is only supported for gemma3")

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(list(MERGES))
    writer.add_bos_token_id(bos_id)
    writer.add_eos_token_id(eos_id)
    writer.add_pad_token_id(pad_id)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    if chat_template:
        writer.add_chat_template(chat_template)

    for k, v in W.items():
        writer.add_tensor(k, v)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    return TinyModel(
        path=path,
        arch=arch,
        n_layer=n_layer,
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=n_head_kv,
        n_ff=n_ff,
        head_dim=head_dim,
        n_vocab=n_vocab,
        context_length=context_length,
        rms_eps=float(np.float32(rms_eps)),
        rope_type=d["rope_type"],
        rope_freq_base=float(rope_freq_base),
        rope_freq_scale=float(rope_freq_scale),
        rope_freq_base_swa=float(rope_freq_base_swa),
        rope_freq_scale_swa=1.0,
        sliding_window=sliding_window,
        swa_layers=swa_layers,
        tied_output=bool(tied_output),
        final_logit_softcapping=final_logit_softcapping or None,
        attn_scale=attn_scale,
        embd_scale=embd_scale,
        seed=seed,
        tokens=tokens,
        token_types=types,
        bos_id=bos_id,
        eos_id=eos_id,
        pad_id=pad_id,
        special_ids=special_ids,
        eog_ids=eog_ids,
        chat_template=chat_template,
        weights=W,
    )
