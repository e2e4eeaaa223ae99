#include "random_streams.h"

namespace led {

namespace {

uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

}  // namespace

uint64_t derive_seed(uint64_t seed, uint64_t prompt, uint64_t sample, uint64_t stream) {
    return splitmix64(splitmix64(splitmix64(splitmix64(seed) ^ prompt) ^ sample) ^ stream);
}

float uniform(std::mt19937_64 & stream) { return static_cast<float>(stream() >> 40) * (1.0f / 16777216.0f); }

std::vector<float> stream_uniforms(uint64_t seed, uint64_t prompt, uint64_t sample, uint64_t stream, size_t count) {
    std::mt19937_64 generator(derive_seed(seed, prompt, sample, stream));
    std::vector<float> values(count);
    for (float & value : values) value = uniform(generator);
    return values;
}

void SampleStreams::seed(uint64_t seed, uint64_t prompt, uint64_t sample) {
    token.seed(derive_seed(seed, prompt, sample, 0));
    gate.seed(derive_seed(seed, prompt, sample, 1));
    depth.seed(derive_seed(seed, prompt, sample, 2));
}

}  // namespace led
