"""Fast self-checks of tests/support/tiny_models.py and tests/support/numpy_forward.py.

These need only numpy and gguf (no led_cpp build)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

gguf = pytest.importorskip("gguf")

from tests.support.numpy_forward import (  # noqa: E402
    depth_layer,
    depth_logits,
    forward,
    greedy,
    greedy_mismatches,
    greedy_with_margins,
    project,
    rope,
)
from tests.support.tiny_models import (  # noqa: E402
    ARCHS,
    CHATML_TEMPLATE,
    TOKEN_TYPE_CONTROL,
    TOKEN_TYPE_NORMAL,
    TOKEN_TYPE_USER_DEFINED,
    bytes_to_unicode,
    write_tiny_model,
)

PROMPT = "Hello world, the quick brown fox."


def _field(reader, key):
    f = reader.fields[key]
    if hasattr(f, "contents"):
        return f.contents()
    # older gguf-py: decode by hand
    vals = [f.parts[i] for i in f.data]
    if f.types and f.types[0] == gguf.GGUFValueType.ARRAY:
        if f.types[-1] == gguf.GGUFValueType.STRING:
            return [bytes(v).decode("utf-8") for v in vals]
        return [v.tolist()[0] for v in vals]
    if f.types and f.types[0] == gguf.GGUFValueType.STRING:
        return bytes(vals[0]).decode("utf-8")
    return vals[0].tolist()[0]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    return {arch: write_tiny_model(d / f"{arch}.gguf", arch, chat_template=True) for arch in ARCHS}


def test_bytes_to_unicode_is_gpt2():
    m = bytes_to_unicode()
    assert len(m) == 256 and len(set(m.values())) == 256
    assert m[ord("A")] == "A" and m[0x20] == "Ġ" and m[0x0A] == "Ċ" and m[0] == "Ā"


@pytest.mark.parametrize("arch", ARCHS)
def test_gguf_metadata(models, arch):
    m = models[arch]
    r = gguf.GGUFReader(str(m.path))
    assert _field(r, "general.architecture") == arch
    A = arch
    expect = {
        f"{A}.context_length": m.context_length,
        f"{A}.embedding_length": m.n_embd,
        f"{A}.block_count": m.n_layer,
        f"{A}.feed_forward_length": m.n_ff,
        f"{A}.attention.head_count": m.n_head,
        f"{A}.attention.head_count_kv": m.n_head_kv,
        f"{A}.attention.key_length": m.head_dim,
        f"{A}.attention.value_length": m.head_dim,
        f"{A}.rope.dimension_count": m.head_dim,
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "default",
        "tokenizer.ggml.bos_token_id": m.bos_id,
        "tokenizer.ggml.eos_token_id": m.eos_id,
        "tokenizer.ggml.add_bos_token": True,
        "tokenizer.chat_template": CHATML_TEMPLATE,
    }
    for k, v in expect.items():
        assert _field(r, k) == v, k
    assert _field(r, f"{A}.attention.layer_norm_rms_epsilon") == pytest.approx(m.rms_eps)
    assert _field(r, f"{A}.rope.freq_base") == pytest.approx(m.rope_freq_base)
    if arch == "gemma3":
        assert _field(r, f"{A}.attention.sliding_window") == m.sliding_window
        assert _field(r, f"{A}.attention.sliding_window_pattern") == 2
        assert _field(r, f"{A}.rope.freq_base_swa") == pytest.approx(m.rope_freq_base_swa)
        assert _field(r, f"{A}.rope.scaling.type") == "linear"
        assert _field(r, f"{A}.rope.scaling.factor") == pytest.approx(1.0 / m.rope_freq_scale)
        assert m.swa_layers == (True, False, True, False)

    toks = _field(r, "tokenizer.ggml.tokens")
    types = _field(r, "tokenizer.ggml.token_type")
    assert toks == m.tokens and list(types) == m.token_types
    assert 256 < len(toks) < 300 and len(set(toks)) == len(toks)
    assert _field(r, "tokenizer.ggml.merges") == ["Ā Ā"]
    assert "ĀĀ" in toks  # the merge product must exist in the vocab
    assert types[:256] == [TOKEN_TYPE_NORMAL] * 256
    assert types[m.special_ids["<|im_start|>"]] == TOKEN_TYPE_CONTROL
    assert types[m.special_ids["<think>"]] == TOKEN_TYPE_USER_DEFINED


@pytest.mark.parametrize("arch", ARCHS)
def test_gguf_tensors(models, arch):
    m = models[arch]
    r = gguf.GGUFReader(str(m.path))
    got = {t.name: t for t in r.tensors}
    assert set(got) == set(m.weights)
    for name, w in m.weights.items():
        t = got[name]
        assert t.tensor_type == gguf.GGMLQuantizationType.F32, name
        # GGUF/ggml dims are reversed relative to numpy
        assert list(map(int, t.shape)) == list(reversed(w.shape)), name
        np.testing.assert_array_equal(np.asarray(t.data).reshape(w.shape), w)
    E, D, H, KV, F = m.n_embd, m.head_dim, m.n_head, m.n_head_kv, m.n_ff
    ne = lambda n: list(map(int, got[n].shape))  # noqa: E731
    assert ne("token_embd.weight") == [E, m.n_vocab]
    assert ne("blk.0.attn_q.weight") == [E, H * D]
    assert ne("blk.0.attn_k.weight") == [E, KV * D]
    assert ne("blk.0.attn_v.weight") == [E, KV * D]
    assert ne("blk.0.attn_output.weight") == [H * D, E]
    assert ne("blk.0.ffn_gate.weight") == [E, F]
    assert ne("blk.0.ffn_up.weight") == [E, F]
    assert ne("blk.0.ffn_down.weight") == [F, E]
    if arch != "llama":
        assert ne("blk.0.attn_q_norm.weight") == [D]
        assert ne("blk.0.attn_k_norm.weight") == [D]
    if arch == "gemma3":
        assert ne("blk.0.post_attention_norm.weight") == [E]
        assert ne("blk.0.post_ffw_norm.weight") == [E]
    assert ("output.weight" in got) == (not m.tied_output)


def test_tied_default_and_override(tmp_path):
    assert write_tiny_model(tmp_path / "a.gguf", "llama").tied_output is False
    assert write_tiny_model(tmp_path / "b.gguf", "qwen3").tied_output is True
    assert write_tiny_model(tmp_path / "c.gguf", "gemma3").tied_output is True
    m = write_tiny_model(tmp_path / "d.gguf", "llama", tied_output=True, n_layer=1)
    assert "output.weight" not in m.weights
    assert m.output_weight is m.weights["token_embd.weight"]
    m = write_tiny_model(tmp_path / "e.gguf", "qwen3", tied_output=False, n_layer=1)
    assert m.output_weight.shape == (m.n_vocab, m.n_embd)


def test_seed_determinism(tmp_path):
    a = write_tiny_model(tmp_path / "a.gguf", "qwen3", seed=3, n_layer=2)
    b = write_tiny_model(tmp_path / "b.gguf", "qwen3", seed=3, n_layer=2)
    c = write_tiny_model(tmp_path / "c.gguf", "qwen3", seed=4, n_layer=2)
    assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert not np.array_equal(a.weights["blk.0.attn_q.weight"], c.weights["blk.0.attn_q.weight"])


def test_encode_decode(models):
    m = models["llama"]
    assert m.encode("hi") == [m.bos_id, ord("h"), ord("i")]
    assert m.encode("hi", add_bos=False) == [ord("h"), ord("i")]
    assert m.encode("é", add_bos=False) == list("é".encode())
    ids = m.encode("<|im_start|>a<think>b</think>", add_bos=False)
    assert ids == [
        m.special_ids["<|im_start|>"],
        ord("a"),
        m.special_ids["<think>"],
        ord("b"),
        m.special_ids["</think>"],
    ]
    # control tokens are plain text unless parse_special; user-defined ones always match
    ids = m.encode("<|im_end|><think>", add_bos=False, parse_special=False)
    assert ids == list(b"<|im_end|>") + [m.special_ids["<think>"]]
    assert m.encode("\0\0\0", add_bos=False) == [256, 0]
    assert m.decode(m.encode("héllo\n", add_bos=False)) == "héllo\n"
    assert m.eog_ids == {m.eos_id, m.special_ids["<|im_end|>"]}


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_shapes_and_project(models, arch):
    m = models[arch]
    toks = m.encode(PROMPT)
    r = forward(m, toks)
    n = len(toks)
    assert r.embeddings.shape == (n, m.n_embd)
    assert len(r.hidden) == m.n_layer and all(h.shape == (n, m.n_embd) for h in r.hidden)
    assert r.logits.shape == (n, m.n_vocab)
    assert np.all(np.isfinite(r.logits))
    np.testing.assert_allclose(project(m, r.hidden[-1], ln=True), r.logits, rtol=0, atol=1e-12)
    np.testing.assert_allclose(project(m, r.final_norm, ln=False), r.logits, rtol=0, atol=1e-12)
    expect_scale = np.sqrt(m.n_embd) if arch == "gemma3" else 1.0
    np.testing.assert_allclose(r.embeddings, m.token_embd[toks].astype(np.float64) * expect_scale, rtol=1e-6)
    # logits are neither flat nor saturated
    std = r.logits.std(axis=-1).mean()
    assert 1.0 < std < 20.0
    assert len(r.layer_inputs) == m.n_layer and r.layer_inputs[0] is r.embeddings


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_causal_and_deterministic(models, arch):
    m = models[arch]
    toks = m.encode(PROMPT)
    r1 = forward(m, toks)
    r2 = forward(m, toks)
    np.testing.assert_array_equal(r1.logits, r2.logits)
    # appending / changing later tokens never changes earlier outputs
    longer = toks + m.encode(" and more", add_bos=False)
    r3 = forward(m, longer)
    n = len(toks)
    np.testing.assert_allclose(r3.logits[:n], r1.logits, rtol=0, atol=1e-10)
    for h1, h3 in zip(r1.hidden, r3.hidden):
        np.testing.assert_allclose(h3[:n], h1, rtol=0, atol=1e-10)
    changed = list(toks)
    changed[5] = (changed[5] + 1) % 256
    r4 = forward(m, changed)
    np.testing.assert_allclose(r4.logits[:5], r1.logits[:5], rtol=0, atol=1e-10)
    assert np.abs(r4.logits[5:] - r1.logits[5:]).max() > 1e-3  # and earlier ones do matter


def test_gemma3_sliding_window_receptive_field(tmp_path):
    # all layers sliding: a token more than n_layer*(window-1) back cannot matter
    m = write_tiny_model(tmp_path / "g.gguf", "gemma3", n_layer=2, sliding_window=4, swa_pattern=[True, True])
    assert m.swa_layers == (True, True)
    toks = m.encode("abcdefghijklmnopqrst")
    alt = list(toks)
    alt[1] = ord("z")
    a, b = forward(m, toks).logits, forward(m, alt).logits
    reach = 1 + m.n_layer * (m.sliding_window - 1)  # last position that can still see token 1
    assert np.abs(a[reach] - b[reach]).max() > 1e-6
    np.testing.assert_allclose(a[reach + 1 :], b[reach + 1 :], rtol=0, atol=1e-12)
    # with a global layer the influence reaches the end
    g = write_tiny_model(tmp_path / "h.gguf", "gemma3", n_layer=2, sliding_window=4, swa_pattern=[True, False])
    a, b = forward(g, toks).logits, forward(g, alt).logits
    assert np.abs(a[-1] - b[-1]).max() > 1e-6


def test_rope_relative_and_modes():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((1, 1, 16))
    k = rng.standard_normal((1, 1, 16))
    for mode in ("norm", "neox"):

        def dot(pq, pk, mode=mode):
            return float(
                (
                    rope(q, np.array([pq]), base=10000.0, mode=mode) * rope(k, np.array([pk]), base=10000.0, mode=mode)
                ).sum()
            )

        assert dot(7, 3) == pytest.approx(dot(24, 20), rel=1e-9)
        assert rope(q, np.array([0]), base=10000.0, mode=mode) == pytest.approx(q)
    # position 1, first pair: norm rotates (x0, x1), neox rotates (x0, x8)
    x = np.zeros((1, 1, 16))
    x[0, 0, 0] = 1.0
    yn = rope(x, np.array([1]), base=10000.0, mode="norm")[0, 0]
    yx = rope(x, np.array([1]), base=10000.0, mode="neox")[0, 0]
    assert yn[1] == pytest.approx(np.sin(1.0)) and yn[8] == 0.0
    assert yx[8] == pytest.approx(np.sin(1.0)) and yx[1] == 0.0
    # linear scaling: freq_scale 1/2 at position 2 == no scaling at position 1
    assert rope(x, np.array([2]), base=10000.0, freq_scale=0.5) == pytest.approx(rope(x, np.array([1]), base=10000.0))


@pytest.mark.parametrize("arch", ARCHS)
def test_greedy(models, arch):
    m = models[arch]
    prompt = m.encode(PROMPT)
    g1 = greedy(m, prompt, 8)
    g2, margins = greedy_with_margins(m, prompt, 8)
    assert g1 == g2 and len(g1) == 8 and len(margins) == 8
    assert all(0 <= t < m.n_vocab for t in g1)
    assert greedy_mismatches(m, prompt, g1) == []
    # the first greedy token is the argmax of the prompt's last logits
    assert g1[0] == int(np.argmax(forward(m, prompt).logits[-1]))
    # a wrong token is reported
    bad = list(g1)
    bad[3] = int(np.argmin(forward(m, prompt + g1[:3]).logits[-1]))
    assert len(greedy_mismatches(m, prompt, bad)) >= 1
    # stop tokens end generation (stop token included)
    st = greedy(m, prompt, 8, stop_tokens=[g1[2]])
    assert st == g1[: g1.index(g1[2]) + 1]


def test_ggml_compat_close(models):
    for m in models.values():
        toks = m.encode(PROMPT)
        a = forward(m, toks).logits
        b = forward(m, toks, ggml_compat=True).logits
        assert 0 < np.abs(a - b).max() < 0.1


def test_depth_logits_layout(models):
    m = models["qwen3"]
    toks = m.encode(PROMPT)
    r = forward(m, toks)
    n = m.n_layer
    assert [depth_layer(n, j, "paper") for j in range(n)] == [3, 2, 1, 0]
    assert [depth_layer(n, j, "reference") for j in range(n)] == [2, 1, 0, -1]
    dl = depth_logits(m, toks, n, ln=True)
    assert dl.shape == (n, m.n_vocab)
    np.testing.assert_allclose(dl[0], r.logits[-1], atol=1e-12)
    np.testing.assert_allclose(dl[1], project(m, r.hidden[2][-1], ln=True), atol=1e-12)
    raw = depth_logits(m, toks, n, ln=False, layer_counting="reference")
    np.testing.assert_allclose(raw[0], r.logits[-1], atol=1e-12)  # row 0 is always normalised
    np.testing.assert_allclose(raw[3], project(m, r.embeddings[-1], ln=False), atol=1e-12)
    with pytest.raises(ValueError):
        depth_logits(m, toks, n + 1)
