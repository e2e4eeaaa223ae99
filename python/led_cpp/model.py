"""A GGUF model: load, tokenize, chat templates, and generation (single, batched, streamed)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np

from . import _core, chat
from .config import DecodingConfig, LEDConfig, SamplingConfig, choice
from .generation import BatchStream, Generation, _Run
from .gguf_check import check_gguf_model
from .reasoning import Markers, find_markers, marker_pair
from .results import GenerationResult

Prompt = Union[str, Sequence[dict], Sequence[int]]
"""A prompt: text, chat messages (``{"role": ..., "content": ...}`` dicts) or token ids."""


INT32_MAX = 2**31 - 1


def _positive_int(name: str, value: Any, *, allow_none: bool = False, maximum: int = INT32_MAX) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 1 <= value <= maximum:
        raise ValueError(f"{name} must lie in [1, {maximum}], not {value}")
    return value


def _text(name: str, value: str) -> str:
    if "\x00" in value:
        raise ValueError(f"{name} contains a NUL character; remove it")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"{name} is not valid Unicode text (lone surrogate at position {error.start})") from None
    return value


def _is_messages(prompt: Any) -> bool:
    return isinstance(prompt, (list, tuple)) and bool(prompt) and all(isinstance(item, dict) for item in prompt)


class Model:
    """A GGUF model loaded by llama.cpp, with LED running inside its compute graph.

    n_ctx is the context shared by all samples decoded together; n_gpu_layers=-1 offloads
    every layer when led_cpp was built for a GPU; n_threads defaults to every core.
    led_projection says where LED projects the earlier depths through the output head:
    "every_step" in the model graph for every token (cheap on a GPU, no second graph),
    "on_explore" in a second graph only for the steps that explore (cheaper on a CPU), and
    "auto" picks the first when the model's output lives on a GPU. Both give the same tokens.
    kv_type "f16" or "f32" is the KV cache's type; flash_attention None lets llama.cpp decide;
    n_batch is llama.cpp's prompt batch size. The file is checked before llama.cpp reads it
    (``ModelFileError``, a ValueError, names what is wrong).

    Attributes:
        path: the GGUF file loaded (the first part of a split model).
        summary: what ``led_cpp.gguf_check`` read of the file.
        led_projection: the led_projection it was loaded with.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        n_ctx: int = 4096,
        n_gpu_layers: int = -1,
        n_threads: int | None = None,
        verbose: bool = False,
        kv_type: str = "f16",
        flash_attention: bool | None = None,
        n_batch: int = 512,
        led_projection: str = "auto",
    ) -> None:
        _positive_int("n_ctx", n_ctx, maximum=1 << 24)
        _positive_int("n_batch", n_batch, maximum=1 << 16)
        _positive_int("n_threads", n_threads, allow_none=True, maximum=1024)
        if isinstance(n_gpu_layers, bool) or not isinstance(n_gpu_layers, int):
            raise TypeError(f"n_gpu_layers must be an int, not {type(n_gpu_layers).__name__}")
        if not -1 <= n_gpu_layers <= INT32_MAX:
            raise ValueError(f"n_gpu_layers must be -1 (all) or a layer count, not {n_gpu_layers}")
        if kv_type not in ("f16", "f32"):
            raise ValueError(f"kv_type must be 'f16' or 'f32', not {kv_type!r}")
        projection = choice("led_projection", led_projection, _core.Projection)
        self.path = Path(path)
        self.summary = check_gguf_model(self.path)
        self._native = _core.ModelHandle(
            str(self.path),
            n_ctx=n_ctx,
            n_gpu_layers=n_gpu_layers,
            n_threads=n_threads or 0,
            verbose=bool(verbose),
            kv_type=kv_type,
            flash_attention=-1 if flash_attention is None else int(bool(flash_attention)),
            n_batch=n_batch,
            led_projection=projection,
        )
        self.led_projection = led_projection
        self._scorer: _core.PromptScorer | None = None  # the prompt-scoring context, made on first use

    @classmethod
    def from_pretrained(
        cls, repo_id: str, filename: str, *, revision: str | None = None, cache_dir: str | None = None, **kwargs: Any
    ) -> Model:
        """Downloads a GGUF file from a Hugging Face repository into the hub cache and loads it.

        ``filename`` is a path in the repository or a glob (``"*Q4_K_M.gguf"``), as in
        llama-cpp-python; a glob must match one model (the parts of one split model count as one),
        else the ValueError lists the candidates. A split model (``...-00001-of-00003.gguf``) is
        downloaded whole and loaded from its first part. Honours HF_HUB_OFFLINE: offline, the files
        are listed and taken from the cache only. ``kwargs`` go to ``Model(...)``."""
        from .hub import download_model

        return cls(download_model(repo_id, filename, revision=revision, cache_dir=cache_dir), **kwargs)

    # --- properties -----------------------------------------------------------------------
    @property
    def n_layer(self) -> int:
        """Transformer layers (LEDConfig.d is at most this)."""
        return self._native.n_layer

    @property
    def n_embd(self) -> int:
        """Width of the hidden state."""
        return self._native.n_embd

    @property
    def n_vocab(self) -> int:
        """Tokens in the vocabulary."""
        return self._native.n_vocab

    @property
    def n_ctx(self) -> int:
        """Context size of one generation call: prompt plus max_tokens must fit, per sample."""
        return self._native.n_ctx

    @property
    def n_threads(self) -> int:
        """CPU threads llama.cpp decodes with (every core unless Model(n_threads=...) said otherwise)."""
        return self._native.n_threads

    @property
    def architecture(self) -> str:
        """The GGUF's ``general.architecture`` ("llama", "qwen3", "gemma3", ...)."""
        return self._native.architecture

    @property
    def chat_template(self) -> str | None:
        """The GGUF's chat template (Jinja source), or None when it has none."""
        return self._native.chat_template or None

    @property
    def bos_token_id(self) -> int:
        """Beginning-of-sequence token id (-1 when the vocabulary has none)."""
        return self._native.bos_token_id

    @property
    def eos_token_id(self) -> int:
        """End-of-sequence token id (-1 when the vocabulary has none)."""
        return self._native.eos_token_id

    @property
    def eot_token_id(self) -> int:
        """End-of-turn token id (-1 when the vocabulary has none)."""
        return self._native.eot_token_id

    @property
    def bos_token(self) -> str:
        """The BOS token's text, as chat templates receive it ("" when there is none)."""
        return self._native.token_text(self.bos_token_id) if self.bos_token_id >= 0 else ""

    @property
    def eos_token(self) -> str:
        """The EOS token's text, as chat templates receive it ("" when there is none)."""
        return self._native.token_text(self.eos_token_id) if self.eos_token_id >= 0 else ""

    @property
    def reasoning_markers(self) -> Markers | None:
        """The (start, end) markers of the model's reasoning segment, found in its vocabulary and
        chat template (``("<think>", "</think>")``, ``("[THINK]", "[/THINK]")``, ...), or None."""
        if not hasattr(self, "_reasoning_markers"):
            self._reasoning_markers = find_markers(self._is_one_token, self.chat_template)
        return self._reasoning_markers

    def _is_one_token(self, text: str) -> bool:
        tokens = self._native.tokenize(text, False, True)
        return len(tokens) == 1 and self._native.token_text(tokens[0]) == text

    def _markers_for(self, config: DecodingConfig) -> Markers:
        return marker_pair(self.reasoning_markers, getattr(config, "think_end", None))

    def native_config(self, config: DecodingConfig) -> _core.SamplingSpec:
        """The config as the decode loop takes it, with this model's reasoning markers resolved."""
        start, end = self._markers_for(config)
        return config.to_native(think_start=start, think_end=end)

    def reasoning_open(
        self, prompt: Prompt, think_end: str | None = None, chat_template_kwargs: dict | None = None
    ) -> bool:
        """Whether the first token generated after ``prompt`` is inside the reasoning segment
        (LED_SPEC "Reasoning segment"); False when there are no markers."""
        start, end = marker_pair(self.reasoning_markers, think_end)
        tokens = self.prompt_tokens(prompt, chat.check_template_kwargs(chat_template_kwargs))
        return bool(end) and _core.prompt_leaves_reasoning_open(self._native, tokens, start, end)

    def metadata(self, key: str) -> str:
        """A GGUF metadata value as text ('' when absent)."""
        return self._native.metadata(key)

    # --- text ------------------------------------------------------------------------------
    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = True) -> list[int]:
        """The token ids of ``text``, by the model's own tokenizer (llama.cpp's).

        ``add_special`` adds the BOS (and EOS) token where the model asks for it (its
        ``tokenizer.ggml.add_bos_token``); ``parse_special`` reads special tokens written in the
        text (``"<|im_start|>"``) as those tokens rather than as their characters. TypeError for
        a non-str, ValueError for a NUL character or a lone surrogate."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, not {type(text).__name__}")
        return self._native.tokenize(_text("text", text), add_special, parse_special)

    def detokenize(self, tokens: Sequence[int]) -> str:
        """The text of token ids, special tokens included as their text; bytes that are not
        valid UTF-8 (a character cut between tokens) become U+FFFD."""
        return self._native.detokenize([int(token) for token in tokens]).decode("utf-8", errors="replace")

    def apply_chat_template(
        self, messages: Sequence[dict], *, add_generation_prompt: bool = True, **template_kwargs: Any
    ) -> str:
        """The model's chat template rendered as transformers' ``apply_chat_template`` renders it.

        ``messages`` are ``{"role": ..., "content": ...}`` dicts (``reasoning_content``,
        ``tool_calls`` and list-of-parts content too); ``add_generation_prompt`` ends with the
        assistant turn's opening; ``template_kwargs`` are the template's variables
        (enable_thinking=False, reasoning_effort="high", tools=[...], documents=[...]): JSON values.
        The template receives the model's ``bos_token`` and ``eos_token``. ValueError when the
        model has no template or the template fails, raises or runs too long."""
        template = self.chat_template
        if template is None:
            raise ValueError(f"{self.path.name} has no chat template; pass a plain string prompt instead of messages")
        return chat.render(
            template,
            messages,
            add_generation_prompt=add_generation_prompt,
            bos_token=self.bos_token,
            eos_token=self.eos_token,
            template_kwargs=template_kwargs,
        )

    def prompt_tokens(self, prompt: Prompt, chat_template_kwargs: dict | None = None) -> list[int]:
        """The tokens a prompt (text, chat messages or token ids) is decoded from; chat messages are
        rendered with ``chat_template_kwargs`` as the template's variables.

        Text is tokenized as it is (a text that spells the BOS token gets a second one where the
        model adds BOS, as llama.cpp's tokenizer does). A rendered chat template is treated as
        llama.cpp's chat code treats it (common/chat.cpp): when the model adds BOS and the
        rendering starts with the BOS token's text (most templates write ``bos_token``), that text
        is removed before tokenizing, so the prompt starts with one BOS; likewise a trailing EOS
        text when the model adds EOS."""
        if isinstance(prompt, str):
            if not prompt:
                raise ValueError("the prompt is empty; give some text")
            return self.tokenize(prompt)
        if _is_messages(prompt):
            text = self.apply_chat_template(prompt, **(chat_template_kwargs or {}))
            bos, eos = self.bos_token, self.eos_token
            if self._native.add_bos and bos and text.startswith(bos):
                text = text[len(bos) :]
            if self._native.add_eos and eos and text.endswith(eos):
                text = text[: -len(eos)]
            return self.tokenize(text)
        if (
            isinstance(prompt, (list, tuple, np.ndarray))
            and len(prompt)
            and all(isinstance(item, (int, np.integer)) and not isinstance(item, bool) for item in prompt)
        ):
            tokens = [int(item) for item in prompt]
            if any(not 0 <= token < self.n_vocab for token in tokens):
                raise ValueError(f"prompt token ids must lie in [0, {self.n_vocab})")
            return tokens
        raise ValueError(
            "a prompt must be a non-empty str, a list of chat messages "
            "({'role': ..., 'content': ...}) or a list of token ids"
        )

    # --- generation --------------------------------------------------------------------------
    def _start(
        self,
        prompts: Sequence[Prompt],
        *,
        n: int,
        config: DecodingConfig | None,
        max_tokens: int,
        seed: int | None,
        stop: str | Sequence[str],
        trace: bool,
        n_parallel: int | None,
        progress: bool = False,
        layer_analysis: int = 0,
        chat_template_kwargs: dict | None = None,
        cache_prompt: bool = False,
    ) -> _Run:
        config = SamplingConfig() if config is None else config
        if not isinstance(config, (SamplingConfig, LEDConfig)):
            raise TypeError(f"config must be a SamplingConfig or LEDConfig, not {type(config).__name__}")
        config.check_model(self.n_layer, self.n_vocab)
        _positive_int("n", n, maximum=1 << 20)
        _positive_int("max_tokens", max_tokens)
        _positive_int("n_parallel", n_parallel, allow_none=True, maximum=1024)
        if len(prompts) * n > 1 << 24:
            raise ValueError(f"{len(prompts)} prompts x n={n} samples is too many for one call; split it")
        if seed is None:
            seed = secrets.randbits(63)
        elif isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
            raise ValueError(f"seed must be an int in [0, 2**64), not {seed!r}")
        if stop is None:
            stop = ()
        if not isinstance(stop, (str, list, tuple)):
            raise TypeError(f"stop must be a str or a list of str, not {type(stop).__name__}")
        stops = [stop] if isinstance(stop, str) else list(stop)
        for item in stops:
            if not isinstance(item, str) or not item:
                raise ValueError("stop strings must be non-empty str")
            _text("a stop string", item)
        if not isinstance(trace, bool):
            raise TypeError("trace must be a bool")
        if not isinstance(cache_prompt, bool):
            raise TypeError("cache_prompt must be a bool")
        if isinstance(layer_analysis, bool) or not isinstance(layer_analysis, int) or layer_analysis < 0:
            raise ValueError(f"layer_analysis must be an int >= 0, not {layer_analysis!r}")
        if layer_analysis > self.n_vocab:
            raise ValueError(f"layer_analysis={layer_analysis} exceeds n_vocab={self.n_vocab}")
        if layer_analysis:
            if not isinstance(config, SamplingConfig):
                raise ValueError("layer_analysis runs with a SamplingConfig, not LED")
            trace = True
        template_kwargs = chat.check_template_kwargs(chat_template_kwargs)
        if template_kwargs and not any(_is_messages(prompt) for prompt in prompts):
            raise ValueError(
                "chat_template_kwargs apply to chat-message prompts; these prompts are text or "
                "token ids, which are not rendered by a template"
            )
        tokens = [self.prompt_tokens(prompt, template_kwargs) for prompt in prompts]
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(tokens) * n * max_tokens, unit="tok", desc="generating", leave=False)
        start, end = self._markers_for(config)
        options = _core.RunOptions(
            max_tokens=max_tokens,
            seed=seed,
            stop=stops,
            trace=trace,
            n_parallel=n_parallel or 0,
            analysis_top_k=layer_analysis,
            cache_prompt=cache_prompt,
        )
        native = _core.BatchRun(self._native, tokens, n, config.to_native(start, end), options)
        return _Run(native, trace, bar, markers=(start, end) if end else None)

    def generate(
        self,
        prompt: Prompt,
        *,
        config: DecodingConfig | None = None,
        max_tokens: int = 256,
        seed: int | None = None,
        stop: str | Sequence[str] = (),
        trace: bool = False,
        chat_template_kwargs: dict | None = None,
        cache_prompt: bool = False,
    ) -> Generation:
        """Starts one generation; iterate it for text pieces, then read ``.result``.

        ``config`` is a SamplingConfig (the default, ``SamplingConfig()``) or an LEDConfig;
        ``seed`` None draws one; ``stop`` strings end the text (not included); ``trace`` records a
        TraceStep per decided step; ``chat_template_kwargs`` (e.g. ``{"enable_thinking": False}``)
        go to the chat template of message prompts. ``cache_prompt`` starts the prompt from the KV
        of the longest prefix it shares with what this model's last generation left (its prompt,
        and with cache_prompt its answer too), so a chat resent with one more turn evaluates only
        that turn (``.stats["prompt_tokens_reused"]``);
        the logits of a prompt evaluated in two parts may differ from a whole evaluation's in the
        last bits, as in llama-server."""
        return Generation(
            self._start(
                [prompt],
                n=1,
                config=config,
                max_tokens=max_tokens,
                seed=seed,
                stop=stop,
                trace=trace,
                n_parallel=1,
                chat_template_kwargs=chat_template_kwargs,
                cache_prompt=cache_prompt,
            )
        )

    def stream_batch(
        self,
        prompts: Sequence[Prompt],
        *,
        n: int = 1,
        config: DecodingConfig | None = None,
        max_tokens: int = 256,
        seed: int | None = None,
        stop: str | Sequence[str] = (),
        trace: bool = False,
        n_parallel: int | None = None,
        progress: bool = False,
        chat_template_kwargs: dict | None = None,
        cache_prompt: bool = False,
    ) -> BatchStream:
        """n samples of every prompt decoded together; yields (prompt_index, sample_index, piece),
        then ``.results`` and ``.stats``. The arguments are generate_batch's."""
        if isinstance(prompts, str) or not isinstance(prompts, (list, tuple)) or not prompts:
            raise ValueError("prompts must be a non-empty list of prompts")
        return BatchStream(
            self._start(
                prompts,
                n=n,
                config=config,
                max_tokens=max_tokens,
                seed=seed,
                stop=stop,
                trace=trace,
                n_parallel=n_parallel,
                progress=progress,
                chat_template_kwargs=chat_template_kwargs,
                cache_prompt=cache_prompt,
            )
        )

    def generate_batch(
        self,
        prompts: Sequence[Prompt],
        *,
        n: int = 1,
        config: DecodingConfig | None = None,
        max_tokens: int = 256,
        seed: int | None = None,
        stop: str | Sequence[str] = (),
        trace: bool = False,
        n_parallel: int | None = None,
        progress: bool = False,
        layer_analysis: int = 0,
        chat_template_kwargs: dict | None = None,
        cache_prompt: bool = False,
    ) -> list[list[GenerationResult]]:
        """n samples of every prompt, decoded together in one context; per prompt a list of n results.

        Sample s of prompt p draws from its own random stream derived from (seed, p, s), so its
        tokens equal those of the same sample generated alone. ``n_parallel`` caps the samples
        decoding at once (default min(samples, 16)); ``progress`` shows a tqdm bar. layer_analysis=K
        (standard sampling only) fills every trace step with each layer's normalised entropy and
        top-K ids (the paper's Figures 2 and 4), computed by the same in-graph capture and head as
        LED. ``cache_prompt``: each prompt starts from the KV of the longest prefix it shares with
        the prompt evaluated before it (in this call, or this model's last). The other arguments
        are generate's."""
        if isinstance(prompts, str) or not isinstance(prompts, (list, tuple)) or not prompts:
            raise ValueError("prompts must be a non-empty list of prompts")
        run = self._start(
            prompts,
            n=n,
            config=config,
            max_tokens=max_tokens,
            seed=seed,
            stop=stop,
            trace=trace,
            n_parallel=n_parallel,
            progress=progress,
            layer_analysis=layer_analysis,
            chat_template_kwargs=chat_template_kwargs,
            cache_prompt=cache_prompt,
        )
        with BatchStream(run) as stream:
            return stream.results

    def score_prompt(self, prompt: Prompt, *, top_logprobs: int = 0) -> dict:
        """Log-probability of every prompt token after the first, given the tokens before it (T = 1).

        Returns {"tokens": [...], "logprobs": [None, lp_1, ...], "top_logprobs": [None, [(id, lp), ...], ...]}:
        what OpenAI's ``echo`` with ``logprobs`` reports and log-likelihood evaluations sum."""
        if isinstance(top_logprobs, bool) or not isinstance(top_logprobs, int) or not 0 <= top_logprobs <= self.n_vocab:
            raise ValueError(f"top_logprobs must be an int in [0, {self.n_vocab}], not {top_logprobs!r}")
        tokens = self.prompt_tokens(prompt)
        if self._scorer is None:
            self._scorer = _core.PromptScorer(self._native)
        scores = self._scorer.score(tokens, top_logprobs)
        top = [[(int(token), float(value)) for token, value in step] for step in scores.top]
        return {
            "tokens": tokens,
            "logprobs": [None, *scores.logprobs],
            "top_logprobs": [None, *top] if top_logprobs else [None] * len(tokens),
        }

    def depth_logits(
        self, prompt: Prompt, *, d: int = 8, ln: bool = False, layer_counting: str = "paper"
    ) -> np.ndarray:
        """Logits [d, n_vocab] of every depth LED reads at the prompt's last token, computed by
        the same in-graph capture and output-head projection LED decodes with. Row 0 is the final
        layer; ``ln`` and ``layer_counting`` are LEDConfig's."""
        _positive_int("d", d)
        if d > self.n_layer:
            raise ValueError(f"d={d} exceeds the model's {self.n_layer} layers")
        counting = choice("layer_counting", layer_counting, _core.LayerCounting)
        return self._native.depth_logits(self.prompt_tokens(prompt), d, bool(ln), counting)

    def __repr__(self) -> str:
        return (
            f"Model({str(self.path)!r}, architecture={self.architecture!r}, n_layer={self.n_layer}, "
            f"n_vocab={self.n_vocab}, n_ctx={self.n_ctx})"
        )
