"""Fuzz harness for led_cpp.gguf_check: only ModelFileError may ever escape.

Two engines:

* atheris (coverage-guided libFuzzer for Python), when installed::

      python -m tests.support.fuzz_gguf_check --seconds 600 --corpus /tmp/gguf_corpus

* a self-contained mutation fuzzer (bit flips, interesting integers written over
  the header/metadata/tensor-table fields, insertions, deletions, truncations,
  splices) seeded from valid GGUF files built here; used when atheris is missing,
  with ``--engine simple``, and in-process by tests/test_gguf_check.py::

      python -m tests.support.fuzz_gguf_check --engine simple --seconds 60

Every input goes through the validator's stream entry point (the same code path
as check_gguf_file after the file is opened, on an in-memory file).  A finding is
any exception other than ModelFileError, a ModelFileError flagged
``internal_error`` (the validator's own safety net fired) or a message that is not
in the documented form, and -- in the simple engine -- any single input that
takes longer than ``HANG_SECONDS``.

The module also holds ``build_gguf``, a small GGUF writer with full control over
every field, which the tests use to build hostile files.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import random
import re
import struct
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
MODULE_DIR = ROOT / "python" / "led_cpp"
HANG_SECONDS = 1.0


def load_gguf_check(instrument: bool = False):
    """Import the package python/led_cpp/gguf_check/ from the source tree as ``gguf_check``
    (no compiled extension needed; optionally under atheris instrumentation)."""
    mod = sys.modules.get("gguf_check")
    src = (MODULE_DIR / "gguf_check" / "__init__.py").resolve()
    if mod is not None and Path(getattr(mod, "__file__", "")).resolve() == src:
        return mod
    sys.path.insert(0, str(MODULE_DIR))
    try:
        if instrument:
            import atheris

            with atheris.instrument_imports(include=["gguf_check"]):
                mod = importlib.import_module("gguf_check")
        else:
            mod = importlib.import_module("gguf_check")
    finally:
        sys.path.remove(str(MODULE_DIR))
    if Path(mod.__file__).resolve() != src:
        raise ImportError(f"imported gguf_check from {mod.__file__}, expected {src}")
    return mod


# ---------------------------------------------------------------------------
# A GGUF writer with full control (for seeds and hostile test files)
# ---------------------------------------------------------------------------

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
_FMT = {
    U8: "<B",
    I8: "<b",
    U16: "<H",
    I16: "<h",
    U32: "<I",
    I32: "<i",
    F32: "<f",
    BOOL: "<?",
    U64: "<Q",
    I64: "<q",
    F64: "<d",
}

# ggml type id -> (block size, bytes per block) for the types the builder writes
GGML_SIZES = {
    0: (1, 4),
    1: (1, 2),
    2: (32, 18),
    3: (32, 20),
    8: (32, 34),
    10: (256, 84),
    12: (256, 144),
    14: (256, 210),
    24: (1, 1),
    26: (1, 4),
    30: (1, 2),
}
F32_T, F16_T, Q4_0_T, Q8_0_T, Q4_K_T = 0, 1, 2, 8, 12


def gguf_string(s) -> bytes:
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b


def gguf_value(vtype: int, value: Any, etype: int | None = None) -> bytes:
    """Encode a value (without its type tag).  For ARR, ``value`` is a list of
    ``etype`` values, or a raw (count, payload bytes) tuple."""
    if vtype == STR:
        return gguf_string(value)
    if vtype == ARR:
        assert etype is not None
        if isinstance(value, tuple):
            count, payload = value
            return struct.pack("<IQ", etype, count) + payload
        return struct.pack("<IQ", etype, len(value)) + b"".join(gguf_value(etype, v) for v in value)
    return struct.pack(_FMT[vtype], value)


class KV:
    """One metadata entry; ``raw`` overrides the encoded type+value bytes."""

    def __init__(self, key, vtype: int, value: Any = None, etype: int | None = None, raw: bytes | None = None) -> None:
        self.key, self.vtype, self.value, self.etype, self.raw = key, vtype, value, etype, raw

    def encode(self) -> bytes:
        body = (
            self.raw
            if self.raw is not None
            else (struct.pack("<I", self.vtype) + gguf_value(self.vtype, self.value, self.etype))
        )
        return gguf_string(self.key) + body


class Tensor:
    """One tensor-table entry.  ``dims`` are ggml order (ne[0] first).  ``offset``
    None = the packed, aligned offset the builder computes; ``nbytes`` None =
    computed from the type; ``n_dims`` overrides the count written."""

    def __init__(
        self,
        name,
        dims: Sequence[int],
        ggml_type: int = F32_T,
        offset: int | None = None,
        nbytes: int | None = None,
        n_dims: int | None = None,
    ) -> None:
        self.name, self.dims, self.ggml_type = name, list(dims), ggml_type
        self.offset, self.nbytes, self.n_dims = offset, nbytes, n_dims

    def size(self) -> int:
        if self.nbytes is not None:
            return self.nbytes
        blck, tsize = GGML_SIZES[self.ggml_type]
        n = 1
        for d in self.dims:
            n *= d
        return n // blck * tsize


def llama_kvs(arch: str = "llama", n_layer: int = 1, tokens: list[str] | None = None) -> list[KV]:
    """Minimal plausible metadata for a llama-style model."""
    tokens = tokens if tokens is not None else ["<unk>", "<s>", "</s>", "a", "b", "c"]
    return [
        KV("general.architecture", STR, arch),
        KV("general.name", STR, "fuzz seed"),
        KV(f"{arch}.block_count", U32, n_layer),
        KV(f"{arch}.context_length", U32, 128),
        KV(f"{arch}.embedding_length", U32, 64),
        KV(f"{arch}.feed_forward_length", U32, 128),
        KV(f"{arch}.attention.head_count", U32, 4),
        KV(f"{arch}.attention.layer_norm_rms_epsilon", F32, 1e-5),
        KV("tokenizer.ggml.model", STR, "llama"),
        KV("tokenizer.ggml.tokens", ARR, tokens, etype=STR),
        KV("tokenizer.ggml.scores", ARR, [0.0] * len(tokens), etype=F32),
        KV("tokenizer.ggml.token_type", ARR, [1] * len(tokens), etype=I32),
    ]


def build_gguf(
    kvs: Sequence[KV],
    tensors: Sequence[Tensor] = (),
    *,
    version: int = 3,
    magic: bytes = b"GGUF",
    alignment: int = 32,
    n_kv: int | None = None,
    n_tensors: int | None = None,
    data: bool = True,
    fill: int = 0x3C,
) -> bytes:
    """Serialise a GGUF file.  ``alignment`` is what the builder pads to (add a
    general.alignment KV yourself to declare a different one)."""
    out = bytearray(magic)
    out += struct.pack(
        "<IQQ", version, len(tensors) if n_tensors is None else n_tensors, len(kvs) if n_kv is None else n_kv
    )
    for kv in kvs:
        out += kv.encode()
    offset = 0
    placed = []
    for t in tensors:
        off = offset if t.offset is None else t.offset
        placed.append((off, t.size()))
        n_dims = len(t.dims) if t.n_dims is None else t.n_dims
        out += gguf_string(t.name) + struct.pack("<I", n_dims)
        out += b"".join(struct.pack("<q", d) for d in t.dims)
        out += struct.pack("<iQ", t.ggml_type, off)
        offset = off + (t.size() + alignment - 1) // alignment * alignment
    if tensors and data:
        out += b"\0" * (-len(out) % alignment)
        base = len(out)
        end = max((o + n for o, n in placed), default=0)
        out += bytes([fill]) * end
        assert len(out) == base + end
    return bytes(out)


def seed_files() -> list[bytes]:
    """Valid GGUF files covering every value type, several tensor types and layouts."""
    every_type = [
        KV("seed.u8", U8, 7),
        KV("seed.i8", I8, -7),
        KV("seed.u16", U16, 700),
        KV("seed.i16", I16, -700),
        KV("seed.u32", U32, 70000),
        KV("seed.i32", I32, -70000),
        KV("seed.f32", F32, 0.5),
        KV("seed.bool", BOOL, True),
        KV("seed.str", STR, "hello"),
        KV("seed.u64", U64, 1 << 40),
        KV("seed.i64", I64, -(1 << 40)),
        KV("seed.f64", F64, 0.25),
        KV("seed.arr_u8", ARR, [1, 2, 3], etype=U8),
        KV("seed.arr_i64", ARR, [1, -2], etype=I64),
        KV("seed.arr_str", ARR, ["x", "", "zz"], etype=STR),
        KV("seed.arr_empty", ARR, [], etype=F64),
        KV("seed.arr_bool", ARR, [True, False], etype=BOOL),
    ]
    tensors = [
        Tensor("token_embd.weight", [64, 6], F32_T),
        Tensor("blk.0.attn_q.weight", [64, 2], Q8_0_T),
        Tensor("blk.0.attn_k.weight", [64, 2], Q4_0_T),
        Tensor("blk.0.ffn_up.weight", [256, 1], Q4_K_T),
        Tensor("blk.0.attn_norm.weight", [64], F16_T),
        Tensor("output_norm.weight", [3, 1, 1, 1], F32_T),
    ]
    moe = [
        KV("general.architecture", STR, "qwen3moe"),
        KV("qwen3moe.block_count", U32, 2),
        KV("qwen3moe.expert_count", U32, 8),
        KV("qwen3moe.expert_used_count", U32, 2),
        KV("qwen3moe.rope.scaling.type", STR, "yarn"),
        KV("tokenizer.ggml.model", STR, "gpt2"),
        KV("tokenizer.ggml.tokens", ARR, ["a", "b", "ab"], etype=STR),
        KV("tokenizer.ggml.merges", ARR, ["a b"], etype=STR),
    ]
    return [
        build_gguf(llama_kvs() + every_type, tensors),
        build_gguf(llama_kvs() + [KV("general.alignment", U32, 64)], tensors[:3], alignment=64),
        build_gguf(llama_kvs(tokens=[f"t{i}" for i in range(300)]), tensors[:1], version=2),
        build_gguf(moe, [Tensor("blk.0.ffn_gate_exps.weight", [32, 4, 8], Q8_0_T)]),
        build_gguf(
            [KV("split.no", U16, 1), KV("split.count", U16, 2), KV("split.tensors.count", I32, 2)],
            [Tensor("output.weight", [32, 2], F32_T)],
        ),
        build_gguf(llama_kvs(), []),  # vocab-only style: no tensors
    ]


# ---------------------------------------------------------------------------
# Target
# ---------------------------------------------------------------------------

_MESSAGE = re.compile(r"^Cannot use model file '.*': .+\. .+\.$", re.S)


class Finding(AssertionError):
    """The validator broke its contract on an input."""


def make_target(gc) -> Callable[[bytes], str | None]:
    check = gc.check_stream
    model_error = gc.ModelFileError

    def one_input(data: bytes) -> str | None:
        """Validate ``data``; return None (accepted) or the error message."""
        try:
            check(io.BytesIO(data), len(data), "<fuzz>")
        except model_error as e:
            if e.internal_error:
                raise Finding(f"validator safety net fired: {e}") from e
            msg = str(e)
            if not _MESSAGE.match(msg):
                raise Finding(f"malformed message: {msg!r}") from None
            return msg
        return None

    return one_input


# ---------------------------------------------------------------------------
# Simple mutation engine
# ---------------------------------------------------------------------------

INTERESTING_32 = [
    0,
    1,
    2,
    3,
    4,
    5,
    7,
    8,
    9,
    12,
    13,
    31,
    32,
    33,
    63,
    64,
    255,
    256,
    0x7FFF,
    0x8000,
    0xFFFF,
    0x10000,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFE,
    0xFFFFFFFF,
]
INTERESTING_64 = INTERESTING_32 + [
    1 << 30,
    (1 << 30) + 1,
    1 << 32,
    1 << 40,
    (1 << 62),
    (1 << 63) - 1,
    1 << 63,
    (1 << 64) - 1,
    (1 << 64) - 8,
]


_REPR = re.compile(r"b?'(?:[^'\\]|\\.)*'|b?\"(?:[^\"\\]|\\.)*\"")
_PLAIN = re.compile(r"^[A-Za-z][A-Za-z.,;:()_-]*$")


def _signature(msg: str | None) -> str:
    if msg is None:
        return "<ok>"
    problem = _REPR.sub("#", msg.split(": ", 1)[-1]).split(". ", 1)[0]
    # names, numbers and reprs vary; keep only the plain words of the sentence
    return " ".join(w if _PLAIN.match(w) else "#" for w in problem.split(" "))[:160]


class Mutator:
    def __init__(self, seeds: Sequence[bytes], rng: random.Random) -> None:
        self.rng = rng
        self.seeds = list(seeds)

    def mutate(self, data: bytes, corpus: Sequence[bytes]) -> bytes:
        rng = self.rng
        b = bytearray(data)
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4, 8))):
            op = rng.randrange(10)
            n = len(b)
            # bias positions towards the header/metadata/table (the parsed part)
            hi = n if rng.random() < 0.2 else min(n, 4096)
            pos = rng.randrange(hi) if hi else 0
            if op == 0 and n:  # bit flip
                b[pos] ^= 1 << rng.randrange(8)
            elif op == 1 and n:  # random byte
                b[pos] = rng.randrange(256)
            elif op in (2, 3) and n >= 4:  # interesting 32-bit value
                pos = min(pos, n - 4)
                b[pos : pos + 4] = struct.pack("<I", rng.choice(INTERESTING_32))
            elif op == 4 and n >= 8:  # interesting 64-bit value, or nearby the real size
                pos = min(pos, n - 8)
                v = rng.choice(INTERESTING_64 + [n, n - pos, n - pos - 8 + rng.randrange(-2, 3) & 0xFFFFFFFFFFFFFFFF])
                b[pos : pos + 8] = struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)
            elif op == 5 and n:  # small add/sub on a u64 field
                pos = min(pos, max(n - 8, 0))
                if n - pos >= 8:
                    v = struct.unpack_from("<Q", b, pos)[0] + rng.choice((-1, 1, -8, 8, 32, -32))
                    b[pos : pos + 8] = struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)
            elif op == 6:  # insert bytes
                b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.choice((1, 2, 4, 8, 16))))
            elif op == 7 and n:  # delete a range
                del b[pos : pos + rng.choice((1, 2, 4, 8, 16, 64))]
            elif op == 8 and n:  # truncate
                del b[rng.randrange(n) :]
            elif op == 9:  # splice with another input
                other = rng.choice(corpus)
                cut = rng.randrange(len(other) + 1)
                b = b[:pos] + other[cut : cut + rng.randrange(1, 256)] + b[pos:]
        return bytes(b)


def run_simple(
    seconds: float = 5.0, iterations: int | None = None, seed: int = 0, gc=None, verbose: bool = False
) -> dict[str, Any]:
    """Mutation-fuzz for ``seconds`` (or ``iterations``).  Raises Finding on a
    contract break (with the input attached as ``.data``); returns statistics."""
    gc = gc or load_gguf_check()
    target = make_target(gc)
    rng = random.Random(seed)
    seeds = seed_files()
    corpus: list[bytes] = list(seeds)
    seen = set()
    for s in seeds:
        msg = target(s)
        if msg is not None:
            raise Finding(f"seed file rejected: {msg}")
        seen.add(_signature(msg))
    mut = Mutator(seeds, rng)
    start = time.perf_counter()
    deadline = start + seconds
    execs = accepted = 0
    slowest = 0.0
    while True:
        if iterations is not None and execs >= iterations:
            break
        if iterations is None and (execs & 63) == 0 and time.perf_counter() > deadline:
            break
        data = mut.mutate(rng.choice(corpus), corpus)
        t0 = time.perf_counter()
        try:
            msg = target(data)
        except Exception as e:
            e.data = data  # type: ignore[attr-defined]
            raise
        dt = time.perf_counter() - t0
        slowest = max(slowest, dt)
        if dt > HANG_SECONDS:
            f = Finding(f"input took {dt:.2f} s")
            f.data = data  # type: ignore[attr-defined]
            raise f
        execs += 1
        if msg is None:
            accepted += 1
        sig = _signature(msg)
        if sig not in seen and len(data) <= 1 << 16:
            seen.add(sig)
            corpus.append(data)
            if verbose:
                print(f"  new [{len(corpus)}] {sig}")
    elapsed = time.perf_counter() - start
    return {
        "engine": "simple",
        "executions": execs,
        "seconds": elapsed,
        "exec_per_s": execs / elapsed if elapsed else 0.0,
        "corpus": len(corpus),
        "distinct_outcomes": len(seen),
        "accepted": accepted,
        "crashes": 0,
        "slowest_input_s": slowest,
    }


# ---------------------------------------------------------------------------
# atheris engine
# ---------------------------------------------------------------------------


def run_atheris(seconds: int, corpus_dir: Path, artifacts: Path, extra: Sequence[str] = ()) -> None:
    import atheris

    gc = load_gguf_check(instrument=True)
    target = make_target(gc)

    def test_one_input(data: bytes) -> None:
        target(data)

    corpus_dir.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    if not any(corpus_dir.iterdir()):
        for i, s in enumerate(seed_files()):
            (corpus_dir / f"seed-{i}.gguf").write_bytes(s)
    argv = [
        sys.argv[0],
        f"-max_total_time={seconds}",
        "-timeout=10",
        "-rss_limit_mb=4096",
        "-max_len=65536",
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/",
        *extra,
        str(corpus_dir),
    ]
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--iterations", type=int, default=None, help="simple engine: stop after N inputs")
    ap.add_argument("--engine", choices=("auto", "atheris", "simple"), default="auto")
    ap.add_argument("--corpus", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "gguf_fuzz_corpus")
    ap.add_argument("--artifacts", type=Path, default=None, help="where crash inputs are written")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--verbose", action="store_true")
    args, extra = ap.parse_known_args(argv)
    artifacts = args.artifacts or args.corpus.parent / (args.corpus.name + "_crashes")
    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # noqa: F401

            engine = "atheris"
        except ImportError:
            engine = "simple"
    if engine == "atheris":
        print(f"engine: atheris, {int(args.seconds)} s, corpus {args.corpus}, crashes to {artifacts}/", flush=True)
        run_atheris(int(args.seconds), args.corpus, artifacts, extra)
        return 0
    print(f"engine: simple mutation fuzzer, {args.seconds:g} s, seed {args.seed}", flush=True)
    try:
        stats = run_simple(args.seconds, args.iterations, args.seed, verbose=args.verbose)
    except Exception as e:
        artifacts.mkdir(parents=True, exist_ok=True)
        data = getattr(e, "data", None)
        if data is not None:
            path = artifacts / f"crash-{int(time.time())}.gguf"
            path.write_bytes(data)
            print(f"crash input written to {path}")
        print(f"FINDING: {type(e).__name__}: {e}")
        print("executions: ?\ncorpus: ?\ncrashes: 1")
        return 1
    for k, v in stats.items():
        print(f"{k}: {v:.1f}" if isinstance(v, float) else f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
