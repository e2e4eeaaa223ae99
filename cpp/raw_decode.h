// The benchmarks' baselines, measured in the same process on the same model as led_cpp:
// llama.cpp's own decode with no sampler (as llama-batched-bench runs it), and llama.cpp's own
// sampler chain (top-k, top-p, temperature, dist, as llama-cli and llama-server sample by
// default), on the host or as backend samplers in the graph. For benchmarks only.
#pragma once

#include "model.h"

#include <cstdint>
#include <vector>

namespace led {

struct RawDecodeTimings {
    double prompt_seconds = 0.0;
    double decode_seconds = 0.0;
    int prompt_tokens = 0;
    int decode_tokens = 0;
};

// n_sequences sequences of n_prompt arbitrary tokens each, prefilled together, then n_generate
// steps of one token per sequence with its logits copied to the host, next token = argmax.
RawDecodeTimings raw_decode(Model & model, int n_prompt, int n_generate, int n_sequences);

struct ChainSettings {
    int top_k = 20;
    float top_p = 0.95f;
    float temperature = 0.6f;
    uint32_t seed = 0;     // sequence s draws with seed + s
    bool backend = false;  // the chain as backend samplers in the model graph, else on the host
};

struct ChainDecodeResult {
    RawDecodeTimings timings;
    std::vector<std::vector<llama_token>> tokens;  // per sequence, the n_generate sampled tokens
};

// n_sequences copies of `prompt`, each prefilled, then n_generate steps decoding one token per
// sequence together, each sequence sampled by its own llama.cpp chain top-k -> top-p ->
// temperature -> dist. End-of-generation tokens do not stop it (a fixed token count).
ChainDecodeResult chain_decode(Model & model, const std::vector<llama_token> & prompt, int n_generate, int n_sequences,
                               const ChainSettings & settings);

}  // namespace led
