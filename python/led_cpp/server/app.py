"""The HTTP routes of ``led-cpp serve``: OpenAI's completions and chat completions (streamed as
SSE or not), models, health, tokenizer endpoints; API-key check, body limit, OpenAI error shapes."""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator, Dict, List, Optional, Tuple

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sse_starlette.sse import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import _core
from ..config import LEDConfig, SamplingConfig
from ..model import Model
from ..reasoning import marker_pair
from .deltas import ChatDeltas
from .engine import EngineBridge, EngineClosed, GenerationJob, QueueFull, result_of
from .protocol import ChatRequest, CompletionRequest, DetokenizeRequest, LEDOptions, TokenizeRequest


@dataclass
class ServerSettings:
    model_name: str
    n_parallel: int = 4
    max_queued: int = 256  # sequences waiting beyond the running ones before 429
    max_n: int = 16
    max_tokens_limit: int = 0  # 0 = the context size
    api_key: Optional[str] = None
    cors_origins: Tuple[str, ...] = ()
    max_body_bytes: int = 4 << 20
    default_led: Optional[LEDOptions] = None  # LED for requests that do not say
    top_k: int = 40  # standard sampling's top-k when a request gives none


class APIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: Optional[str] = None,
        code: Optional[str] = None,
        headers: Optional[Dict[str, str]] = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers


def error_response(
    status: int,
    message: str,
    type: str = "invalid_request_error",
    param: Optional[str] = None,
    code: Optional[str] = None,
    headers: Optional[Dict[str, str]] = None,
) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": type, "param": param, "code": code}}, status_code=status, headers=headers
    )


class BodyLimit:
    """Refuses request bodies over the limit (413) before they are read whole."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                return await self._refuse(scope, receive, send)
        seen = 0

        async def limited_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise APIError(413, f"the request body exceeds {self.limit} bytes", code="body_too_large")
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, scope: dict, receive: Any, send: Any) -> None:
        response = error_response(413, f"the request body exceeds {self.limit} bytes", code="body_too_large")
        await response(scope, receive, send)


def create_app(model: Model, settings: ServerSettings) -> FastAPI:
    if settings.max_tokens_limit <= 0:
        settings.max_tokens_limit = model.n_ctx
    state: Dict[str, Any] = {}

    async def lifespan(app: FastAPI):
        state["bridge"] = EngineBridge(model, n_parallel=settings.n_parallel, max_queued=settings.max_queued)
        try:
            yield
        finally:
            state["bridge"].close()

    app = FastAPI(title="led_cpp", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.server_state = state
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["*"], allow_headers=["*"]
        )
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)

    @app.middleware("http")
    async def authenticate(request: Request, call_next):
        if settings.api_key is not None and request.url.path != "/health" and request.method != "OPTIONS":
            given = request.headers.get("authorization", "")
            expected = f"Bearer {settings.api_key}"
            if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode()):
                return error_response(
                    401, "missing or wrong API key; send 'Authorization: Bearer KEY'", code="invalid_api_key"
                )
        try:
            return await call_next(request)
        except APIError as error:
            return error_response(error.status, error.message, error.type, error.param, error.code, error.headers)

    @app.exception_handler(APIError)
    async def api_error(request: Request, error: APIError):
        return error_response(error.status, error.message, error.type, error.param, error.code, error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError):
        problems = error.errors()
        first = problems[0] if problems else {}
        location = [str(part) for part in first.get("loc", ()) if part != "body"]
        param = ".".join(location) or None
        if first.get("type") == "json_invalid":
            message = "the request body is not valid JSON"
        elif first.get("type") == "extra_forbidden":
            message = f"unrecognized request argument supplied: {param}"
        else:
            message = (
                f"{param}: {first.get('msg', 'invalid value')}" if param else str(first.get("msg", "invalid request"))
            )
        return error_response(400, message, param=param)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        return error_response(error.status_code, str(error.detail), type="invalid_request_error")

    def bridge() -> EngineBridge:
        return state["bridge"]

    # --- shared pieces ------------------------------------------------------------------------
    def decoding_config(body: Any) -> Tuple[Any, bool]:
        temperature = 1.0 if body.temperature is None else body.temperature
        led = body.led if body.led is not None else (settings.default_led is not None)
        if led is True:
            led = settings.default_led or LEDOptions()
        try:
            if led:
                if body.top_p is not None or body.top_k is not None or body.min_p is not None:
                    raise APIError(
                        400,
                        "top_p, top_k and min_p are standard sampling's; an LED request takes k in 'led'",
                        param="led",
                    )
                options = led.model_dump()
                config: Any = LEDConfig(temperature=temperature, **options)
            else:
                config = SamplingConfig(
                    temperature=temperature,
                    top_k=settings.top_k if body.top_k is None else body.top_k,
                    top_p=1.0 if body.top_p is None else body.top_p,
                    min_p=0.0 if body.min_p is None else body.min_p,
                )
            config.check_model(model.n_layer, model.n_vocab)
        except (TypeError, ValueError) as error:
            raise APIError(400, str(error), param="led" if led else None) from None
        return config, bool(led)

    def check_counts(n: int, max_tokens: int) -> None:
        if n > settings.max_n:
            raise APIError(400, f"n={n} exceeds this server's limit of {settings.max_n}", param="n")
        if max_tokens > settings.max_tokens_limit:
            raise APIError(
                400,
                f"max_tokens={max_tokens} exceeds this server's limit of {settings.max_tokens_limit}",
                param="max_tokens",
            )

    def check_length(tokens: List[int], max_tokens: int) -> None:
        if len(tokens) + max_tokens > model.n_ctx:
            raise APIError(
                400,
                f"the prompt has {len(tokens)} tokens and max_tokens is {max_tokens}: together they "
                f"exceed the context of {model.n_ctx} tokens; shorten the prompt or lower max_tokens",
                param="messages" if False else "prompt",
                code="context_length_exceeded",
            )

    def text_tokens(text: str, param: str) -> List[int]:
        try:
            return model.prompt_tokens(text)
        except (TypeError, ValueError) as error:
            raise APIError(400, str(error), param=param) from None

    async def start(job: GenerationJob) -> GenerationJob:
        try:
            return bridge().submit(job)
        except QueueFull as error:
            raise APIError(
                429, str(error), type="rate_limit_error", code="queue_full", headers={"Retry-After": "1"}
            ) from None
        except EngineClosed as error:
            raise APIError(503, str(error), type="server_error") from None

    async def collect(job: GenerationJob, request: Request) -> Dict[Tuple[int, int], dict]:
        """Waits for every sample of a job; cancels it when the client goes away."""
        results: Dict[Tuple[int, int], dict] = {}

        async def gather() -> None:
            while len(results) < job.size:
                event = await job.events.get()
                if event[0] == "error":
                    raise APIError(
                        400 if isinstance(event[1], ValueError) else 500,
                        str(event[1]),
                        type="invalid_request_error" if isinstance(event[1], ValueError) else "server_error",
                    )
                if event[0] == "done":
                    results[(event[1], event[2])] = event[3]

        async def disconnected() -> None:
            while True:
                message = await request.receive()
                if message["type"] == "http.disconnect":
                    return

        gathering = asyncio.ensure_future(gather())
        watching = asyncio.ensure_future(disconnected())
        try:
            await asyncio.wait({gathering, watching}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watching.cancel()
            if not gathering.done():
                gathering.cancel()
                bridge().cancel(job)
        if not gathering.done() or gathering.cancelled():
            raise APIError(499, "the client closed the connection", code="client_closed")
        gathering.result()
        return results

    def finish_reason(native: _core.SampleResult) -> str:
        return {"eos": "stop", "stop": "stop", "length": "length"}.get(native.finish_reason, native.finish_reason)

    def piece(token: int) -> str:
        return model._native.token_piece(token).decode("utf-8", errors="replace")

    def usage(prompt_tokens: int, completion_tokens: int) -> dict:
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }

    def seed_of(body: Any) -> int:
        return body.seed if body.seed is not None else secrets.randbits(63)

    # --- routes -------------------------------------------------------------------------------
    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models():
        return {
            "object": "list",
            "data": [
                {
                    "id": settings.model_name,
                    "object": "model",
                    "created": 0,
                    "owned_by": "led_cpp",
                    "meta": {"n_ctx": model.n_ctx, "n_vocab": model.n_vocab},
                }
            ],
        }

    @app.get("/tokenizer_info")
    async def tokenizer_info():
        return {
            "eos_token": model.eos_token or None,
            "bos_token": model.bos_token or None,
            "pad_token": None,
            "chat_template": model.chat_template,
            "eos_token_id": model.eos_token_id,
            "bos_token_id": model.bos_token_id,
            "add_bos_token": bool(model._native.add_bos),
            "model": settings.model_name,
        }

    @app.post("/tokenize")
    async def tokenize(body: TokenizeRequest):
        try:
            text = body.text()
            return {"tokens": model.tokenize(text, add_special=body.special())}
        except (TypeError, ValueError) as error:
            raise APIError(400, str(error), param="content") from None

    @app.post("/detokenize")
    async def detokenize(body: DetokenizeRequest):
        try:
            text = model.detokenize(body.tokens)
        except (TypeError, ValueError) as error:
            raise APIError(400, str(error), param="tokens") from None
        return {"prompt": text, "content": text}

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request):
        try:
            prompts = body.prompts()
        except ValueError as error:
            raise APIError(400, str(error), param="prompt") from None
        tokens = [text_tokens(prompt, "prompt") if isinstance(prompt, str) else list(prompt) for prompt in prompts]
        for ids in tokens:
            if not ids or any(not 0 <= token < model.n_vocab for token in ids):
                raise APIError(
                    400, f"prompt token ids must be non-empty and lie in [0, {model.n_vocab})", param="prompt"
                )
        max_tokens = 16 if body.max_tokens is None else body.max_tokens
        check_counts(body.n, max_tokens)
        if len(tokens) * body.n > settings.n_parallel + settings.max_queued:
            raise APIError(
                400,
                f"{len(tokens)} prompts x n={body.n} exceed what this server queues "
                f"({settings.n_parallel + settings.max_queued} sequences); split the request",
                param="prompt",
            )
        for ids in tokens:
            check_length(ids, max_tokens)
        config, led = decoding_config(body)
        logprobs = body.logprobs
        created, identifier = int(time.time()), f"cmpl-{uuid.uuid4().hex}"
        scores: List[Optional[dict]] = [None] * len(tokens)
        if body.echo and logprobs is not None:
            for index, ids in enumerate(tokens):
                scores[index] = await bridge().call(
                    lambda ids=ids: model.score_prompt(ids, top_logprobs=max(logprobs, 1))
                )
        seed = seed_of(body)
        job = None
        if max_tokens > 0:
            job = await start(
                GenerationJob(
                    tokens,
                    body.n,
                    model.native_config(config),
                    max_tokens,
                    seed,
                    body.stops(),
                    top_logprobs=max(logprobs or 0, 1) if logprobs is not None else 0,
                    cache_prompt=body.cache_prompt,
                )
            )

        def logprobs_block(prompt_index: int, native: Optional[_core.SampleResult]) -> Optional[dict]:
            if logprobs is None:
                return None
            ids: List[int] = []
            values: List[Optional[float]] = []
            tops: List[Optional[dict]] = []
            if body.echo:
                score = scores[prompt_index]
                ids += tokens[prompt_index]
                values += score["logprobs"]
                tops += [
                    None if top is None else {piece(t): v for t, v in top[: max(logprobs, 1)]}
                    for top in score["top_logprobs"]
                ]
            if native is not None:
                ids += native.tokens
                values += native.logprobs[: len(native.tokens)]
                tops += [{piece(t): v for t, v in step[: max(logprobs, 1)]} for step in native.top_logprobs]
            texts = [piece(token) for token in ids]
            offsets, position = [], 0
            for text in texts:
                offsets.append(position)
                position += len(text)
            return {
                "tokens": texts,
                "token_logprobs": values,
                "top_logprobs": tops if logprobs > 0 else None,
                "text_offset": offsets,
            }

        def choice(prompt_index: int, sample: int, native: Optional[_core.SampleResult]) -> dict:
            prefix = model.detokenize(tokens[prompt_index]) if body.echo else ""
            item = {
                "index": prompt_index * body.n + sample,
                "text": prefix + (native.text if native else ""),
                "logprobs": logprobs_block(prompt_index, native),
                "finish_reason": finish_reason(native) if native else "length",
            }
            if led and native is not None:
                item["explored_steps"] = native.explored_steps
            return item

        prompt_count = sum(len(ids) for ids in tokens)
        if not body.stream:
            results = await collect(job, request) if job is not None else {}
            choices = [choice(p, s, results.get((p, s))) for p in range(len(tokens)) for s in range(body.n)]
            completion_count = sum(len(native.tokens) for native in results.values())
            return {
                "id": identifier,
                "object": "text_completion",
                "created": created,
                "model": settings.model_name,
                "choices": choices,
                "usage": usage(prompt_count, completion_count),
                "system_fingerprint": f"seed-{seed}",
            }

        async def events() -> AsyncIterator[dict]:
            def chunk(choices: List[dict], extra: Optional[dict] = None) -> dict:
                payload = {
                    "id": identifier,
                    "object": "text_completion",
                    "created": created,
                    "model": settings.model_name,
                    "choices": choices,
                }
                payload.update(extra or {})
                return {"data": json.dumps(payload)}

            completion_count = 0
            try:
                if body.echo:
                    for p in range(len(tokens)):
                        for s in range(body.n):
                            yield chunk(
                                [
                                    {
                                        "index": p * body.n + s,
                                        "text": model.detokenize(tokens[p]),
                                        "logprobs": None,
                                        "finish_reason": None,
                                    }
                                ]
                            )
                finished = 0
                while job is not None and finished < job.size:
                    event = await job.events.get()
                    if event[0] == "error":
                        yield {
                            "data": json.dumps(
                                {
                                    "error": {
                                        "message": str(event[1]),
                                        "type": "server_error",
                                        "param": None,
                                        "code": None,
                                    }
                                }
                            )
                        }
                        break
                    if event[0] == "piece":
                        yield chunk(
                            [
                                {
                                    "index": event[1] * body.n + event[2],
                                    "text": event[3],
                                    "logprobs": None,
                                    "finish_reason": None,
                                }
                            ]
                        )
                    else:
                        finished += 1
                        native = event[3]
                        completion_count += len(native.tokens)
                        item = {
                            "index": event[1] * body.n + event[2],
                            "text": "",
                            "logprobs": None,
                            "finish_reason": finish_reason(native),
                        }
                        if logprobs is not None:
                            block = logprobs_block(event[1], native)
                            item["logprobs"] = block
                        if led:
                            item["explored_steps"] = native.explored_steps
                        yield chunk([item])
                if job is None:
                    for p in range(len(tokens)):
                        for s in range(body.n):
                            yield chunk(
                                [
                                    {
                                        "index": p * body.n + s,
                                        "text": "",
                                        "logprobs": logprobs_block(p, None),
                                        "finish_reason": "length",
                                    }
                                ]
                            )
                if body.stream_options is not None and body.stream_options.include_usage:
                    yield chunk([], {"usage": usage(prompt_count, completion_count)})
                yield {"data": "[DONE]"}
            finally:
                if job is not None:
                    bridge().cancel(job)  # a no-op once finished; frees the cells of a vanished client

        return EventSourceResponse(events(), ping=15)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest, request: Request):
        messages = [message.for_template() for message in body.messages]
        # The tokens Model.generate decodes for these messages (the template's BOS text dropped as
        # llama.cpp's chat code drops it), so a seeded choice equals the in-process sample.
        try:
            ids = model.prompt_tokens(messages, body.chat_template_kwargs or None)
        except TypeError:
            raise APIError(
                400, "chat_template_kwargs are not supported by this led_cpp version", param="chat_template_kwargs"
            ) from None
        except ValueError as error:
            raise APIError(400, str(error), param="messages") from None
        limit = body.token_limit()
        if len(ids) >= model.n_ctx:
            raise APIError(
                400,
                f"the prompt has {len(ids)} tokens; the context holds {model.n_ctx}",
                param="messages",
                code="context_length_exceeded",
            )
        max_tokens = limit if limit is not None else min(settings.max_tokens_limit, model.n_ctx - len(ids))
        check_counts(body.n, max_tokens)
        check_length(ids, max_tokens)
        config, led = decoding_config(body)
        top = body.top_logprobs or 0
        markers = marker_pair(model.reasoning_markers, getattr(config, "think_end", None))
        created, identifier = int(time.time()), f"chatcmpl-{uuid.uuid4().hex}"
        seed = seed_of(body)
        if max_tokens == 0:
            raise APIError(400, "max_tokens must be at least 1 for chat completions", param="max_tokens")
        job = await start(
            GenerationJob(
                [ids],
                body.n,
                model.native_config(config),
                max_tokens,
                seed,
                body.stops(),
                top_logprobs=max(top, 1) if body.logprobs else 0,
                cache_prompt=body.cache_prompt,
            )
        )

        def logprobs_block(native: _core.SampleResult) -> Optional[dict]:
            if not body.logprobs:
                return None
            content = []
            for token, value, step in zip(native.tokens, native.logprobs, native.top_logprobs):
                text = piece(token)
                content.append(
                    {
                        "token": text,
                        "logprob": value,
                        "bytes": list(text.encode()),
                        "top_logprobs": [
                            {"token": piece(t), "logprob": v, "bytes": list(piece(t).encode())} for t, v in step[:top]
                        ],
                    }
                )
            return {"content": content}

        if not body.stream:
            results = await collect(job, request)
            choices = []
            for s in range(body.n):
                native = results[(0, s)]
                # The decode loop split reasoning from answer (LED_SPEC "Reasoning segment").
                result = result_of(native)
                message: Dict[str, Any] = {"role": "assistant", "content": result.answer}
                if result.starts_in_reasoning:
                    message["reasoning_content"] = result.reasoning
                item = {
                    "index": s,
                    "message": message,
                    "logprobs": logprobs_block(native),
                    "finish_reason": finish_reason(native),
                }
                if led:
                    item["explored_steps"] = native.explored_steps
                choices.append(item)
            completion_count = sum(len(native.tokens) for native in results.values())
            return {
                "id": identifier,
                "object": "chat.completion",
                "created": created,
                "model": settings.model_name,
                "choices": choices,
                "usage": usage(len(ids), completion_count),
                "system_fingerprint": f"seed-{seed}",
            }

        async def events() -> AsyncIterator[dict]:
            def chunk(choices: List[dict], extra: Optional[dict] = None) -> dict:
                payload = {
                    "id": identifier,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": settings.model_name,
                    "choices": choices,
                }
                payload.update(extra or {})
                return {"data": json.dumps(payload)}

            deltas = [ChatDeltas(*markers) for _ in range(body.n)]
            completion_count = 0
            try:
                for s in range(body.n):
                    yield chunk(
                        [
                            {
                                "index": s,
                                "delta": {"role": "assistant", "content": ""},
                                "logprobs": None,
                                "finish_reason": None,
                            }
                        ]
                    )
                finished = 0
                while finished < job.size:
                    event = await job.events.get()
                    if event[0] == "error":
                        yield {
                            "data": json.dumps(
                                {
                                    "error": {
                                        "message": str(event[1]),
                                        "type": "server_error",
                                        "param": None,
                                        "code": None,
                                    }
                                }
                            )
                        }
                        break
                    s = event[2]
                    if event[0] == "piece":
                        reasoning, content = deltas[s].feed(event[3], event[4])
                    else:
                        reasoning, content = deltas[s].finish(), ""
                    delta: Dict[str, str] = {}
                    if reasoning:
                        delta["reasoning_content"] = reasoning
                    if content:
                        delta["content"] = content
                    if delta:
                        yield chunk([{"index": s, "delta": delta, "logprobs": None, "finish_reason": None}])
                    if event[0] == "done":
                        finished += 1
                        native = event[3]
                        completion_count += len(native.tokens)
                        item = {
                            "index": s,
                            "delta": {},
                            "logprobs": logprobs_block(native),
                            "finish_reason": finish_reason(native),
                        }
                        if led:
                            item["explored_steps"] = native.explored_steps
                        yield chunk([item])
                if body.stream_options is not None and body.stream_options.include_usage:
                    yield chunk([], {"usage": usage(len(ids), completion_count)})
                yield {"data": "[DONE]"}
            finally:
                bridge().cancel(job)

        return EventSourceResponse(events(), ping=15)

    @app.get("/stats")
    async def stats():
        return bridge().stats()

    return app
