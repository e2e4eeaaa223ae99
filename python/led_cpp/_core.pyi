# The stub of led_cpp._core, written by pybind11-stubgen 3.0.0 from the built module (after changing
# a binding, rebuild, then from the repository root run
#   pybind11-stubgen led_cpp._core -o python --enum-class-locations "DepthRule|LayerCounting|Projection:led_cpp._core"
#   ruff check --fix python/led_cpp/_core.pyi; ruff format python/led_cpp/_core.pyi
# and put this comment back). tests/test_native_module.py checks it against the module.
# ruff: noqa: E501 (the bindings' docstrings are one line each)
"""
led_cpp's C++ core: LED math, GGUF models through llama.cpp, and the decode loop.
"""

from __future__ import annotations

import collections.abc
import typing

import numpy
import numpy.typing

__all__: list[str] = [
    "BatchRun",
    "DepthRule",
    "FinishedSample",
    "LayerCounting",
    "ModelHandle",
    "Piece",
    "Projection",
    "PromptScorer",
    "PromptScores",
    "RunOptions",
    "RunStats",
    "SampleResult",
    "SamplingSpec",
    "Timings",
    "TraceStep",
    "devices",
    "led_step",
    "prompt_leaves_reasoning_open",
    "quantize",
    "stream_uniforms",
]

class DepthRule:
    """
    How an explored LED step picks its depth (LEDConfig.depth_rule).

    Members:

      max_entropy : The depth whose posterior has maximal entropy (the paper's rule).

      random : A depth drawn uniformly (the referee's ablation).

      fixed : Always the depth fixed_depth.
    """

    __members__: typing.ClassVar[dict[str, DepthRule]]
    fixed: typing.ClassVar[DepthRule]
    max_entropy: typing.ClassVar[DepthRule]
    random: typing.ClassVar[DepthRule]
    @typing.overload
    def __eq__(self, other: DepthRule) -> bool: ...
    @typing.overload
    def __eq__(self, other: typing.Any) -> bool: ...
    def __getstate__(self) -> int: ...
    def __hash__(self) -> int: ...
    def __index__(self) -> int: ...
    @typing.overload
    def __init__(self, value: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    @typing.overload
    def __init__(self, name: str) -> None:
        """
        The value of this name; ValueError naming the allowed names otherwise.
        """
    def __int__(self) -> int: ...
    @typing.overload
    def __ne__(self, other: DepthRule) -> bool: ...
    @typing.overload
    def __ne__(self, other: typing.Any) -> bool: ...
    def __repr__(self) -> str: ...
    def __setstate__(self, state: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    def __str__(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> int: ...

class LayerCounting:
    """
    Which layer output LED's depth j reads (LEDConfig.layer_counting).

    Members:

      paper : Depth j is the output of layer n_layer - 1 - j (LED_SPEC).

      reference : Depth j is the stream entering layer n_layer - 1 - j: the layer set of the authors' code.
    """

    __members__: typing.ClassVar[dict[str, LayerCounting]]
    paper: typing.ClassVar[LayerCounting]
    reference: typing.ClassVar[LayerCounting]
    @typing.overload
    def __eq__(self, other: LayerCounting) -> bool: ...
    @typing.overload
    def __eq__(self, other: typing.Any) -> bool: ...
    def __getstate__(self) -> int: ...
    def __hash__(self) -> int: ...
    def __index__(self) -> int: ...
    @typing.overload
    def __init__(self, value: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    @typing.overload
    def __init__(self, name: str) -> None:
        """
        The value of this name; ValueError naming the allowed names otherwise.
        """
    def __int__(self) -> int: ...
    @typing.overload
    def __ne__(self, other: LayerCounting) -> bool: ...
    @typing.overload
    def __ne__(self, other: typing.Any) -> bool: ...
    def __repr__(self) -> str: ...
    def __setstate__(self, state: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    def __str__(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> int: ...

class Projection:
    """
    Where LED projects the earlier depths through the output head (Model(led_projection=...)).

    Members:

      auto : every_step when the model's output lives on a GPU, else on_explore.

      every_step : The depths are projected in the model graph for every output row (cheap on a GPU).

      on_explore : A second graph projects the depths only for the steps that explore (cheaper on a CPU).
    """

    __members__: typing.ClassVar[dict[str, Projection]]
    auto: typing.ClassVar[Projection]
    every_step: typing.ClassVar[Projection]
    on_explore: typing.ClassVar[Projection]
    @typing.overload
    def __eq__(self, other: Projection) -> bool: ...
    @typing.overload
    def __eq__(self, other: typing.Any) -> bool: ...
    def __getstate__(self) -> int: ...
    def __hash__(self) -> int: ...
    def __index__(self) -> int: ...
    @typing.overload
    def __init__(self, value: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    @typing.overload
    def __init__(self, name: str) -> None:
        """
        The value of this name; ValueError naming the allowed names otherwise.
        """
    def __int__(self) -> int: ...
    @typing.overload
    def __ne__(self, other: Projection) -> bool: ...
    @typing.overload
    def __ne__(self, other: typing.Any) -> bool: ...
    def __repr__(self) -> str: ...
    def __setstate__(self, state: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    def __str__(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> int: ...

class SamplingSpec:
    """
    How each token is chosen: standard sampling or LED (led_cpp.SamplingConfig and LEDConfig validate and build it: Model.native_config).
    """
    def __init__(
        self,
        *,
        led: bool = False,
        temperature: typing.SupportsFloat | typing.SupportsIndex = 0.6000000238418579,
        top_k: typing.SupportsInt | typing.SupportsIndex = 20,
        top_p: typing.SupportsFloat | typing.SupportsIndex = 0.949999988079071,
        min_p: typing.SupportsFloat | typing.SupportsIndex = 0.0,
        d: typing.SupportsInt | typing.SupportsIndex = 8,
        k: typing.SupportsInt | typing.SupportsIndex = 8,
        ln: bool = False,
        exploit: bool = True,
        think_only: bool = True,
        depth_rule: DepthRule = DepthRule.max_entropy,
        fixed_depth: typing.SupportsInt | typing.SupportsIndex = 0,
        layer_counting: LayerCounting = LayerCounting.paper,
        think_start: str = "",
        think_end: str = "",
    ) -> None:
        """
        Every field by keyword; the rest keep their defaults. Checked against the model when a run takes it.
        """
    def __repr__(self) -> str: ...
    @property
    def d(self) -> int:
        """
        LED: depths read, the final layer included (1..n_layer).
        """
    @d.setter
    def d(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    @property
    def depth_rule(self) -> DepthRule:
        """
        LED: how an explored step picks its depth.
        """
    @depth_rule.setter
    def depth_rule(self, arg0: DepthRule) -> None: ...
    @property
    def exploit(self) -> bool:
        """
        LED: gate exploration with probability 1 - p_top1.
        """
    @exploit.setter
    def exploit(self, arg0: bool) -> None: ...
    @property
    def fixed_depth(self) -> int:
        """
        LED: the depth of depth_rule 'fixed', in [0, d).
        """
    @fixed_depth.setter
    def fixed_depth(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    @property
    def k(self) -> int:
        """
        LED: candidates taken from the final layer (1..n_vocab).
        """
    @k.setter
    def k(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    @property
    def layer_counting(self) -> LayerCounting:
        """
        LED: which layer output depth j reads.
        """
    @layer_counting.setter
    def layer_counting(self, arg0: LayerCounting) -> None: ...
    @property
    def led(self) -> bool:
        """
        LED (True) or standard sampling (False).
        """
    @led.setter
    def led(self, arg0: bool) -> None: ...
    @property
    def ln(self) -> bool:
        """
        LED: apply the final norm to the earlier depths' states.
        """
    @ln.setter
    def ln(self, arg0: bool) -> None: ...
    @property
    def min_p(self) -> float:
        """
        Standard sampling: candidates below min_p times the top probability are dropped.
        """
    @min_p.setter
    def min_p(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None: ...
    @property
    def temperature(self) -> float:
        """
        Sampling temperature; 0 is greedy.
        """
    @temperature.setter
    def temperature(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None: ...
    @property
    def think_end(self) -> str:
        """
        The reasoning segment's end marker; '' means no segment, so LED may explore on every step.
        """
    @think_end.setter
    def think_end(self, arg0: str) -> None: ...
    @property
    def think_only(self) -> bool:
        """
        LED: explore only inside the reasoning segment.
        """
    @think_only.setter
    def think_only(self, arg0: bool) -> None: ...
    @property
    def think_start(self) -> str:
        """
        The reasoning segment's start marker ('' when the model has none).
        """
    @think_start.setter
    def think_start(self, arg0: str) -> None: ...
    @property
    def top_k(self) -> int:
        """
        Standard sampling: candidates kept (0: the whole vocabulary).
        """
    @top_k.setter
    def top_k(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    @property
    def top_p(self) -> float:
        """
        Standard sampling: nucleus probability mass kept, in (0, 1].
        """
    @top_p.setter
    def top_p(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None: ...

class RunOptions:
    """
    What a run or request decodes besides the sampling: lengths, seed, stop strings, what the results carry.
    """
    def __init__(
        self,
        *,
        max_tokens: typing.SupportsInt | typing.SupportsIndex = 256,
        seed: typing.SupportsInt | typing.SupportsIndex = 0,
        stop: collections.abc.Sequence[str] = [],
        trace: bool = False,
        n_parallel: typing.SupportsInt | typing.SupportsIndex = 0,
        analysis_top_k: typing.SupportsInt | typing.SupportsIndex = 0,
        top_logprobs: typing.SupportsInt | typing.SupportsIndex = 0,
        cache_prompt: bool = False,
    ) -> None:
        """
        Every field by keyword; the rest keep their defaults. Checked when a run takes it.
        """
    def __repr__(self) -> str: ...
    @property
    def analysis_top_k(self) -> int:
        """
        > 0 (standard sampling): every trace step carries each layer's entropy and top ids.
        """
    @analysis_top_k.setter
    def analysis_top_k(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    @property
    def cache_prompt(self) -> bool:
        """
        Start each prompt from the KV of the longest prefix it shares with the prompt evaluated before it, in this run or the model's last (llama-server's cache_prompt); its logits may then differ in the last bits.
        """
    @cache_prompt.setter
    def cache_prompt(self, arg0: bool) -> None: ...
    @property
    def max_tokens(self) -> int:
        """
        Tokens generated at most per sample.
        """
    @max_tokens.setter
    def max_tokens(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    @property
    def n_parallel(self) -> int:
        """
        Samples decoded together (0: min(samples, 16)); each has its own KV stream.
        """
    @n_parallel.setter
    def n_parallel(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    @property
    def seed(self) -> int:
        """
        Sample s of prompt p draws from the streams of (seed, p, s).
        """
    @seed.setter
    def seed(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    @property
    def stop(self) -> list[str]:
        """
        Strings that end a sample (not included in its text).
        """
    @stop.setter
    def stop(self, arg0: collections.abc.Sequence[str]) -> None: ...
    @property
    def top_logprobs(self) -> int:
        """
        > 0: per token, the first top_logprobs candidates and their log-probabilities.
        """
    @top_logprobs.setter
    def top_logprobs(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None: ...
    @property
    def trace(self) -> bool:
        """
        Record a TraceStep per decided step.
        """
    @trace.setter
    def trace(self, arg0: bool) -> None: ...

class TraceStep:
    """
    One decided step under trace: each generated token, then (finish_reason 'eos') the step that chose the end of generation, whose token is not in the text.
    """
    def __repr__(self) -> str: ...
    @property
    def candidates(self) -> list[int]:
        """
        The k candidate ids, by descending probability.
        """
    @property
    def depth(self) -> int:
        """
        The depth whose posterior chose the token (0: the final layer).
        """
    @property
    def entropies(self) -> list[float]:
        """
        The d entropies H_j; empty when the depths were not evaluated.
        """
    @property
    def explored(self) -> bool:
        """
        Whether LED explored (chose from an earlier depth's posterior).
        """
    @property
    def layer_entropies(self) -> list[float]:
        """
        Layer analysis only: per layer, the final first, the normalised entropy (final norm applied, T = 1).
        """
    @property
    def layer_top_normalised(self) -> list[int]:
        """
        Layer analysis only: n_layer x top_k ids by logit, final norm applied, flattened row by row.
        """
    @property
    def layer_top_raw(self) -> list[int]:
        """
        Layer analysis only: n_layer x top_k ids by logit without the final norm, flattened row by row.
        """
    @property
    def token(self) -> int:
        """
        The token this step chose.
        """
    @property
    def top1_probability(self) -> float:
        """
        The final layer's q[0].
        """

class Timings:
    """
    Token counts and wall-clock seconds of a sample's prompt and decode.
    """
    def __repr__(self) -> str: ...
    @property
    def decode_seconds(self) -> float:
        """
        Seconds from the first decode step to the end.
        """
    @property
    def decode_tokens(self) -> int:
        """
        Tokens generated.
        """
    @property
    def prompt_seconds(self) -> float:
        """
        Seconds spent prefilling the prompt.
        """
    @property
    def prompt_tokens(self) -> int:
        """
        Tokens in the prompt.
        """

class SampleResult:
    """
    One finished sample (led_cpp.GenerationResult wraps it).
    """
    def __repr__(self) -> str: ...
    @property
    def answer(self) -> str:
        """
        What follows the segment (the whole text without one).
        """
    @property
    def explored_steps(self) -> int:
        """
        Decided steps on which LED explored.
        """
    @property
    def finish_reason(self) -> str:
        """
        'length', 'eos', 'stop' or 'cancelled'.
        """
    @property
    def logprobs(self) -> list[float]:
        """
        The final layer's log-probability of each token at the sampling temperature.
        """
    @property
    def reasoning(self) -> str:
        """
        The reasoning segment's text, markers removed.
        """
    @property
    def reasoning_tokens(self) -> int:
        """
        Tokens generated inside the reasoning segment, the end marker included.
        """
    @property
    def sampling_logprobs(self) -> list[float]:
        """
        Each token's log-probability under the distribution it was drawn from (0 for greedy steps).
        """
    @property
    def seed(self) -> int:
        """
        The run's seed.
        """
    @property
    def starts_in_reasoning(self) -> bool:
        """
        The prompt left the reasoning segment open (False without markers).
        """
    @property
    def text(self) -> str:
        """
        Their text (stop strings and the end token excluded).
        """
    @property
    def timings(self) -> Timings:
        """
        The sample's Timings.
        """
    @property
    def tokens(self) -> list[int]:
        """
        The generated token ids.
        """
    @property
    def top_logprobs(self) -> list[list[tuple[int, float]]]:
        """
        With top_logprobs > 0: per token, [(candidate id, log-probability at the sampling temperature)].
        """
    @property
    def trace(self) -> list[TraceStep]:
        """
        A TraceStep per decided step (empty unless traced).
        """

class Piece:
    """
    Text of one sample that became final in a decode step (whole UTF-8 characters).
    """
    def __repr__(self) -> str: ...
    @property
    def prompt(self) -> int:
        """
        The prompt's index in its request.
        """
    @property
    def reasoning(self) -> bool:
        """
        The text lies in the reasoning segment (markers included).
        """
    @property
    def request(self) -> int:
        """
        The request it belongs to (0 for a fixed run).
        """
    @property
    def sample(self) -> int:
        """
        The sample's index among the prompt's samples.
        """
    @property
    def text(self) -> str:
        """
        The text (may be empty).
        """

class FinishedSample:
    """
    A sample of an open run that finished (or was cancelled) since last asked.
    """
    def __repr__(self) -> str: ...
    @property
    def prompt(self) -> int:
        """
        The prompt's index in its request.
        """
    @property
    def request(self) -> int:
        """
        The request it belongs to.
        """
    @property
    def result(self) -> SampleResult:
        """
        Its SampleResult.
        """
    @property
    def sample(self) -> int:
        """
        The sample's index among the prompt's samples.
        """

class RunStats:
    """
    Counts of a run, over all its samples.
    """
    def __repr__(self) -> str: ...
    @property
    def decided_steps(self) -> int:
        """
        Decided steps (tokens, and steps that chose the end).
        """
    @property
    def decode_calls(self) -> int:
        """
        llama_decode calls.
        """
    @property
    def decode_tokens_evaluated(self) -> int:
        """
        Tokens submitted to llama_decode for generated tokens.
        """
    @property
    def every_step(self) -> bool:
        """
        The depths were projected in the model graph every step.
        """
    @property
    def explore_graphs(self) -> int:
        """
        Depth projection graphs run (on_explore).
        """
    @property
    def explored_steps(self) -> int:
        """
        Decided steps on which LED explored.
        """
    @property
    def graph_switches(self) -> int:
        """
        Times the graph was set up for another mix of in-graph settings.
        """
    @property
    def n_parallel(self) -> int:
        """
        Sequences the run decodes together at most.
        """
    @property
    def peak_active(self) -> int:
        """
        Most sequences decoding at once.
        """
    @property
    def peak_requests_per_step(self) -> int:
        """
        Most requests whose samples one decode step served together.
        """
    @property
    def prompt_tokens_evaluated(self) -> int:
        """
        Tokens submitted to llama_decode for prompts.
        """
    @property
    def prompt_tokens_reused(self) -> int:
        """
        Prompt tokens whose KV an earlier prompt left (RunOptions.cache_prompt).
        """
    @property
    def shared_head_product(self) -> bool:
        """
        ... through the model's own head product, widened.
        """

class ModelHandle:
    """
    A GGUF model loaded by llama.cpp (use led_cpp.Model).
    """
    def __init__(
        self,
        path: str,
        n_ctx: typing.SupportsInt | typing.SupportsIndex,
        n_gpu_layers: typing.SupportsInt | typing.SupportsIndex,
        n_threads: typing.SupportsInt | typing.SupportsIndex,
        verbose: bool,
        kv_type: str = "f16",
        flash_attention: typing.SupportsInt | typing.SupportsIndex = -1,
        n_batch: typing.SupportsInt | typing.SupportsIndex = 512,
        led_projection: Projection = Projection.auto,
    ) -> None:
        """
        Loads a GGUF file (checked first by led_cpp.gguf_check in Python). n_threads 0: every core; kv_type 'f16' or 'f32'; flash_attention -1 auto, 0 off, 1 on.
        """
    def chain_decode(
        self,
        prompt: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex],
        n_generate: typing.SupportsInt | typing.SupportsIndex,
        n_sequences: typing.SupportsInt | typing.SupportsIndex = 1,
        top_k: typing.SupportsInt | typing.SupportsIndex = 20,
        top_p: typing.SupportsFloat | typing.SupportsIndex = 0.949999988079071,
        temperature: typing.SupportsFloat | typing.SupportsIndex = 0.6000000238418579,
        seed: typing.SupportsInt | typing.SupportsIndex = 0,
        backend: bool = False,
    ) -> dict:
        """
        llama.cpp's own sampler chain (top-k, top-p, temperature, dist) on the host or as backend samplers: the benchmarks' baseline for sampled decoding. Benchmarks only. Returns a dict: the raw_decode timings and tokens (per sequence).
        """
    def depth_logits(
        self,
        tokens: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex],
        d: typing.SupportsInt | typing.SupportsIndex,
        ln: bool,
        layer_counting: LayerCounting,
    ) -> numpy.typing.NDArray[numpy.float32]:
        """
        Per-depth logits [d, n_vocab] at the last token, through LED's in-graph capture and projection.
        """
    def detokenize(self, tokens: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex]) -> bytes:
        """
        The bytes the tokens stand for (decode as UTF-8 with errors='replace').
        """
    def is_end_of_generation(self, token: typing.SupportsInt | typing.SupportsIndex) -> bool:
        """
        Whether the token ends a generation (EOS, EOT and the like).
        """
    def metadata(self, key: str) -> str:
        """
        A GGUF metadata value as text ('' when absent).
        """
    def raw_decode(
        self,
        n_prompt: typing.SupportsInt | typing.SupportsIndex,
        n_generate: typing.SupportsInt | typing.SupportsIndex,
        n_sequences: typing.SupportsInt | typing.SupportsIndex,
    ) -> dict:
        """
        llama.cpp's own decode with no sampler (like llama-batched-bench): the benchmarks' baseline. Returns a dict: prompt_seconds, decode_seconds, prompt_tokens, decode_tokens.
        """
    def token_piece(self, token: typing.SupportsInt | typing.SupportsIndex) -> bytes:
        """
        The bytes a token stands for in generated text.
        """
    def token_text(self, token: typing.SupportsInt | typing.SupportsIndex) -> str:
        """
        The vocabulary entry of a token.
        """
    def tokenize(self, text: str, add_special: bool, parse_special: bool) -> list[int]:
        """
        Token ids of the text; add_special adds BOS/EOS as the model asks, parse_special reads special tokens written in the text.
        """
    @property
    def add_bos(self) -> bool:
        """
        Whether tokenize(add_special=True) puts the BOS token first.
        """
    @property
    def add_eos(self) -> bool:
        """
        Whether tokenize(add_special=True) puts the EOS token last.
        """
    @property
    def architecture(self) -> str:
        """
        general.architecture of the GGUF.
        """
    @property
    def bos_token_id(self) -> int:
        """
        Beginning-of-sequence token id (-1 when none).
        """
    @property
    def chat_template(self) -> str:
        """
        The GGUF's chat template ('' when absent).
        """
    @property
    def eos_token_id(self) -> int:
        """
        End-of-sequence token id (-1 when none).
        """
    @property
    def eot_token_id(self) -> int:
        """
        End-of-turn token id (-1 when none).
        """
    @property
    def n_ctx(self) -> int:
        """
        Context size of a run (shared by the samples decoded together).
        """
    @property
    def n_embd(self) -> int:
        """
        Width of the hidden state.
        """
    @property
    def n_layer(self) -> int:
        """
        Transformer layers.
        """
    @property
    def n_threads(self) -> int:
        """
        CPU threads llama.cpp decodes with.
        """
    @property
    def n_vocab(self) -> int:
        """
        Tokens in the vocabulary.
        """

class BatchRun:
    """
    Samples of several prompts decoded together (use Model.generate*).
    """
    @typing.overload
    def __init__(
        self,
        model: ModelHandle,
        prompts: collections.abc.Sequence[collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex]],
        n: typing.SupportsInt | typing.SupportsIndex,
        spec: SamplingSpec,
        options: RunOptions,
    ) -> None:
        """
        A fixed run: n samples of every prompt, decoded together; finished when they all are.
        """
    @typing.overload
    def __init__(self, model: ModelHandle, n_parallel: typing.SupportsInt | typing.SupportsIndex) -> None:
        """
        An open engine taking requests until closed (the server's).
        """
    def advance(self) -> list[Piece]:
        """
        Runs one llama_decode (a prompt chunk or one step of every active sample); returns the Pieces of text that became final.
        """
    def cancel(self, request: typing.SupportsInt | typing.SupportsIndex) -> None:
        """
        Stops a request's samples and frees their cells (they finish as 'cancelled').
        """
    def close(self) -> None:
        """
        Stops every sequence and frees their cells; the model stays usable.
        """
    def results(self) -> list[list[SampleResult]]:
        """
        Per prompt, per sample, the SampleResult of a fixed run.
        """
    def submit(
        self,
        prompts: collections.abc.Sequence[collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex]],
        n: typing.SupportsInt | typing.SupportsIndex,
        spec: SamplingSpec,
        options: RunOptions,
    ) -> int:
        """
        Queues a request; returns its id. Sample s of prompt p draws from the stream of (options.seed, p, s).
        """
    def take_finished(self) -> list[FinishedSample]:
        """
        The FinishedSamples of an open run finished since the last call (a fixed run keeps them in results()).
        """
    @property
    def active(self) -> int:
        """
        Samples decoding now.
        """
    @property
    def finished(self) -> bool:
        """
        The run is over (closed, or every sample done).
        """
    @property
    def idle(self) -> bool:
        """
        Nothing queued or decoding: advance() would do nothing.
        """
    @property
    def stats(self) -> RunStats:
        """
        The run's RunStats so far (a copy).
        """
    @property
    def waiting(self) -> int:
        """
        Samples queued, not yet decoding.
        """

class PromptScores:
    """
    Log-probabilities of a prompt's tokens (T = 1).
    """
    def __repr__(self) -> str: ...
    @property
    def logprobs(self) -> list[float]:
        """
        Per token from the second on: log p(token | the tokens before it).
        """
    @property
    def top(self) -> list[list[tuple[int, float]]]:
        """
        Per token from the second on: the top_n most probable tokens there, [(id, log-probability)].
        """

class PromptScorer:
    """
    Scores prompt tokens (use Model.score_prompt).
    """
    def __init__(self, model: ModelHandle) -> None:
        """
        A scoring context of its own beside the model's runs.
        """
    def score(
        self,
        tokens: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex],
        top_n: typing.SupportsInt | typing.SupportsIndex = 0,
    ) -> PromptScores:
        """
        The PromptScores of the tokens (top empty when top_n is 0).
        """

def devices() -> list:
    """
    llama.cpp's compute devices: name, description, type, memory_total.
    """

def led_step(
    depth_logits: typing.Annotated[numpy.typing.ArrayLike, numpy.float32],
    *,
    temperature: typing.SupportsFloat | typing.SupportsIndex,
    k: typing.SupportsInt | typing.SupportsIndex,
    exploit: bool,
    explore_allowed: bool = True,
    depth_rule: str = "max_entropy",
    fixed_depth: typing.SupportsInt | typing.SupportsIndex = 0,
    u_gate: typing.SupportsFloat | typing.SupportsIndex,
    u_token: typing.SupportsFloat | typing.SupportsIndex,
    u_depth: typing.SupportsFloat | typing.SupportsIndex = 0.0,
) -> dict:
    """
    One LED step (LED_SPEC.md) computed by the C++ math unit on the host.

    depth_logits: float32 [d, n_vocab], row 0 the final layer's logits, row j depth j (not yet divided
    by the temperature). Returns a dict: token, explored, depth, entropies (d values when the step
    explored), candidates, candidate_probs, top1_probability, logprob.
    """

def prompt_leaves_reasoning_open(
    model: ModelHandle,
    prompt: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex],
    think_start: str,
    think_end: str,
) -> bool:
    """
    Whether the first token generated after `prompt` is inside the reasoning segment.
    """

def quantize(source: str, target: str, type: str, n_threads: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
    """
    Quantizes a GGUF with llama.cpp's quantize API (for the benchmarks' random-weight models).
    """

def stream_uniforms(
    seed: typing.SupportsInt | typing.SupportsIndex,
    prompt: typing.SupportsInt | typing.SupportsIndex,
    sample: typing.SupportsInt | typing.SupportsIndex,
    stream: typing.SupportsInt | typing.SupportsIndex,
    count: typing.SupportsInt | typing.SupportsIndex,
) -> list[float]:
    """
    The uniforms a sample draws per step: stream 0 token, 1 gate, 2 depth (one of each per step).
    """
