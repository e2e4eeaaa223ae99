// llama.cpp's own decode with no sampler (as llama-batched-bench runs it): the baseline the
// benchmarks compare led_cpp against, measured in the same process on the same model.
#pragma once

#include "model.h"

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

}  // namespace led
