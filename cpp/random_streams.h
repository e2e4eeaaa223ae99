// Per-sample random streams: each sample draws from streams seeded by (seed, prompt, sample,
// stream) alone, so its tokens do not depend on what else is decoded beside it.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace led {

// Seed of the stream of a sample: a function of (seed, prompt, sample, stream) only.
uint64_t derive_seed(uint64_t seed, uint64_t prompt, uint64_t sample, uint64_t stream);

// A float in [0, 1) from the top 24 bits of the next draw: exact, and the same on every platform.
float uniform(std::mt19937_64 & stream);

// The first `count` uniforms of a sample's stream (0 token, 1 gate, 2 depth), as decoding draws them.
std::vector<float> stream_uniforms(uint64_t seed, uint64_t prompt, uint64_t sample, uint64_t stream, size_t count);

// The three streams of one sample; decoding draws one uniform of each per step.
struct SampleStreams {
    std::mt19937_64 token, gate, depth;

    void seed(uint64_t seed, uint64_t prompt, uint64_t sample);
};

}  // namespace led
