"""Tiny random-weight GGUF models of many llama.cpp architectures, from one table.

Each entry of ``ARCHITECTURES`` says what the pinned llama.cpp's loader asks of one
architecture (``load_arch_hparams``/``load_arch_tensors`` in ``src/models/<arch>.cpp``):
the hyperparameter keys beyond the common ones, and the tensors of each kind of layer,
written as ``"<name> <ne0>,<ne1>,..."`` with the shape in llama.cpp's ``create_tensor``
order over the symbols of ``DIMENSIONS`` (a key's value may be such an expression too; a tuple
gives one value per layer, cycled). ``check_names`` holds the names to the ``gguf`` package's
tables (``gguf.constants.MODEL_TENSORS`` where it knows the architecture) or the pinned
llama.cpp's ``src/llama-arch.cpp``, so a typo cannot pass as a tensor llama.cpp ignores.

``write_arch_model(path, arch)`` writes the F32 model; ``python -m tests.support.arch_models ARCH OUT``
does the same from the command line.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tests.support.tiny_models import build_vocab

# Symbols of the shapes (small, so a model loads and decodes in milliseconds).
DIMENSIONS: dict[str, int] = {
    "E": 64,  # n_embd
    "N": 4,  # n_head
    "NKV": 2,  # n_head_kv
    "H": 16,  # head dim
    "F": 96,  # n_ff
    "X": 4,  # experts
    "XU": 2,  # experts used
    "FE": 32,  # expert n_ff
    "FS": 32,  # shared expert n_ff
    "L": 4,  # layers
    # recurrent (Mamba-2 / gated delta net) sizes
    "CONV": 4,
    "DS": 16,
    "DT": 4,
    "G": 2,
    "DI": 64,
    # multi-head latent attention
    "QK": 24,
    "VH": 16,
    "KVR": 32,
    "ROT": 8,
    # DeepSeek-V4: query LoRA rank, output groups and LoRA rank, hyper-connection streams, indexer
    "QR": 32,
    "OG": 2,
    "OR": 16,
    "HC": 4,
    "IH": 2,
    "IK": 64,
}

# Tensor groups shared by many architectures.
GLOBAL = ("token_embd.weight E,V", "output_norm.weight E", "output.weight E,V")
ATTENTION = (
    "attn_norm.weight E",
    "attn_q.weight E,N*H",
    "attn_k.weight E,NKV*H",
    "attn_v.weight E,NKV*H",
    "attn_output.weight N*H,E",
)
QK_NORM = ("attn_q_norm.weight H", "attn_k_norm.weight H")
FFN = ("ffn_norm.weight E", "ffn_gate.weight E,F", "ffn_up.weight E,F", "ffn_down.weight F,E")
EXPERTS = (
    "ffn_gate_inp.weight E,X",
    "ffn_gate_exps.weight E,FE,X",
    "ffn_up_exps.weight E,FE,X",
    "ffn_down_exps.weight FE,E,X",
)
SHARED_EXPERT = ("ffn_gate_shexp.weight E,FS", "ffn_up_shexp.weight E,FS", "ffn_down_shexp.weight FS,E")
# Qwen3-Next / Qwen3.5 gated delta net layer (key_dim = DS*G, value_dim = DS*DT)
DELTA_NET = (
    "attn_norm.weight E",
    "post_attention_norm.weight E",
    "attn_qkv.weight E,2*DS*G+DS*DT",
    "attn_gate.weight E,DS*DT",
    "ssm_conv1d.weight CONV,2*DS*G+DS*DT",
    "ssm_dt.bias DT",
    "ssm_a DT",
    "ssm_norm.weight DS",
    "ssm_out.weight DS*DT,E",
)
GATED_ATTENTION = (
    "attn_norm.weight E",
    "post_attention_norm.weight E",
    "attn_q.weight E,2*N*H",
    "attn_k.weight E,NKV*H",
    "attn_v.weight E,NKV*H",
    "attn_output.weight N*H,E",
) + QK_NORM
KIMI_DELTA = (
    "attn_norm.weight E",
    "ssm_conv1d_q.weight CONV,1,N*H,1",
    "ssm_conv1d_k.weight CONV,1,N*H,1",
    "ssm_conv1d_v.weight CONV,1,N*H,1",
    "attn_q.weight E,N*H",
    "attn_k.weight E,N*H",
    "attn_v.weight E,N*H",
    "ssm_f_a.weight E,N*H",
    "ssm_beta.weight E,N",
    "ssm_a 1,N",
    "ssm_dt.bias N*H",
    "ssm_g_a.weight E,N*H",
    "ssm_norm.weight H",
    "attn_output.weight N*H,E",
)
LATENT_ATTENTION = (
    "attn_norm.weight E",
    "attn_q.weight E,N*QK",
    "attn_kv_a_mqa.weight E,KVR+ROT",
    "attn_kv_a_norm.weight KVR",
    "attn_k_b.weight QK-ROT,KVR,N",
    "attn_v_b.weight KVR,VH,N",
    "attn_gate.weight E,N",
    "attn_output.weight N*VH,E",
)
MOE_FFN = ("ffn_norm.weight E", "exp_probs_b.bias X") + EXPERTS + SHARED_EXPERT
# Qwen3-Next / Qwen3.5-MoE: routed experts and a gated shared expert on every layer
GATED_SHARED_MOE = EXPERTS + SHARED_EXPERT + ("ffn_gate_inp_shexp.weight E",)
# DeepSeek-V4 layers: attention over hyper-connection streams, plus key compressors (ratio 128:
# "h"; ratio 4 with a sparse-attention indexer: "c")
HYPER_ATTENTION = (
    "attn_norm.weight E",
    "attn_sinks.weight N",
    "attn_q_a.weight E,QR",
    "attn_q_a_norm.weight QR",
    "attn_q_b.weight QR,N*H",
    "attn_kv.weight E,H",
    "attn_kv_a_norm.weight H",
    "attn_output_a.weight N*H//OG,OR,OG",
    "attn_output_b.weight OG*OR,E",
    "hc_attn_fn.weight HC*E,(2+HC)*HC",
    "hc_attn_base.weight (2+HC)*HC",
    "hc_attn_scale.weight 3",
    "hc_ffn_fn.weight HC*E,(2+HC)*HC",
    "hc_ffn_base.weight (2+HC)*HC",
    "hc_ffn_scale.weight 3",
)
COMPRESSOR = (
    "attn_compressor_kv.weight E,{c}*H",
    "attn_compressor_gate.weight E,{c}*H",
    "attn_compressor_ape.weight {c}*H,{r}",
    "attn_compressor_norm.weight H",
)
INDEXER = (
    "indexer.proj.weight E,IH",
    "indexer.attn_q_b.weight QR,IH*IK",
    "indexer_compressor_kv.weight E,2*IK",
    "indexer_compressor_gate.weight E,2*IK",
    "indexer_compressor_ape.weight 2*IK,4",
    "indexer_compressor_norm.weight IK",
)


@dataclass(frozen=True)
class Architecture:
    keys: Mapping[str, Any] = field(default_factory=dict)  # "<arch>." keys beyond COMMON_KEYS
    layers: Mapping[str, Sequence[str]] = field(default_factory=dict)  # kind -> tensors
    kinds: str = "a"  # layer kinds, cycled over the layers
    tensors: Sequence[str] = GLOBAL


COMMON_KEYS: dict[str, Any] = {
    "context_length": 256,
    "embedding_length": "E",
    "block_count": "L",
    "feed_forward_length": "F",
    "attention.head_count": "N",
    "attention.head_count_kv": "NKV",
    "attention.layer_norm_rms_epsilon": 1e-6,
    "attention.key_length": "H",
    "attention.value_length": "H",
    "rope.dimension_count": "H",
    "rope.freq_base": 10000.0,
}
MOE_KEYS = {"expert_count": "X", "expert_used_count": "XU", "expert_feed_forward_length": "FE"}

ARCHITECTURES: dict[str, Architecture] = {
    # dense transformers
    "llama": Architecture(layers={"a": ATTENTION + FFN}),
    "qwen2": Architecture(
        layers={"a": ATTENTION + FFN + ("attn_q.bias N*H", "attn_k.bias NKV*H", "attn_v.bias NKV*H")}
    ),
    "qwen3": Architecture(layers={"a": ATTENTION + QK_NORM + FFN}),
    "mistral3": Architecture(layers={"a": ATTENTION + FFN}),
    "smollm3": Architecture(layers={"a": ATTENTION + FFN}),
    "granite": Architecture(
        keys={"logit_scale": 2.0, "residual_scale": 0.5, "embedding_scale": 2.0, "attention.scale": 0.25},
        layers={"a": ATTENTION + FFN},
    ),
    "olmo2": Architecture(
        layers={
            "a": ATTENTION[1:]
            + FFN[1:]
            + (
                "attn_q_norm.weight N*H",
                "attn_k_norm.weight NKV*H",
                "post_attention_norm.weight E",
                "post_ffw_norm.weight E",
            )
        }
    ),
    "gemma2": Architecture(
        keys={"attention.sliding_window": 8, "final_logit_softcapping": 30.0, "attn_logit_softcapping": 50.0},
        tensors=GLOBAL[:2],
        layers={"a": ATTENTION + FFN + ("post_attention_norm.weight E", "post_ffw_norm.weight E")},
    ),
    "gemma3": Architecture(
        keys={"attention.sliding_window": 8},
        layers={"a": ATTENTION + QK_NORM + FFN + ("post_attention_norm.weight E", "post_ffw_norm.weight E")},
    ),
    "seed_oss": Architecture(layers={"a": ATTENTION + FFN[1:] + ("post_attention_norm.weight E",)}),
    "exaone4": Architecture(
        layers={"a": ATTENTION[1:] + QK_NORM + FFN[1:] + ("post_attention_norm.weight E", "post_ffw_norm.weight E")}
    ),
    "glm4": Architecture(
        layers={
            "a": ATTENTION
            + (
                "post_attention_norm.weight E",
                "ffn_norm.weight E",
                "ffn_up.weight E,2*F",
                "ffn_down.weight F,E",
                "post_ffw_norm.weight E",
            )
        }
    ),
    "ernie4_5": Architecture(layers={"a": ATTENTION + FFN}),
    # mixtures of experts
    "qwen3moe": Architecture(keys=MOE_KEYS, layers={"a": ATTENTION + QK_NORM + ("ffn_norm.weight E",) + EXPERTS}),
    "gpt-oss": Architecture(
        keys={**MOE_KEYS, "attention.sliding_window": 8},
        layers={
            "a": ATTENTION
            + (
                "post_attention_norm.weight E",
                "attn_sinks.weight N",
                "attn_output.bias E",
                "attn_q.bias N*H",
                "attn_k.bias NKV*H",
                "attn_v.bias NKV*H",
            )
            + EXPERTS
            + ("ffn_gate_inp.bias X", "ffn_gate_exps.bias FE,X", "ffn_down_exps.bias E,X", "ffn_up_exps.bias FE,X")
        },
    ),
    "cohere2moe": Architecture(
        keys={
            **MOE_KEYS,
            "attention.sliding_window": 8,
            "logit_scale": 0.5,
            "leading_dense_block_count": 1,
            "expert_shared_count": 1,
            "expert_shared_feed_forward_length": "FS",
        },
        kinds="dmmm",
        layers={"d": ATTENTION + FFN[1:], "m": ATTENTION + EXPERTS + SHARED_EXPERT},
    ),
    "step35": Architecture(
        keys={
            **MOE_KEYS,
            "attention.sliding_window": 8,
            "attention.sliding_window_pattern": [True, False],
            "expert_shared_feed_forward_length": "FS",
        },
        layers={"a": ATTENTION + QK_NORM + ("ffn_norm.weight E",) + EXPERTS + SHARED_EXPERT},
    ),
    "ernie4_5-moe": Architecture(
        keys={
            **MOE_KEYS,
            "interleave_moe_layer_step": 1,
            "leading_dense_block_count": 1,
            "expert_shared_feed_forward_length": "FS",
        },
        kinds="dmmm",
        layers={"d": ATTENTION + FFN, "m": ATTENTION + ("ffn_norm.weight E",) + EXPERTS + SHARED_EXPERT},
    ),
    "minimax-m2": Architecture(
        keys={**MOE_KEYS, "feed_forward_length": "FE", "expert_gating_func": 2},
        layers={
            "a": ATTENTION
            + ("attn_q_norm.weight N*H", "attn_k_norm.weight NKV*H", "ffn_norm.weight E", "exp_probs_b.bias X")
            + EXPERTS
        },
    ),
    # hybrids with recurrent layers
    "qwen3next": Architecture(
        keys={
            **MOE_KEYS,
            "expert_shared_feed_forward_length": "FS",
            "full_attention_interval": 2,
            "ssm.conv_kernel": "CONV",
            "ssm.inner_size": "DS*DT",
            "ssm.state_size": "DS",
            "ssm.time_step_rank": "DT",
            "ssm.group_count": "G",
        },
        kinds="ra",
        layers={"r": DELTA_NET + ("ssm_ba.weight E,2*DT",) + GATED_SHARED_MOE, "a": GATED_ATTENTION + GATED_SHARED_MOE},
    ),
    "qwen35": Architecture(
        keys={
            "full_attention_interval": 2,
            "rope.dimension_sections": ["H//8", "H//8", "H//4", 0],
            "ssm.conv_kernel": "CONV",
            "ssm.inner_size": "DS*DT",
            "ssm.state_size": "DS",
            "ssm.time_step_rank": "DT",
            "ssm.group_count": "G",
        },
        kinds="ra",
        layers={
            "r": DELTA_NET + ("ssm_beta.weight E,DT", "ssm_alpha.weight E,DT") + FFN[1:],
            "a": GATED_ATTENTION + FFN[1:],
        },
    ),
    "qwen35moe": Architecture(
        keys={
            **MOE_KEYS,
            "expert_shared_feed_forward_length": "FS",
            "full_attention_interval": 2,
            "rope.dimension_sections": ["H//8", "H//8", "H//4", 0],
            "ssm.conv_kernel": "CONV",
            "ssm.inner_size": "DS*DT",
            "ssm.state_size": "DS",
            "ssm.time_step_rank": "DT",
            "ssm.group_count": "G",
        },
        kinds="ra",
        layers={
            "r": DELTA_NET + ("ssm_beta.weight E,DT", "ssm_alpha.weight E,DT") + GATED_SHARED_MOE,
            "a": GATED_ATTENTION + GATED_SHARED_MOE,
        },
    ),
    "gemma4": Architecture(
        keys={
            "attention.sliding_window": 8,
            "attention.sliding_window_pattern": (True, False),
            "embedding_length_per_layer_input": 0,
            "attention.key_length_swa": "H",
            "attention.value_length_swa": "H",
            "final_logit_softcapping": 30.0,
        },
        tensors=GLOBAL + ("rope_freqs.weight H//2",),
        layers={"a": ATTENTION + QK_NORM + FFN + ("post_attention_norm.weight E", "post_ffw_norm.weight E")},
    ),
    # Mamba-2, attention and FFN layers; l_out-<il> names the FFN layers' output before the residual
    "nemotron_h": Architecture(
        keys={
            "ssm.conv_kernel": "CONV",
            "ssm.inner_size": "DI",
            "ssm.state_size": "DS",
            "ssm.time_step_rank": "DT",
            "ssm.group_count": "G",
            "attention.layer_norm_epsilon": 1e-5,
            "attention.head_count_kv": (0, "NKV", 0, 0),
            "feed_forward_length": (0, 0, 0, "F"),
        },
        kinds="mamf",
        layers={
            "m": (
                "attn_norm.weight E",
                "ssm_in.weight E,2*DI+2*G*DS+DT",
                "ssm_conv1d.weight CONV,DI+2*G*DS",
                "ssm_conv1d.bias DI+2*G*DS",
                "ssm_dt.bias DT",
                "ssm_a 1,DT",
                "ssm_d 1,DT",
                "ssm_norm.weight DI//G,G",
                "ssm_out.weight DI,E",
            ),
            "a": ATTENTION,
            "f": ("attn_norm.weight E", "ffn_up.weight E,F", "ffn_down.weight F,E"),
        },
    ),
    # Kimi delta attention and multi-head latent attention layers, a dense first layer, then experts
    "bailingmoe3": Architecture(
        keys={
            **MOE_KEYS,
            "attention.head_count_kv": (0, 1, 0, 1),
            "attention.key_length": "KVR+ROT",
            "attention.value_length": "KVR",
            "attention.key_length_mla": "QK",
            "attention.value_length_mla": "VH",
            "attention.kv_lora_rank": "KVR",
            "rope.dimension_count": "ROT",
            "ssm.conv_kernel": "CONV",
            "kda.head_dim": "H",
            "kda.gate_lower_bound": -5.0,
            "expert_shared_count": 1,
            "expert_shared_feed_forward_length": "FS",
            "leading_dense_block_count": 1,
            "expert_gating_func": 2,
        },
        kinds="Dara",
        layers={"D": KIMI_DELTA + FFN, "r": KIMI_DELTA + MOE_FFN, "a": LATENT_ATTENTION + MOE_FFN},
    ),
    # hyper-connections: every layer output holds HC streams, which the head mixes (output_hc_*)
    "deepseek4": Architecture(
        keys={
            **MOE_KEYS,
            "attention.head_count_kv": 1,
            "rope.dimension_count": "ROT",
            "attention.q_lora_rank": "QR",
            "attention.sliding_window": 8,
            "expert_shared_count": 1,
            "expert_weights_scale": 1.0,
            "expert_weights_norm": True,
            "swiglu_clamp_exp": 10.0,
            "attention.indexer.head_count": "IH",
            "attention.indexer.key_length": "IK",
            "attention.indexer.top_k": 4,
            "attention.output_group_count": "OG",
            "attention.output_lora_rank": "OR",
            "attention.compress_rope_freq_base": 10000.0,
            "hyper_connection.count": "HC",
            "hyper_connection.sinkhorn_iterations": 3,
            "hyper_connection.epsilon": 1e-6,
            "hash_layer_count": 0,
            "attention.compress_ratios": (0, 4, 128, 0),
            "expert_gating_func": 4,
        },
        tensors=GLOBAL + ("output_hc_fn.weight HC*E,HC", "output_hc_base.weight HC", "output_hc_scale.weight 1"),
        kinds="pchp",
        layers={
            "p": HYPER_ATTENTION + MOE_FFN,
            "c": HYPER_ATTENTION + tuple(t.format(c=2, r=4) for t in COMPRESSOR) + INDEXER + MOE_FFN,
            "h": HYPER_ATTENTION + tuple(t.format(c=1, r=128) for t in COMPRESSOR) + MOE_FFN,
        },
    ),
}


def _value(expression: Any, dims: Mapping[str, int]) -> Any:
    return eval(expression, {"__builtins__": {}}, dict(dims)) if isinstance(expression, str) else expression  # noqa: S307


def _shape(spec: str, dims: Mapping[str, int]) -> tuple[str, tuple[int, ...]]:
    name, _, shape = spec.partition(" ")
    return name, tuple(int(_value(part, dims)) for part in shape.split(","))


def llama_source(relative: str) -> Path | None:
    """A file of the pinned llama.cpp's source (LLAMA_CPP_DIR, else the build's third_party copy)."""
    roots = [Path(os.environ["LLAMA_CPP_DIR"])] if os.environ.get("LLAMA_CPP_DIR") else []
    roots.append(Path(__file__).resolve().parents[2] / "third_party" / "llama.cpp")
    return next((root / relative for root in roots if (root / relative).is_file()), None)


def known_tensor_names(arch: str) -> set[str] | None:
    """The tensor names gguf's tables give this architecture (``{bid}`` for the layer), or
    None where the installed gguf does not know it."""
    from gguf import constants

    by_name = {name: arch_enum for arch_enum, name in constants.MODEL_ARCH_NAMES.items()}
    if arch not in by_name:
        return None
    return {constants.TENSOR_NAMES[tensor] for tensor in constants.MODEL_TENSORS[by_name[arch]]}


def check_names(arch: str) -> bool:
    """Every tensor of the entry is one llama.cpp names: in gguf's tables for this architecture
    where gguf knows it, else in gguf's or the pinned llama.cpp's (src/llama-arch.cpp) table of
    all names. Raises ValueError naming a stranger; returns False when neither table was there
    to ask (an architecture newer than the installed gguf, no llama.cpp source at hand)."""
    from gguf import constants

    allowed = known_tensor_names(arch)
    if allowed is None:
        allowed = set(constants.TENSOR_NAMES.values())
        source = llama_source("src/llama-arch.cpp")
        if source is not None:
            allowed |= {
                name.replace("%d", "{bid}") for name in re.findall(r'LLM_TENSOR_\w+,\s*"([^"]+)"', source.read_text())
            }
    entry = ARCHITECTURES[arch]
    specs = list(entry.tensors) + [spec for tensors in entry.layers.values() for spec in tensors]
    unverified = False
    for spec in specs:
        name = spec.split(" ")[0]
        base = name.rsplit(".", 1)[0] if name.endswith((".weight", ".bias")) else name
        if base in allowed or "blk.{bid}." + base in allowed:
            continue
        if known_tensor_names(arch) is None and llama_source("src/llama-arch.cpp") is None:
            unverified = True
            continue
        raise ValueError(f"{arch}: tensor {base!r} is not in llama.cpp's tensor tables for this architecture")
    return not unverified


def write_arch_model(path: str | Path, arch: str, *, seed: int = 0, n_vocab: int | None = None, **sizes: int) -> Path:
    """Writes an F32 GGUF of `arch` with random weights (linear layers N(0, 1/n_in), norms
    1 + N(0, 0.01), an untied head giving logits of standard deviation about 4). `sizes`
    override DIMENSIONS (E=576, L=30, ...); n_vocab pads the vocabulary with filler tokens."""
    import gguf

    if arch not in ARCHITECTURES:
        raise ValueError(f"no table entry for {arch!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    entry = ARCHITECTURES[arch]
    tokens, types = build_vocab()
    if n_vocab is not None:
        tokens = tokens + [f"<filler{i}>" for i in range(n_vocab - len(tokens))]
        types = types + [1] * (n_vocab - len(types))
    unknown = set(sizes) - set(DIMENSIONS)
    if unknown:
        raise ValueError(f"unknown sizes {sorted(unknown)}; known: {sorted(DIMENSIONS)}")
    dims = dict(DIMENSIONS, **sizes, V=len(tokens))
    rng = np.random.default_rng(seed)
    path = Path(path)
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name(f"tiny-{arch}")
    writer.add_file_type(0)
    keys = {**COMMON_KEYS, **entry.keys}
    for key, expression in keys.items():
        value = expression if isinstance(expression, tuple) else _value(expression, dims)
        full = f"{arch}.{key}"
        if isinstance(value, bool):
            writer.add_bool(full, value)
        elif isinstance(value, int):
            writer.add_uint32(full, value)
        elif isinstance(value, float):
            writer.add_float32(full, value)
        elif isinstance(value, tuple):  # one value per layer, cycled
            writer.add_array(full, [_value(value[i % len(value)], dims) for i in range(dims["L"])])
        elif isinstance(value, list):
            writer.add_array(full, [_value(item, dims) for item in value])
        else:
            writer.add_string(full, value)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(["Ā Ā"])
    writer.add_bos_token_id(tokens.index("<|bos|>"))
    writer.add_eos_token_id(tokens.index("<|endoftext|>"))

    def weights(name: str, shape: tuple[int, ...]) -> np.ndarray:
        numpy_shape = tuple(reversed(shape))
        if "norm" in name or name.startswith("rope_freqs") or name.endswith("ssm_d"):
            return (1.0 + 0.1 * rng.standard_normal(numpy_shape)).astype(np.float32)
        if name.endswith("ssm_a"):  # stored as -exp(A_log): decaying state
            return -(1.0 + 0.1 * rng.standard_normal(numpy_shape)).astype(np.float32)
        if name == "output.weight":
            return (rng.standard_normal(numpy_shape) * 4.0 / math.sqrt(shape[0])).astype(np.float32)
        if name.endswith(".bias") or len(shape) == 1:
            return (0.1 * rng.standard_normal(numpy_shape)).astype(np.float32)
        return (rng.standard_normal(numpy_shape) / math.sqrt(shape[0])).astype(np.float32)

    for spec in entry.tensors:
        name, shape = _shape(spec, dims)
        writer.add_tensor(name, weights(name, shape))
    for il in range(dims["L"]):
        for spec in entry.layers[entry.kinds[il % len(entry.kinds)]]:
            name, shape = _shape(spec, dims)
            writer.add_tensor(f"blk.{il}.{name}", weights(name, shape))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


if __name__ == "__main__":
    write_arch_model(sys.argv[2], sys.argv[1])
