"""Requests with different in-graph settings (temperature, k / top_k, LED's d, ln and layer counting,
standard and LED) decoded together by one open engine: each sample gives exactly the tokens its
request gives alone, and the requests really shared decode steps."""

from __future__ import annotations

import pytest

import led_cpp
from led_cpp import LEDConfig, SamplingConfig, _core
from led_cpp.server.engine import result_of
from tests.support.tiny_models import write_tiny_model

N_CTX = 256
MAX_TOKENS = 24

# (prompt, n, config, seed): every setting the graph serves per row differs somewhere.
REQUESTS = [
    ("Once upon a time", 2, SamplingConfig(temperature=0.9, top_k=40, top_p=1.0), 1),
    ("The sea was", 1, SamplingConfig(temperature=0.5, top_k=5, top_p=0.9, min_p=0.05), 2),
    ("A cat", 1, SamplingConfig(temperature=0.0), 3),
    ("In the morning", 1, SamplingConfig(temperature=1.3, top_k=0, top_p=1.0), 4),
    ("Far away", 2, LEDConfig(temperature=0.7, d=3, k=6, exploit=False, think_only=False), 5),
    ("The old man", 1, LEDConfig(temperature=1.0, d=4, k=3, ln=True, exploit=False, think_only=False), 6),
    (
        "She said",
        1,
        LEDConfig(temperature=0.8, d=2, k=8, layer_counting="reference", exploit=False, think_only=False),
        7,
    ),
    ("Numbers:", 1, LEDConfig(temperature=0.6, d=4, k=12, depth_rule="random", think_only=False), 8),
]


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("mixed") / "tiny.gguf"
    write_tiny_model(path, "llama", n_layer=4, seed=5, context_length=N_CTX)
    return path


@pytest.fixture(scope="module", params=["on_explore", "every_step"])
def model(tiny_path, request):
    return led_cpp.Model(
        tiny_path, n_ctx=N_CTX, n_threads=1, kv_type="f32", flash_attention=False, led_projection=request.param
    )


def requests_for(model):
    """every_step: without the whole-vocabulary row, whose candidates and depths would not fit a
    row of llama.cpp's output buffer (that mix falls back to the second graph, as on_explore runs),
    so that the per-row temperature and ln run inside the model graph."""
    if model.led_projection != "every_step":
        return REQUESTS
    return [request for request in REQUESTS if not (isinstance(request[2], SamplingConfig) and request[2].top_k == 0)]


def run_together(model, requests, n_parallel):
    """Submits every request to one open engine before its first step; returns the results per
    request ([prompt][sample] tokens) and the engine's stats."""
    engine = _core.BatchRun(model._native, n_parallel)
    ids = [
        engine.submit(
            [model.prompt_tokens(prompt)],
            n,
            model.native_config(config),
            _core.RunOptions(max_tokens=MAX_TOKENS, seed=seed),
        )
        for prompt, n, config, seed in requests
    ]
    finished = []
    while not engine.idle:
        engine.advance()
        finished += engine.take_finished()
    finished += engine.take_finished()
    tokens = {request_id: {} for request_id in ids}
    for item in finished:
        tokens[item.request][item.sample] = result_of(item.result).tokens
    stats = engine.stats
    engine.close()
    return [[tokens[request_id][s] for s in range(n)] for request_id, (_, n, _, _) in zip(ids, requests)], stats


def test_mixed_settings_share_steps_and_equal_each_run_alone(model):
    requests = requests_for(model)
    together, stats = run_together(model, requests, n_parallel=16)
    # Every request decoded beside all the others in one step: nobody waited for other settings.
    assert stats.peak_requests_per_step == len(requests)
    assert stats.peak_active == sum(n for _, n, _, _ in requests)
    assert stats.graph_switches > 1  # the graph followed the mix as requests joined and left
    for (prompt, n, config, seed), got in zip(requests, together):
        alone = model.generate_batch([prompt], n=n, config=config, max_tokens=MAX_TOKENS, seed=seed, n_parallel=1)[0]
        assert got == [result.tokens for result in alone], (prompt, config)
    assert stats.explored_steps > 0
    if model.led_projection == "every_step":
        assert stats.explore_graphs == 0  # every explored step's depths came from the model graph


def test_one_setting_keeps_one_graph(model):
    same = [(prompt, n, REQUESTS[4][2], seed) for prompt, n, _, seed in REQUESTS[:4]]
    _, stats = run_together(model, same, n_parallel=16)
    assert stats.graph_switches <= 1  # set up once (or not at all: the model kept the last one)
    assert stats.peak_requests_per_step == len(same)
