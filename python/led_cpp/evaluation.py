"""Accuracy evaluation: the authors' protocol for pass@k on math benchmarks.

Protocol (LED_SPEC.md, "The authors' baseline" and "Measuring accuracy")
------------------------------------------------------------------------
* Prompt: ``INSTRUCTION + "\\n" + question`` sent as one user message through the
  model's chat template.  A model without a chat template gets the plain
  completion prompt ``INSTRUCTION + "\\n" + question + "\\nAnswer:"``.
* Answer: the last complete ``\\boxed{...}`` (or ``\\fbox{...}``, balanced braces,
  also the ``\\boxed 5`` form) in the *answer region*: if the text contains the
  end-of-think marker, the region is everything after its first occurrence;
  otherwise it is the whole text (models that never think, and unfinished
  reasoning, are judged on what they wrote).  The marker is the model's own
  (``Model.reasoning_markers``) unless ``think_end`` or the config names one;
  where the decode loop closed the segment, the result's ``answer`` is the region.
* Two scores, as lm-eval's GSM8K reports them: *strict* (the headline, and the
  authors' rule) takes the last box only; *flexible* also takes, for GSM8K only,
  the last number of a region with no box (thousands commas removed).  The
  fallback is lenient: on small models it mostly counts numbers copied from the
  question.  Other datasets have no fallback, so both scores are the same.
* Checking: plain numbers are compared exactly (``2,125`` == ``2125.0``);
  anything else is compared for mathematical equality with math-verify
  (``parse`` / ``verify``), run with math-verify's own signal-based timeouts
  disabled, in a helper process that is killed and restarted when one check
  exceeds ``verify_timeout`` seconds (the check then counts as wrong).
* pass@1 is mean correctness over the n samples; pass@k uses the unbiased
  estimator ``1 - C(n-c, k) / C(n, k)``, averaged over problems.

Runs and resume
---------------
``evaluate`` writes to ``out_dir``: ``meta.json`` (the run's identity),
``samples.jsonl`` (one record per sample) and ``summary.json``.  Problems are
generated one ``generate_batch`` call per problem (its n samples batched), with
the seed ``problem_seed(seed, problem.index)``, so a problem gets the same seed
whatever ``limit`` is, whichever config runs it, and whether or not the run was
resumed.  A problem's n records are appended (one write, flush, fsync) only once
all n samples are done; rerunning with the same ``out_dir`` skips every problem
that has all n records and regenerates a partially written one whole (its stale
lines are superseded).  ``out_dir`` holding a run of another model, dataset,
config, n, seed or max_tokens is refused (:class:`RunMismatchError`); ``limit``
may change between runs.  Greedy configs (temperature 0) need no seed, so they
batch up to ``GREEDY_BATCH // n`` problems per call, in fixed batches of the
selected problems (:func:`plan_chunks`), so a batch holds the same problems in
every run, shard or worker.

Where problems run: ``evaluate`` hands its pending batches to a
:class:`ChunkRunner`: :class:`LocalRunner` (one model in this process, the
default) or ``evaluation_ray.RayBackend`` (a pool of Ray workers, one model
each).  Every runner produces a batch's records with :func:`run_chunk`, so the
records are the same wherever a problem ran; ``summary.json`` keeps the run's
shape (runner, workers, devices) in its ``run`` field, apart from the records,
and ``runs.jsonl`` gets one line per session that generated (its shape, the
workers' throughput, retries).  ``shard=`` (``evaluation_shards``) runs one
share of the batches.

This module imports nothing from led_cpp at import time (the model and config
classes are imported when needed), so its pure parts work without the C++
extension, and the verification helper process can load this file alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import select
import subprocess
import sys
import time
import weakref
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol, Sequence, runtime_checkable

INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
DEFAULT_THINK_END = "</think>"
#: Suffix of the plain completion prompt used when a model has no chat template.
PLAIN_ANSWER_CUE = "\nAnswer:"
#: Greedy configs batch up to this many samples (problems x n) per generate_batch call.
GREEDY_BATCH = 16
#: Datasets whose answers fall back to the last number when there is no box.
NUMBER_FALLBACK_DATASETS = ("gsm8k",)

META_FILE = "meta.json"
SAMPLES_FILE = "samples.jsonl"
SUMMARY_FILE = "summary.json"
RUNS_FILE = "runs.jsonl"  # one line per session that generated: where it ran, how fast
RUN_FORMAT = 2  # 2: records and summaries hold strict and flexible scores


# --------------------------------------------------------------------------- pass@k


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with ``c`` correct out of ``n`` samples:
    ``1 - C(n-c, k) / C(n, k)``."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def mean_pass_at_k(correct_counts: Sequence[int], n: int, k: int) -> float:
    """pass@k averaged over problems (one correct count per problem)."""
    if not correct_counts:
        raise ValueError("no problems")
    return sum(pass_at_k(n, c, k) for c in correct_counts) / len(correct_counts)


# --------------------------------------------------------------------------- prompts


def user_message(question: str) -> str:
    """The user turn of the authors' protocol: the instruction, then the question."""
    return f"{INSTRUCTION}\n{question}"


def build_prompt(question: str, chat: bool) -> list[dict] | str:
    """A chat message list (the model applies its template) or, for a model without
    a chat template, the plain completion prompt."""
    if chat:
        return [{"role": "user", "content": user_message(question)}]
    return user_message(question) + PLAIN_ANSWER_CUE


def uses_chat_template(model: Any) -> bool:
    return bool(getattr(model, "chat_template", None))


# --------------------------------------------------------------------------- answers

_BOX_CMD = re.compile(r"\\(boxed|fbox)(?![A-Za-z])")
_NUMBER = re.compile(r"(?:(?<![\w)])-)?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


def _braced(text: str, start: int) -> int | None:
    """Index just past the group opening at text[start] == '{', or None if it
    never closes.  Escaped braces (\\{ \\}) do not count."""
    depth = 0
    i = start
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last complete, non-empty ``\\boxed{...}`` / ``\\fbox{...}``
    (or ``\\boxed X``) in ``text``; None if there is none."""
    found = None
    for m in _BOX_CMD.finditer(text):
        i = m.end()
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            continue
        if text[i] == "{":
            end = _braced(text, i)
            if end is None:
                continue
            content = text[i + 1 : end - 1].strip()
        elif m.group(1) == "boxed" and i > m.end():
            # "\boxed 5": the argument runs to whitespace or a math delimiter.
            tok = re.match(r"[^\s$]+", text[i:])
            content = tok.group(0).rstrip(".,;") if tok else ""
        else:
            continue
        if content:
            found = content
    return found


def last_number(text: str) -> str | None:
    """The last number in ``text`` with thousands commas removed ("1,000.5" ->
    "1000.5"); None if there is none."""
    matches = _NUMBER.findall(text)
    return matches[-1].replace(",", "") if matches else None


def answer_region(text: str, think_end: str | None = DEFAULT_THINK_END) -> str:
    """What follows the first end-of-think marker, or the whole text when the
    marker is absent (or ``think_end`` is empty)."""
    if think_end:
        pos = text.find(think_end)
        if pos >= 0:
            return text[pos + len(think_end) :]
    return text


def extract_answer(
    text: str, *, think_end: str | None = DEFAULT_THINK_END, number_fallback: bool = False
) -> str | None:
    """The model's final answer: the last box of the answer region, else (with
    ``number_fallback``, used for GSM8K) its last number, else None."""
    region = answer_region(text, think_end)
    boxed = last_boxed(region)
    if boxed is not None:
        return boxed
    return last_number(region) if number_fallback else None


def _as_number(s: str) -> Fraction | None:
    """``s`` as an exact number if it is a plain (optionally signed, decimal,
    thousands-grouped, dollar-prefixed) number, else None."""
    t = re.sub(r"\\[,!;: ]|\\\$|\$|\s", "", s)
    t = re.sub(r"^\\text\{(.*)\}$", r"\1", t)
    if not re.fullmatch(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+", t):
        return None
    return Fraction(t.replace(",", ""))


def _canonical_text(s: str) -> str:
    t = re.sub(r"\\(?:left|right)(?![A-Za-z])|\\[,!;: ]|\$|\s", "", s)
    t = re.sub(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}", r"\1", t)
    t = re.sub(r"\\[dt]frac(?![A-Za-z])", r"\\frac", t)
    return t.rstrip(".")


def _math_verify_equal(gold: str, pred: str) -> bool:
    """math-verify's verdict, its own timeouts disabled (the caller must bound
    the time: :class:`AnswerChecker` runs this in a killable helper process)."""
    gold_parsed = _parse_gold(gold)
    pred_parsed = _mv_parse("\\boxed{" + pred + "}")
    return bool(_mv().verify(gold_parsed, pred_parsed, timeout_seconds=None))


def _mv():
    import math_verify

    return math_verify


def _mv_parse(s: str):
    return _mv().parse(s, parsing_timeout=None)


_gold_cache: dict[str, Any] = {}


def _parse_gold(gold: str):
    if gold not in _gold_cache:
        if len(_gold_cache) > 4096:
            _gold_cache.clear()
        _gold_cache[gold] = _mv_parse("\\boxed{" + gold + "}")
    return _gold_cache[gold]


def _verify_worker_main() -> None:
    """Loop of the helper process: one JSON request per stdin line
    ({"gold", "pred"}), one JSON reply per line ({"ok", "error"})."""
    import logging

    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # nothing but replies on the protocol channel
    logging.disable(logging.CRITICAL)  # math-verify warns that timeouts are off
    _mv()
    out.write("ready\n")
    for line in sys.stdin:
        req = json.loads(line)
        try:
            ok, err = _math_verify_equal(req["gold"], req["pred"]), None
        except Exception as e:  # noqa: BLE001 - any failure is a wrong answer
            ok, err = False, f"{type(e).__name__}: {e}"
        out.write(json.dumps({"ok": ok, "error": err}) + "\n")


_WORKER_BOOT = (
    "import importlib.util, sys\n"
    "spec = importlib.util.spec_from_file_location('_led_cpp_verify_worker', sys.argv[1])\n"
    "mod = importlib.util.module_from_spec(spec)\n"
    "sys.modules[spec.name] = mod\n"
    "spec.loader.exec_module(mod)\n"
    "mod._verify_worker_main()\n"
)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()


class AnswerChecker:
    """Decides whether an extracted answer equals the gold answer.

    Plain numbers are compared exactly and identical LaTeX (after removing
    spacing, ``\\left``/``\\right``, ``\\text{}``) is equal, in this process; the
    rest goes to math-verify in a helper process (started on first need), which
    is killed and restarted when one check takes longer than ``timeout``
    seconds.  Use as a context manager or call :meth:`close`.
    """

    STARTUP_TIMEOUT = 120.0

    def __init__(self, timeout: float = 5.0):
        self.timeout = float(timeout)
        self._proc: subprocess.Popen | None = None
        self._finalizer = None
        self._cache: dict[tuple[str, str], tuple[bool, str | None]] = {}

    def check(self, pred: str | None, gold: str) -> tuple[bool, str | None]:
        """(correct, note): note is None, "timeout" or the verifier's error."""
        if pred is None:
            return False, None
        gold_num, pred_num = _as_number(gold), _as_number(pred)
        if gold_num is not None and pred_num is not None:
            return gold_num == pred_num, None
        if _canonical_text(gold) == _canonical_text(pred):
            return True, None
        key = (gold, pred)
        if key not in self._cache:
            if len(self._cache) > 8192:
                self._cache.clear()
            self._cache[key] = self._ask(gold, pred)
        return self._cache[key]

    def is_correct(self, pred: str | None, gold: str) -> bool:
        return self.check(pred, gold)[0]

    def _start(self) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER_BOOT, str(Path(__file__).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        if self._read_line(proc, self.STARTUP_TIMEOUT) != b"ready\n":
            _kill(proc)
            raise RuntimeError(
                "the answer-verification helper did not start (is math-verify installed? "
                f"try: {sys.executable} -c 'import math_verify')"
            )
        self._finalizer = weakref.finalize(self, _kill, proc)
        return proc

    @staticmethod
    def _read_line(proc: subprocess.Popen, timeout: float) -> bytes | None:
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        return proc.stdout.readline() if ready else None

    def _ask(self, gold: str, pred: str) -> tuple[bool, str | None]:
        if self._proc is None:
            self._proc = self._start()
        proc = self._proc
        try:
            proc.stdin.write((json.dumps({"gold": gold, "pred": pred}) + "\n").encode())
            proc.stdin.flush()
            line = self._read_line(proc, self.timeout)
        except (BrokenPipeError, OSError):
            line = b""
        if not line:
            self.close()
            return False, "timeout" if line is None else "verifier crashed"
        reply = json.loads(line)
        return bool(reply["ok"]), reply["error"]

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
        self._proc = None

    def __enter__(self) -> "AnswerChecker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_default_checker: AnswerChecker | None = None


def check_answer(pred: str | None, gold: str) -> bool:
    """Whether ``pred`` equals ``gold`` (a shared :class:`AnswerChecker`)."""
    global _default_checker
    if _default_checker is None:
        _default_checker = AnswerChecker()
    return _default_checker.is_correct(pred, gold)


# --------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class Problem:
    id: str  # "<dataset>-<index>"
    index: int  # position in the dataset; seeds derive from it
    question: str
    answer: str
    dataset: str


def load_dataset(name_or_path: str | os.PathLike) -> list[Problem]:
    """A bundled dataset by name (gsm8k, math500, aime2024, aime2025) or a JSON file
    ``[{"prompt": [{"from": "user", "value": QUESTION}], "final_answer": ANSWER}]``."""
    from led_cpp import datasets as bundled

    name = str(name_or_path)
    if name in bundled.NAMES:
        path, dataset = bundled.path(name), name
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise FileNotFoundError(
                f"no dataset {name!r}: give one of {', '.join(bundled.NAMES)} or a JSON file"
            )
        dataset = path.stem
    with open(path, encoding="utf-8") as f:
        entries = json.load(f)
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected a non-empty JSON list of problems")
    return [_problem(entry, i, dataset, path) for i, entry in enumerate(entries)]


def _problem(entry: Any, index: int, dataset: str, path: Path) -> Problem:
    try:
        turns = entry["prompt"]
        if isinstance(turns, str):
            question = turns
        else:
            texts = [t.get("value", t.get("content")) for t in turns
                     if t.get("from", t.get("role")) in ("user", "human")]
            if not texts or not all(isinstance(t, str) for t in texts):
                raise ValueError("no user turn")
            question = "\n\n".join(texts)
        answer = entry["final_answer"]
        if not isinstance(answer, (str, int, float)):
            raise ValueError("final_answer is not a string or number")
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise ValueError(f"{path}: problem {index} is malformed ({e})") from None
    return Problem(f"{dataset}-{index}", index, question, str(answer).strip(), dataset)


# --------------------------------------------------------------------------- configs

_BOOL = {"1": True, "true": True, "yes": True, "on": True,
         "0": False, "false": False, "no": False, "off": False}


def _to_bool(v: str) -> bool:
    try:
        return _BOOL[v.strip().lower()]
    except KeyError:
        raise ValueError(f"not a boolean: {v!r}") from None


CONFIG_KEYS: dict[str, dict[str, Any]] = {
    "greedy": {},
    "standard": {"temperature": float, "top_k": int, "top_p": float, "min_p": float},
    "led": {"temperature": float, "d": int, "k": int, "ln": _to_bool, "exploit": _to_bool,
            "think_only": _to_bool, "think_end": str, "depth_rule": str, "fixed_depth": int,
            "layer_counting": str},
}


@dataclass(frozen=True)
class ConfigSpec:
    """A decoding config by name plus overrides of its defaults.

    Text form: ``name[:key=value]...`` with name ``greedy`` (SamplingConfig with
    temperature 0), ``standard`` (SamplingConfig: temperature, top_k, top_p,
    min_p) or ``led`` (LEDConfig: temperature, d, k, ln, exploit, think_only,
    think_end, depth_rule, fixed_depth, layer_counting); booleans are
    1/0/true/false/yes/no/on/off.  Shorthand: a bare value right after
    ``depth_rule=fixed`` is the fixed depth (``led:depth_rule=fixed:3``).
    Examples: ``standard``, ``led:d=4:k=16``, ``led:depth_rule=random``.
    """

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        """Canonical text form (keys in the order of CONFIG_KEYS)."""
        return ":".join([self.name] + [f"{k}={_fmt(v)}" for k, v in self.params])

    @property
    def dirname(self) -> str:
        return re.sub(r"[^\w=.+-]", "_", self.label)

    def build(self):
        """The led_cpp config object (imports led_cpp)."""
        import led_cpp

        kw = dict(self.params)
        if self.name == "greedy":
            return led_cpp.SamplingConfig(temperature=0.0)
        if self.name == "standard":
            return led_cpp.SamplingConfig(**kw)
        return led_cpp.LEDConfig(**kw)

    def with_params(self, **overrides: Any) -> "ConfigSpec":
        """A copy with more parameters (None values are ignored)."""
        keys = CONFIG_KEYS[self.name]
        merged = dict(self.params)
        for k, v in overrides.items():
            if v is None:
                continue
            if k not in keys:
                raise ValueError(f"config {self.name!r} has no parameter {k!r}")
            merged[k] = v
        return ConfigSpec(self.name, tuple((k, merged[k]) for k in keys if k in merged))


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    return str(v)


def parse_config_spec(text: str, *, temperature: float | None = None) -> ConfigSpec:
    """Parse ``name[:key=value]...`` (see :class:`ConfigSpec`).  ``temperature``,
    when given, is the default temperature of a non-greedy spec that sets none."""
    parts = [p.strip() for p in text.strip().split(":")]
    name = parts[0].lower()
    if name not in CONFIG_KEYS:
        raise ValueError(f"unknown config {parts[0]!r} in {text!r}; use one of "
                         f"{', '.join(CONFIG_KEYS)}")
    keys = CONFIG_KEYS[name]
    params: dict[str, Any] = {}
    prev_key = None
    for part in parts[1:]:
        if "=" in part:
            key, value = (s.strip() for s in part.split("=", 1))
            key = key.replace("-", "_")
        elif prev_key == "depth_rule" and params.get("depth_rule") == "fixed":
            key, value = "fixed_depth", part
        else:
            raise ValueError(f"{text!r}: expected key=value, got {part!r}")
        if key not in keys:
            known = ", ".join(keys) or "none"
            raise ValueError(f"{text!r}: config {name!r} has no parameter {key!r} "
                             f"(parameters: {known})")
        if key in params:
            raise ValueError(f"{text!r}: {key} given twice")
        try:
            params[key] = keys[key](value)
        except ValueError:
            raise ValueError(f"{text!r}: bad value for {key}: {value!r}") from None
        prev_key = key
    if params.get("depth_rule") == "fixed" and "fixed_depth" not in params:
        raise ValueError(f"{text!r}: depth_rule=fixed needs a depth "
                         "(led:depth_rule=fixed:3 or :fixed_depth=3)")
    spec = ConfigSpec(name).with_params(**params)
    if name != "greedy" and "temperature" not in params:
        spec = spec.with_params(temperature=temperature)
    return spec


def _resolve_config(config: str | ConfigSpec | Any) -> tuple[str, Any]:
    """(label, config object) for a spec text, a ConfigSpec or a config object."""
    if isinstance(config, str):
        config = parse_config_spec(config)
    if isinstance(config, ConfigSpec):
        return config.label, config.build()
    if hasattr(config, "d") and hasattr(config, "k"):
        return "led", config
    return ("greedy" if _is_greedy(config) else "standard"), config


def _is_greedy(config: Any) -> bool:
    return getattr(config, "temperature", None) == 0


def _config_dict(config: Any) -> dict:
    if dataclasses.is_dataclass(config):
        fields = dataclasses.asdict(config)
    else:
        fields = {k: v for k, v in vars(config).items() if not k.startswith("_")}
    return {"type": type(config).__name__, **fields}


# --------------------------------------------------------------------------- runs


class RunMismatchError(ValueError):
    """``out_dir`` already holds a run that differs from the one asked for."""


def problem_seed(base_seed: int, problem_index: int) -> int:
    """The seed of every sample of one problem: stable across runs, limits,
    configs and Python versions (31 bits)."""
    digest = hashlib.sha256(f"led_cpp-eval:{int(base_seed)}:{int(problem_index)}".encode())
    return int.from_bytes(digest.digest()[:4], "little") & 0x7FFFFFFF


def model_name_of(model: Any) -> str:
    for attr in ("path", "model_path"):
        value = getattr(model, attr, None)
        if value:
            return os.path.basename(str(value))
    return type(model).__name__


def _dataset_digest(problems: Sequence[Problem]) -> str:
    h = hashlib.sha256()
    for p in problems:
        h.update(json.dumps([p.question, p.answer]).encode())
    return h.hexdigest()[:16]


def run_identity(*, model: str, problems: Sequence[Problem], config: Any, n: int,
                 seed: int, max_tokens: int, think_end: str,
                 chat_template_kwargs: dict | None = None) -> dict:
    """What must match for a run in an out_dir to be resumed (as JSON values, so it
    compares equal to the copy saved in meta.json)."""
    identity = {"format": RUN_FORMAT, "model": model, "dataset": problems[0].dataset,
                "dataset_digest": _dataset_digest(problems), "config": _config_dict(config),
                "n": int(n), "seed": int(seed), "max_tokens": int(max_tokens),
                "think_end": think_end}
    if chat_template_kwargs:  # absent when unused, so runs from before the option still resume
        identity["chat_template_kwargs"] = chat_template_kwargs
    return json.loads(json.dumps(identity, default=str))


def check_out_dir(out_dir: str | os.PathLike, identity: dict) -> bool:
    """True if ``out_dir`` holds a run with this identity, False if it holds none;
    raises RunMismatchError if it holds a different run."""
    out = Path(out_dir)
    meta_path = out / META_FILE
    if not meta_path.exists():
        if (out / SAMPLES_FILE).exists():
            raise RunMismatchError(f"{out} holds {SAMPLES_FILE} but no {META_FILE}; "
                                   "use another --out")
        return False
    with open(meta_path, encoding="utf-8") as f:
        saved = json.load(f).get("identity", {})
    diffs = [f"{k}: saved {saved.get(k)!r}, asked {identity.get(k)!r}"
             for k in list(identity) + [k for k in saved if k not in identity]
             if saved.get(k) != identity.get(k)]
    if diffs:
        raise RunMismatchError(f"{out} holds a different run; refusing to mix results "
                               "(use another --out):\n  " + "\n  ".join(diffs))
    return True


def write_json_atomic(path: Path, obj: Any) -> None:
    """Writes ``obj`` as JSON to ``path`` through a temporary file, so a reader never sees half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_records(path: str | os.PathLike, n: int) -> dict[int, list[dict]]:
    """Complete problems in a samples file: problem index -> its n records in
    sample order (the last line of a (problem, sample) wins).  A torn last line
    (a crash mid-write) is cut off the file."""
    path = Path(path)
    if not path.exists():
        return {}
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            data = data[: data.rfind(b"\n") + 1]
            f.truncate(len(data))
    latest: dict[tuple[int, int], dict] = {}
    for line in data.splitlines():
        try:
            rec = json.loads(line)
            latest[(int(rec["problem_index"]), int(rec["sample"]))] = rec
        except (ValueError, KeyError, TypeError):
            continue
    by_problem: dict[int, list[dict]] = {}
    for (p, s), rec in latest.items():
        by_problem.setdefault(p, []).append(rec)
    return {p: sorted(recs, key=lambda r: r["sample"]) for p, recs in by_problem.items()
            if {r["sample"] for r in recs} == set(range(n))}


def _append_records(path: Path, records: Iterable[dict]) -> None:
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    with open(path, "a", encoding="utf-8") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())


def model_end_marker(model: Any) -> str | None:
    """The end marker of the model's reasoning segment (``Model.reasoning_markers``), or None."""
    markers = getattr(model, "reasoning_markers", None)
    return markers[1] if markers else None


def result_answer_region(result: Any, think_end: str) -> str:
    """The region an answer is read from: the result's own ``answer`` when its decode loop
    followed ``think_end`` and the segment closed (also for a marker that is a control token
    and so absent from the text), else ``answer_region`` of its text."""
    markers = getattr(result, "reasoning_markers", None)
    if (markers and markers[1] == think_end and getattr(result, "starts_in_reasoning", False)
            and result.reasoning_tokens < len(result.tokens)):
        return result.answer
    return answer_region(result.text, think_end)


def _record(problem: Problem, sample: int, result: Any, *, seed: int, wall_share: float,
            think_end: str, number_fallback: bool, checker: AnswerChecker) -> dict:
    region = result_answer_region(result, think_end)
    answer = extract_answer(region, think_end="")
    correct, note = checker.check(answer, problem.answer)
    flexible_answer, flexible_correct, flexible_note = answer, correct, None
    if number_fallback and answer is None:
        flexible_answer = extract_answer(region, think_end="", number_fallback=True)
        flexible_correct, flexible_note = checker.check(flexible_answer, problem.answer)
    generated = len(result.tokens)
    decided = generated + (result.finish_reason == "eos")
    explored = int(getattr(result, "explored_steps", 0) or 0)
    timings = getattr(result, "timings", None)
    rec = {
        "problem_id": problem.id, "problem_index": problem.index, "sample": sample,
        "seed": seed, "answer": answer, "gold": problem.answer, "correct": bool(correct),
        "flexible_answer": flexible_answer, "flexible_correct": bool(flexible_correct),
        "finish_reason": result.finish_reason, "finished": result.finish_reason != "length",
        "generated_tokens": generated,
        "reasoning_tokens": int(getattr(result, "reasoning_tokens", 0) or 0),
        # per decided step, as GenerationResult.explore_rate: the step that chose EOS counts
        "explored_steps": explored, "explore_rate": explored / decided if decided else 0.0,
        "prompt_tokens": getattr(timings, "prompt_tokens", None),
        "wall_seconds": wall_share, "text": result.text,
    }
    if note:
        rec["verify_note"] = note
    if flexible_note:
        rec["flexible_verify_note"] = flexible_note
    return rec


@dataclass
class EvalSummary:
    config: str
    config_params: dict
    model: str
    dataset: str
    n: int
    limit: int | None
    seed: int
    max_tokens: int
    num_problems: int
    num_samples: int
    pass_at_1: float             # strict: the last box only (the headline)
    pass_at_k: dict[int, float]  # k = 1..n, strict
    flexible_pass_at_1: float    # flexible: GSM8K's last-number fallback where there is no box
    flexible_pass_at_k: dict[int, float]
    mean_tokens: float
    mean_reasoning_tokens: float
    finished_rate: float
    tokens_per_second: float  # generated tokens / wall seconds of the generate calls
    mean_explore_rate: float
    generation_seconds: float
    prompt_format: str  # "chat" or "plain"
    out_dir: str = ""
    correct_counts: list[int] = field(default_factory=list, repr=False)
    flexible_correct_counts: list[int] = field(default_factory=list, repr=False)
    run: dict = field(default_factory=dict, repr=False)  # where it ran: runner, workers, devices

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for key in ("pass_at_1", "pass_at_k", "flexible_pass_at_1", "flexible_pass_at_k"):
            d.pop(key)
        return {"pass@1": self.pass_at_1,
                "pass@k": {str(k): v for k, v in self.pass_at_k.items()},
                "flexible_pass@1": self.flexible_pass_at_1,
                "flexible_pass@k": {str(k): v for k, v in self.flexible_pass_at_k.items()}, **d}


def summarize(problems: Sequence[Problem], records: dict[int, list[dict]], *, n: int,
              label: str, config_params: dict, model: str, limit: int | None, seed: int,
              max_tokens: int, prompt_format: str, out_dir: str = "") -> EvalSummary:
    """Summary of ``problems`` from their records (every problem must be complete)."""
    recs = [r for p in problems for r in records[p.index]]
    counts = [sum(r["correct"] for r in records[p.index]) for p in problems]
    flexible = [sum(r["flexible_correct"] for r in records[p.index]) for p in problems]
    wall = sum(r["wall_seconds"] for r in recs)
    tokens = sum(r["generated_tokens"] for r in recs)

    def mean(key: str) -> float:
        return sum(float(r[key]) for r in recs) / len(recs)

    pass_k = {k: mean_pass_at_k(counts, n, k) for k in range(1, n + 1)}
    flexible_k = {k: mean_pass_at_k(flexible, n, k) for k in range(1, n + 1)}
    return EvalSummary(
        config=label, config_params=config_params, model=model,
        dataset=problems[0].dataset, n=n, limit=limit, seed=seed, max_tokens=max_tokens,
        num_problems=len(problems), num_samples=len(recs), pass_at_1=pass_k[1],
        pass_at_k=pass_k, flexible_pass_at_1=flexible_k[1], flexible_pass_at_k=flexible_k,
        mean_tokens=mean("generated_tokens"),
        mean_reasoning_tokens=mean("reasoning_tokens"), finished_rate=mean("finished"),
        tokens_per_second=tokens / wall if wall > 0 else 0.0,
        mean_explore_rate=mean("explore_rate"), generation_seconds=wall,
        prompt_format=prompt_format, out_dir=out_dir, correct_counts=counts,
        flexible_correct_counts=flexible)


@dataclass(frozen=True)
class EvalJob:
    """What every batch of one run is generated and checked with (sent to workers)."""

    n: int
    config: Any  # a led_cpp.SamplingConfig or LEDConfig
    max_tokens: int
    seed: int
    chat: bool
    think_end: str
    number_fallback: bool
    verify_timeout: float = 5.0
    n_parallel: int | None = None
    chat_template_kwargs: dict | None = None


def plan_chunks(problems: Sequence[Problem], n: int, config: Any) -> list[list[Problem]]:
    """The run's batches, one ``generate_batch`` call each: one problem per batch, or
    for greedy configs ``GREEDY_BATCH // n`` consecutive problems, cut at fixed
    positions of ``problems`` so that a batch is the same whoever runs it."""
    per_call = max(1, GREEDY_BATCH // n) if _is_greedy(config) else 1
    return [list(problems[i : i + per_call]) for i in range(0, len(problems), per_call)]


def run_chunk(model: Any, chunk: Sequence[Problem], job: EvalJob,
              checker: AnswerChecker) -> list[dict]:
    """The records of one batch: its problems' n samples in one ``generate_batch``
    call with the seed of its first problem, each answer extracted and checked."""
    call_seed = problem_seed(job.seed, chunk[0].index)
    extra = {} if job.n_parallel is None else {"n_parallel": job.n_parallel}
    if job.chat_template_kwargs:
        extra["chat_template_kwargs"] = job.chat_template_kwargs
    t0 = time.perf_counter()
    results = model.generate_batch(
        [build_prompt(p.question, job.chat) for p in chunk], n=job.n, config=job.config,
        max_tokens=job.max_tokens, seed=call_seed, progress=False, **extra)
    wall = time.perf_counter() - t0
    if len(results) != len(chunk) or any(len(r) != job.n for r in results):
        raise RuntimeError("generate_batch returned the wrong number of results")
    return [_record(p, s, r, seed=call_seed, wall_share=wall / (len(chunk) * job.n),
                    think_end=job.think_end, number_fallback=job.number_fallback,
                    checker=checker)
            for p, outs in zip(chunk, results) for s, r in enumerate(outs)]


@runtime_checkable
class ChunkRunner(Protocol):
    """Runs batches of problems somewhere; ``evaluate`` accepts one in place of a model."""

    def run_chunks(self, chunks: Sequence[Sequence[Problem]], job: EvalJob) -> Iterator[list[dict]]:
        """Yields each batch's records (from :func:`run_chunk`) as the batch finishes,
        in any order."""
        ...

    def shape(self) -> dict:
        """Where problems run (runner, workers, devices): what summary.json keeps."""
        ...

    def report(self) -> dict:
        """The last run_chunks call: its shape plus workers' throughput and retries
        (one line of runs.jsonl)."""
        ...


class LocalRunner:
    """One model in this process, batches in order."""

    def __init__(self, model: Any):
        self.model = model
        self._tokens, self._seconds = 0, 0.0

    def run_chunks(self, chunks: Sequence[Sequence[Problem]], job: EvalJob) -> Iterator[list[dict]]:
        self._tokens, self._seconds = 0, 0.0
        with AnswerChecker(job.verify_timeout) as checker:
            for chunk in chunks:
                t0 = time.perf_counter()
                recs = run_chunk(self.model, chunk, job, checker)
                self._seconds += time.perf_counter() - t0
                self._tokens += sum(r["generated_tokens"] for r in recs)
                yield recs

    def shape(self) -> dict:
        return {"runner": "local", "workers": 1, "threads": getattr(self.model, "n_threads", None)}

    def report(self) -> dict:
        return {**self.shape(), "model_path": str(getattr(self.model, "path", "") or ""),
                "generated_tokens": self._tokens, "wall_seconds": self._seconds,
                "tokens_per_second": self._tokens / self._seconds if self._seconds else 0.0}


def _select(dataset: str | os.PathLike | Sequence[Problem], limit: int | None):
    problems = list(dataset) if isinstance(dataset, (list, tuple)) else load_dataset(dataset)
    if limit is not None and limit < 1:
        raise ValueError("limit must be at least 1")
    return problems, problems[:limit]


def evaluate(model: Any, dataset: str | os.PathLike | Sequence[Problem],
             config: str | ConfigSpec | Any = "led", *, n: int = 16,
             limit: int | None = None, max_tokens: int = 2048, seed: int = 0,
             out_dir: str | os.PathLike, progress: bool = True,
             think_end: str | None = None, model_name: str | None = None,
             verify_timeout: float = 5.0, n_parallel: int | None = None,
             chat_template_kwargs: dict | None = None, shard: Any = None) -> EvalSummary:
    """Run (or resume) one config on the first ``limit`` problems of ``dataset``,
    ``n`` samples each; see the module docstring for the protocol and the files.

    ``model``: a ``led_cpp.Model`` (or anything with its ``generate_batch``), or a
    :class:`ChunkRunner` such as ``evaluation_ray.RayBackend``.  ``shard``: a
    ``evaluation_shards.Shard`` or its text ``"K/N"``: run only the K-th of N
    shares of the batches (merge the shards' out_dirs with ``merge_runs``).

    ``config``: a spec text (``"led:d=4"``), a :class:`ConfigSpec` or a
    ``led_cpp.SamplingConfig`` / ``led_cpp.LEDConfig``.  ``think_end``: the
    marker that starts the answer region (default: the config's ``think_end``,
    else the model's end marker, else ``</think>``).  ``model_name``: the model's identity in the run
    (default: the basename of ``model.path``).  ``chat_template_kwargs``: the
    chat template's variables (e.g. ``{"enable_thinking": False}``) for every prompt.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    all_problems, problems = _select(dataset, limit)
    label, cfg = _resolve_config(config)
    explicit = think_end or getattr(cfg, "think_end", None)
    think_end = explicit or DEFAULT_THINK_END  # the run's identity: "</think>" stands for the default
    # The answer region follows the marker generation followed: the explicit one, else the model's.
    answer_marker = explicit or model_end_marker(model) or DEFAULT_THINK_END
    model_name = model_name or model_name_of(model)
    chat = uses_chat_template(model)
    prompt_format = "chat" if chat else "plain"
    from .chat import check_template_kwargs  # here: the answer checker loads this file on its own

    chat_template_kwargs = check_template_kwargs(chat_template_kwargs)
    if chat_template_kwargs and not chat:
        raise ValueError("chat_template_kwargs need a chat template, and this model has none")
    number_fallback = problems[0].dataset in NUMBER_FALLBACK_DATASETS
    identity = run_identity(model=model_name, problems=all_problems, config=cfg, n=n,
                            seed=seed, max_tokens=max_tokens, think_end=think_end,
                            chat_template_kwargs=chat_template_kwargs)
    chunks = plan_chunks(problems, n, cfg)
    shard_meta = {}
    if shard is not None:
        from .evaluation_shards import apply_shard

        chunks, identity, shard_meta = apply_shard(shard, chunks, identity)
        problems = [p for chunk in chunks for p in chunk]

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not check_out_dir(out, identity):
        write_json_atomic(out / META_FILE, {
            "identity": identity, "config_label": label, "prompt_format": prompt_format,
            "instruction": INSTRUCTION, "think_end": answer_marker,
            "model_path": str(getattr(model, "path", "") or ""),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **shard_meta})
    samples_path = out / SAMPLES_FILE
    records = load_records(samples_path, n)
    pending = [[p for p in chunk if p.index not in records] for chunk in chunks]
    pending = [chunk for chunk in pending if chunk]
    job = EvalJob(n=n, config=cfg, max_tokens=max_tokens, seed=seed, chat=chat,
                  think_end=answer_marker, number_fallback=number_fallback,
                  verify_timeout=verify_timeout, n_parallel=n_parallel,
                  chat_template_kwargs=chat_template_kwargs)
    runner = model if isinstance(model, ChunkRunner) else LocalRunner(model)

    bar = _progress_bar(progress, total=len(problems) * n,
                        initial=(len(problems) - sum(map(len, pending))) * n, desc=label)
    n_correct = sum(r["correct"] for p in problems if p.index in records
                    for r in records[p.index])
    try:
        for new in runner.run_chunks(pending, job):
            _append_records(samples_path, new)  # one write per batch: a problem's n lines together
            done: dict[int, list[dict]] = {}
            for rec in new:
                done.setdefault(rec["problem_index"], []).append(rec)
            records.update(done)
            if bar is not None:
                n_correct += sum(r["correct"] for r in new)
                bar.update(len(new))
                bar.set_postfix(pass1=f"{n_correct / bar.n:.3f}")
    finally:
        if bar is not None:
            bar.close()

    summary = summarize(problems, records, n=n, label=label,
                        config_params=identity["config"], model=model_name,
                        limit=limit, seed=seed, max_tokens=max_tokens,
                        prompt_format=prompt_format, out_dir=str(out))
    summary.run = {**runner.shape(), **({"shard": identity["shard"]} if shard_meta else {})}
    if pending:  # what this session did, for the record: one line per session
        _append_records(out / RUNS_FILE, [{"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                           "batches": len(pending), **runner.report()}])
    write_json_atomic(out / SUMMARY_FILE, summary.to_dict())
    return summary


def _progress_bar(enabled: bool, **kw):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(unit="sample", dynamic_ncols=True, **kw)


def compare(model: Any, dataset: str | os.PathLike | Sequence[Problem],
            configs: Sequence[str | ConfigSpec], *, n: int = 16, limit: int | None = None,
            max_tokens: int = 2048, seed: int = 0, out_dir: str | os.PathLike,
            progress: bool = True, temperature: float | None = None,
            model_name: str | None = None, verify_timeout: float = 5.0,
            n_parallel: int | None = None, chat_template_kwargs: dict | None = None,
            shard: Any = None) -> list[EvalSummary]:
    """Run each config on the same problems with the same per-problem seeds, each
    in ``out_dir/<config dirname>`` (resumable like :func:`evaluate`); writes
    ``out_dir/compare.json``.  ``temperature`` is the default of specs that set none."""
    specs = [c if isinstance(c, ConfigSpec) else parse_config_spec(c, temperature=temperature)
             for c in configs]
    if not specs:
        raise ValueError("no configs to compare")
    if len({s.dirname for s in specs}) != len(specs):
        raise ValueError("the same config is listed twice: "
                         + ", ".join(s.label for s in specs))
    for s in specs:  # fail before any generation if a config is invalid
        s.build()
    summaries = [
        evaluate(model, dataset, s, n=n, limit=limit, max_tokens=max_tokens, seed=seed,
                 out_dir=Path(out_dir) / s.dirname, progress=progress,
                 model_name=model_name, verify_timeout=verify_timeout, n_parallel=n_parallel,
                 chat_template_kwargs=chat_template_kwargs, shard=shard)
        for s in specs]
    write_json_atomic(Path(out_dir) / "compare.json", [s.to_dict() for s in summaries])
    return summaries


def format_table(summaries: Sequence[EvalSummary]) -> str:
    """One row per summary: config, problems, strict pass@1 and pass@n, flexible
    pass@1 and pass@n, mean tokens, tok/s, explore rate (accuracies in percent)."""
    ns = {s.n for s in summaries}
    pk = f"pass@{ns.pop()}" if len(ns) == 1 else "pass@n"
    header = ["config", "problems", "n", "pass@1 %", f"{pk} %", "flex pass@1 %", f"flex {pk} %",
              "mean tok", "tok/s", "explore"]
    rows = [[s.config, str(s.num_problems), str(s.n), f"{100 * s.pass_at_1:.2f}",
             f"{100 * s.pass_at_k[s.n]:.2f}", f"{100 * s.flexible_pass_at_1:.2f}",
             f"{100 * s.flexible_pass_at_k[s.n]:.2f}", f"{s.mean_tokens:.1f}",
             f"{s.tokens_per_second:.1f}", f"{s.mean_explore_rate:.4f}"] for s in summaries]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])
