"""Independent NumPy forward pass for the tiny models of ``tests/support/tiny_models.py``.

Semantics follow llama.cpp (src/models/llama.cpp, qwen3.cpp, gemma3.cpp,
src/llama-graph.cpp, ggml-cpu rope):

* RMS norm: ``x / sqrt(mean(x**2) + eps) * w`` (no ``1 + w``: Gemma's offset
  is baked into the GGUF weights by the converter, and llama.cpp multiplies).
* RoPE: llama uses LLAMA_ROPE_TYPE_NORM (rotates adjacent pairs (2i, 2i+1));
  qwen3 and gemma3 use NEOX (rotates (i, i + d/2)).  theta_i = p * s *
  base**(-2i/d) with linear scale s = 1/rope.scaling.factor.
* GQA: query head h reads kv head ``h // (n_head // n_head_kv)``.
* Causal attention; gemma3 SWA layers also mask keys with ``p_q - p_k >=
  n_swa`` (llama_hparams::is_masked_swa, LLAMA_SWA_TYPE_STANDARD); SWA layers
  use rope base ``rope.freq_base_swa`` and no scaling.
* llama: pre-norm, SiLU-gated FFN, kq scale 1/sqrt(head_dim).
* qwen3: as llama + per-head RMS norm of Q and K (before RoPE), NEOX rope.
* gemma3: input embeddings * sqrt(n_embd); q/k norm; Q scaled by
  1/sqrt(head_dim) before attention; post-attention and post-ffw RMS norms
  (applied to the branch output before the residual add); GELU(tanh)-gated
  FFN; optional final logit soft-capping.

All arithmetic is float64 by default.  Optional imitation of ggml-CPU
rounding:

* ``gelu_f16=True``: ggml-cpu computes GELU through an F16 lookup table
  (GGML_GELU_FP16): ``f16(gelu(f16(x)))`` (exact cut-offs at +-10).
* ``kv_f16=True``: the default F16 KV cache without flash attention: Q, K, V
  rounded to F16 and the softmax probabilities rounded to F16 before the
  product with V (ggml_mul_mat converts src1 to src0's F16 type).
* ``ggml_compat=True``: both.

Each emulated op reproduces llama.cpp's to ~1e-7 given the same inputs, but a
value that lands near an F16 rounding midpoint can still round the other way
(float64 vs float32 inputs), so these options shrink differences by ~3-4x,
they do not remove them.

Measured against llama.cpp (the vendored tree, CPU, 1 thread, the default
4-layer 64-wide models, ~65-token prompt, 32 greedy steps; max abs logit
difference, logits have std ~4):

* F32 KV cache, flash attention off: llama/qwen3 ~1e-5 (float32 noise);
  gemma3 ~6e-3 (its F16 GELU table), ~2e-3 with ``gelu_f16=True``.
* F16 KV cache, flash attention off: ~1e-2; ~2-4e-3 with ``ggml_compat``.
* llama.cpp defaults (F16 KV cache, flash attention AUTO = on for CPU; the
  CPU flash-attention kernel casts K/V to F16 and accumulates V*softmax in
  F16): prompt logits ~1e-2, decode-step logits up to ~4e-2.  Nothing here
  imitates that accumulator.

So greedy tokens can legitimately differ where the top-2 logit gap is below
a few 1e-2: compare with :func:`greedy_mismatches` (teacher-forced, with a
tolerance) rather than demanding token-for-token equality with
:func:`greedy`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # only for annotations; works whether tests/ is a package or not
    from tests.support.tiny_models import TinyModel

__all__ = [
    "ForwardResult",
    "forward",
    "project",
    "depth_layer",
    "depth_logits",
    "greedy",
    "greedy_with_margins",
    "greedy_mismatches",
    "rms_norm",
    "rope",
    "gelu_tanh",
    "silu",
]


@dataclass
class ForwardResult:
    tokens: list[int]
    embeddings: np.ndarray  # [n_tokens, n_embd]: input to layer 0 (after gemma3's sqrt(n_embd) scale)
    hidden: list[np.ndarray]  # n_layer x [n_tokens, n_embd]: residual stream after layer il ("l_out-<il>")
    final_norm: np.ndarray  # [n_tokens, n_embd]: output_norm(hidden[-1]) ("result_norm")
    logits: np.ndarray  # [n_tokens, n_vocab] ("result_output")

    @property
    def layer_inputs(self) -> list[np.ndarray]:
        """Input of each layer (embeddings, hidden[0], ..., hidden[-2])."""
        return [self.embeddings] + self.hidden[:-1]


# ----------------------------------------------------------------------------- primitives


def rms_norm(x: np.ndarray, w: np.ndarray | None, eps: float) -> np.ndarray:
    """RMS norm over the last axis, then multiply by ``w`` (broadcast)."""
    x = np.asarray(x, dtype=np.float64)
    y = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    if w is not None:
        y = y * np.asarray(w, dtype=np.float64)
    return y


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


_GELU_A = 0.044715
_SQRT_2_OVER_PI = 0.79788456080286535587989211986876


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * x * (1.0 + _GELU_A * x * x)))


def _gelu_ggml_f16_table(x: np.ndarray) -> np.ndarray:
    """ggml-cpu's GELU: table[f16(x)] stored as f16; exact cut-offs at +-10."""
    xh = x.astype(np.float16).astype(np.float32)
    t = gelu_tanh(xh.astype(np.float32)).astype(np.float16).astype(np.float64)
    return np.where(x <= -10.0, 0.0, np.where(x >= 10.0, x, t))


def rope(
    x: np.ndarray,
    positions: np.ndarray,
    *,
    base: float,
    freq_scale: float = 1.0,
    mode: str = "neox",
) -> np.ndarray:
    """Rotary embedding of x [n_tokens, n_heads, head_dim] (all dims rotated).

    mode "norm": pairs (2i, 2i+1) (LLAMA_ROPE_TYPE_NORM);
    mode "neox": pairs (i, i + d/2) (LLAMA_ROPE_TYPE_NEOX).
    """
    x = np.asarray(x, dtype=np.float64)
    d = x.shape[-1]
    half = d // 2
    inv = base ** (-2.0 * np.arange(half, dtype=np.float64) / d)  # [half]
    theta = freq_scale * np.asarray(positions, dtype=np.float64)[:, None] * inv[None, :]  # [T, half]
    cos = np.cos(theta)[:, None, :]
    sin = np.sin(theta)[:, None, :]
    out = np.empty_like(x)
    if mode == "norm":
        x0, x1 = x[..., 0::2], x[..., 1::2]
        out[..., 0::2] = x0 * cos - x1 * sin
        out[..., 1::2] = x0 * sin + x1 * cos
    elif mode == "neox":
        x0, x1 = x[..., :half], x[..., half:]
        out[..., :half] = x0 * cos - x1 * sin
        out[..., half:] = x0 * sin + x1 * cos
    else:
        raise ValueError(f"unknown rope mode {mode!r}")
    return out


def _f16(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float16).astype(np.float64)


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


# ----------------------------------------------------------------------------- model


def _attention_mask(model: TinyModel, il: int, positions: np.ndarray) -> np.ndarray:
    """Boolean [n_q, n_k]: True where attention is allowed."""
    pq = positions[:, None]
    pk = positions[None, :]
    allowed = pk <= pq
    if model.swa_layers[il] and model.sliding_window:
        allowed &= (pq - pk) < model.sliding_window
    return allowed


def _layer(model: TinyModel, il: int, x: np.ndarray, positions: np.ndarray, kv_f16: bool, gelu_f16: bool) -> np.ndarray:
    m = model
    f64 = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    w = lambda name: f64(m.w(name, il))  # noqa: E731
    T = x.shape[0]
    hd = m.head_dim

    h = rms_norm(x, w("attn_norm"), m.rms_eps)
    q = (h @ w("attn_q").T).reshape(T, m.n_head, hd)
    k = (h @ w("attn_k").T).reshape(T, m.n_head_kv, hd)
    v = (h @ w("attn_v").T).reshape(T, m.n_head_kv, hd)

    if m.arch in ("qwen3", "gemma3"):
        q = rms_norm(q, w("attn_q_norm"), m.rms_eps)
        k = rms_norm(k, w("attn_k_norm"), m.rms_eps)

    if m.swa_layers[il]:
        base, scale = m.rope_freq_base_swa, m.rope_freq_scale_swa
    else:
        base, scale = m.rope_freq_base, m.rope_freq_scale
    q = rope(q, positions, base=base, freq_scale=scale, mode=m.rope_type)
    k = rope(k, positions, base=base, freq_scale=scale, mode=m.rope_type)

    if m.arch == "gemma3":
        q = q * m.attn_scale  # ggml_scale(Qcur, f_attention_scale); build_attn kq_scale = 1
        kq_scale = 1.0
    else:
        kq_scale = m.attn_scale  # 1/sqrt(head_dim)

    if kv_f16:  # F16 KV cache; Q converted to F16 for the K.Q product
        q, k, v = _f16(q), _f16(k), _f16(v)

    allowed = _attention_mask(m, il, positions)
    group = m.n_head // m.n_head_kv
    out = np.empty((T, m.n_head, hd))
    for hh in range(m.n_head):
        kvh = hh // group
        s = (q[:, hh, :] @ k[:, kvh, :].T) * kq_scale  # [T, T]
        s = np.where(allowed, s, -np.inf)
        p = _softmax(s, axis=-1)
        if kv_f16:  # probabilities converted to F16 for the product with the F16 V cache
            p = _f16(p.astype(np.float32))
        out[:, hh, :] = p @ v[:, kvh, :]
    a = out.reshape(T, m.n_head * hd) @ w("attn_output").T

    if m.arch == "gemma3":
        a = rms_norm(a, w("post_attention_norm"), m.rms_eps)
    x = x + a

    h = rms_norm(x, w("ffn_norm"), m.rms_eps)
    g = h @ w("ffn_gate").T
    u = h @ w("ffn_up").T
    if m.arch == "gemma3":
        act = _gelu_ggml_f16_table(g) if gelu_f16 else gelu_tanh(g)
    else:
        act = silu(g)
    f = (act * u) @ w("ffn_down").T
    if m.arch == "gemma3":
        f = rms_norm(f, w("post_ffw_norm"), m.rms_eps)
    return x + f


def project(model: TinyModel, h: np.ndarray, ln: bool = True) -> np.ndarray:
    """Logits from hidden states h [..., n_embd]: optional final RMS norm, then the head.

    ``project(m, r.hidden[-1], ln=True)`` equals ``r.logits``; use it on
    ``r.hidden[il]`` for per-depth ("logit lens") logits.
    """
    h = np.asarray(h, dtype=np.float64)
    if ln:
        h = rms_norm(h, model.weights["output_norm.weight"], model.rms_eps)
    logits = h @ np.asarray(model.output_weight, dtype=np.float64).T
    if model.final_logit_softcapping:
        c = model.final_logit_softcapping
        logits = c * np.tanh(logits / c)
    return logits


def depth_layer(n_layer: int, depth: int, layer_counting: str = "paper") -> int:
    """Layer whose output is depth ``depth`` (-1 = the embeddings entering layer 0).

    "paper": depth j is the output of layer n_layer-1-j; "reference": the
    stream entering that layer, i.e. the output of layer n_layer-2-j.
    (Mirrors led_cpp's cpp/led_graph.cpp depth_layer.)
    """
    if layer_counting == "paper":
        return n_layer - 1 - depth
    if layer_counting == "reference":
        return n_layer - 2 - depth
    raise ValueError(f"unknown layer_counting {layer_counting!r}")


def depth_logits(
    model: TinyModel,
    tokens: Sequence[int],
    d: int,
    *,
    ln: bool = True,
    layer_counting: str = "paper",
    **forward_kwargs: Any,
) -> np.ndarray:
    """Per-depth logits [d, n_vocab] at the last token, laid out like
    ``led_cpp.ModelHandle.depth_logits``: row 0 is always the model's final
    logits (last layer, final norm applied); row j >= 1 projects the output of
    ``depth_layer(n_layer, j, layer_counting)`` (the scaled embeddings for -1)
    through the head, with the final norm only when ``ln``.  Final-logit
    soft-capping (gemma3 option) applies to every row.
    """
    n_layer = model.n_layer
    if not 1 <= d <= n_layer:
        raise ValueError("d must lie in [1, n_layer]")
    r = forward(model, tokens, **forward_kwargs)
    rows = [r.logits[-1]]
    for j in range(1, d):
        il = depth_layer(n_layer, j, layer_counting)
        if il < -1:
            raise ValueError("d is too large for layer_counting='reference' on this model")
        h = r.embeddings[-1] if il == -1 else r.hidden[il][-1]
        rows.append(project(model, h, ln=ln))
    return np.stack(rows)


def forward(
    model: TinyModel,
    tokens: Sequence[int],
    *,
    positions: Sequence[int] | None = None,
    ggml_compat: bool = False,
    kv_f16: bool | None = None,
    gelu_f16: bool | None = None,
) -> ForwardResult:
    """Full forward pass over ``tokens`` (positions 0..n-1 unless given).

    ``kv_f16`` / ``gelu_f16`` default to ``ggml_compat`` (see the module doc).
    """
    kv_f16 = ggml_compat if kv_f16 is None else kv_f16
    gelu_f16 = ggml_compat if gelu_f16 is None else gelu_f16
    toks = [int(t) for t in tokens]
    if not toks:
        raise ValueError("empty token list")
    if min(toks) < 0 or max(toks) >= model.n_vocab:
        raise ValueError("token id out of range")
    pos = np.arange(len(toks)) if positions is None else np.asarray(positions, dtype=np.int64)
    if pos.shape != (len(toks),):
        raise ValueError("positions must have one entry per token")

    x = np.asarray(model.token_embd, dtype=np.float64)[toks]
    if model.embd_scale != 1.0:
        x = x * model.embd_scale
    embeddings = x
    hidden: list[np.ndarray] = []
    for il in range(model.n_layer):
        x = _layer(model, il, x, pos, kv_f16, gelu_f16)
        hidden.append(x)
    final_norm = rms_norm(x, model.weights["output_norm.weight"], model.rms_eps)
    logits = project(model, final_norm, ln=False)
    return ForwardResult(tokens=toks, embeddings=embeddings, hidden=hidden, final_norm=final_norm, logits=logits)


def greedy_with_margins(
    model: TinyModel,
    prompt_tokens: Sequence[int],
    n_new: int,
    *,
    stop_tokens: Sequence[int] | None = None,
    **forward_kwargs: Any,
) -> tuple[list[int], list[float]]:
    """Greedy decoding; also returns, per new token, the gap between the top
    two logits (small gaps are where a float-rounding difference could flip
    the argmax).  Stops after emitting a token in ``stop_tokens`` (the stop
    token is included in the output).  ``forward_kwargs`` go to :func:`forward`
    (``ggml_compat``, ``kv_f16``, ``gelu_f16``)."""
    seq = [int(t) for t in prompt_tokens]
    stop = set(int(t) for t in stop_tokens) if stop_tokens else set()
    new: list[int] = []
    margins: list[float] = []
    for _ in range(n_new):
        if len(seq) > model.context_length:
            raise ValueError("sequence exceeds the model's context_length")
        last = forward(model, seq, **forward_kwargs).logits[-1]
        order = np.argsort(-last, kind="stable")
        t = int(order[0])
        new.append(t)
        margins.append(float(last[order[0]] - last[order[1]]))
        seq.append(t)
        if t in stop:
            break
    return new, margins


def greedy(
    model: TinyModel,
    prompt_tokens: Sequence[int],
    n_new: int,
    *,
    stop_tokens: Sequence[int] | None = None,
    **forward_kwargs: Any,
) -> list[int]:
    """Argmax decoding of ``n_new`` tokens after ``prompt_tokens``; returns only
    the new tokens.  Ties break to the lowest id (as a stable argmax)."""
    return greedy_with_margins(model, prompt_tokens, n_new, stop_tokens=stop_tokens, **forward_kwargs)[0]


def greedy_mismatches(
    model: TinyModel,
    prompt_tokens: Sequence[int],
    generated: Sequence[int],
    *,
    tol: float = 0.05,
    **forward_kwargs: Any,
) -> list[str]:
    """Check an externally generated greedy continuation (e.g. llama.cpp's)
    step by step under teacher forcing: at step i, ``generated[i]`` must have
    a NumPy logit within ``tol`` of the maximum given ``prompt + generated[:i]``.

    Unlike comparing with :func:`greedy` token for token, this tolerates
    near-ties that rounding may break either way (the default ``tol`` covers
    llama.cpp's default F16 KV cache + flash attention).  Returns a list of
    human-readable problems (empty when the continuation is consistent).
    One full forward pass over the whole sequence is enough (causality).
    """
    seq = [int(t) for t in prompt_tokens] + [int(t) for t in generated]
    n_p = len(prompt_tokens)
    if not generated:
        return []
    logits = forward(model, seq, **forward_kwargs).logits
    problems = []
    for i, t in enumerate(generated):
        row = logits[n_p + i - 1]
        best = int(np.argmax(row))
        gap = float(row[best] - row[int(t)])
        if gap > tol:
            problems.append(
                f"step {i}: got token {int(t)} (logit {row[int(t)]:.4f}), numpy argmax {best} "
                f"(logit {row[best]:.4f}, gap {gap:.4f} > tol {tol})"
            )
    return problems
