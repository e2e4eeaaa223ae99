#include "led_math.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace led {

void softmax(const float * logits, int64_t n, float inverse_temperature, float * out) {
    float max_value = -INFINITY;
    for (int64_t i = 0; i < n; ++i) {
        max_value = std::max(max_value, logits[i] * inverse_temperature);
    }
    float sum = 0.0f;
    for (int64_t i = 0; i < n; ++i) {
        out[i] = std::exp(logits[i] * inverse_temperature - max_value);
        sum += out[i];
    }
    const float inverse_sum = 1.0f / sum;
    for (int64_t i = 0; i < n; ++i) {
        out[i] *= inverse_sum;
    }
}

std::vector<int32_t> top_k_indices(const float * values, int64_t n, int k) {
    std::vector<int32_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    const auto before = [values](int32_t a, int32_t b) {
        return values[a] > values[b] || (values[a] == values[b] && a < b);
    };
    std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
    order.resize(k);
    return order;
}

int draw_index(const float * weights, int n, float uniform) {
    float total = 0.0f;
    for (int i = 0; i < n; ++i) {
        total += weights[i];
    }
    const float threshold = uniform * total;
    float running = 0.0f;
    int last_positive = 0;
    for (int i = 0; i < n; ++i) {
        running += weights[i];
        if (running > threshold) {
            return i;
        }
        if (weights[i] > 0.0f) {
            last_positive = i;
        }
    }
    return last_positive;
}

int argmax_first(const float * values, int n) {
    int best = 0;
    for (int i = 1; i < n; ++i) {
        if (values[i] > values[best]) {
            best = i;
        }
    }
    return best;
}

bool explores(float top1_probability, bool exploit, bool explore_allowed, bool greedy, float uniform_gate) {
    if (!explore_allowed) {
        return false;
    }
    if (!exploit) {
        return true;
    }
    return !greedy && uniform_gate < 1.0f - top1_probability;
}

bool candidate_order(const int32_t * ids, const float * probabilities, int k, std::vector<int> & order) {
    bool changed = false;
    for (int start = 0; start < k;) {
        int end = start + 1;
        while (end < k && probabilities[end] == probabilities[start]) ++end;
        // Zero-probability runs (underflow, only with the whole vocabulary as candidates) are
        // never drawn, so their order does not matter and is left as it comes.
        if (end - start > 1 && probabilities[start] > 0.0f && !std::is_sorted(ids + start, ids + end)) {
            if (!changed) {
                order.resize(k);
                std::iota(order.begin(), order.end(), 0);
                changed = true;
            }
            std::sort(order.begin() + start, order.begin() + end, [ids](int a, int b) { return ids[a] < ids[b]; });
        }
        start = end;
    }
    return changed;
}

void cumulative_posteriors(const float * depth_probabilities, int d, int k, float * posteriors, float * entropies) {
    std::vector<float> accumulated(k, 0.0f);
    for (int j = 0; j < d; ++j) {
        float total = 0.0f;
        for (int c = 0; c < k; ++c) {
            accumulated[c] += std::max(depth_probabilities[j * k + c], kProbabilityFloor);
        }
        for (int c = 0; c < k; ++c) {
            total += accumulated[c];
        }
        float entropy = 0.0f;
        for (int c = 0; c < k; ++c) {
            const float p = accumulated[c] / total;
            posteriors[j * k + c] = p;
            entropy += p * std::log(std::max(p, kLogFloor));
        }
        entropies[j] = -entropy;
    }
}

int choose_depth(const float * entropies, int d, DepthRule rule, int fixed_depth, float uniform_depth) {
    switch (rule) {
        case DepthRule::max_entropy: return argmax_first(entropies, d);
        case DepthRule::random:      return std::min(static_cast<int>(uniform_depth * static_cast<float>(d)), d - 1);
        case DepthRule::fixed:
            if (fixed_depth < 0 || fixed_depth >= d) {
                throw std::invalid_argument("fixed_depth must lie in [0, d)");
            }
            return fixed_depth;
    }
    return 0;
}

Exploration explore(const float * depth_probabilities, int d, int k, DepthRule rule, int fixed_depth, bool greedy,
                    float uniform_depth, float uniform_token) {
    Exploration result;
    std::vector<float> posteriors(static_cast<size_t>(d) * k);
    result.entropies.resize(d);
    cumulative_posteriors(depth_probabilities, d, k, posteriors.data(), result.entropies.data());
    result.depth = choose_depth(result.entropies.data(), d, rule, fixed_depth, uniform_depth);
    const float * chosen = posteriors.data() + static_cast<size_t>(result.depth) * k;
    result.index = greedy ? argmax_first(chosen, k) : draw_index(chosen, k, uniform_token);
    return result;
}

StepResult step(const float * depth_logits, int d, int64_t n_vocab, const StepOptions & options, const Draws & draws) {
    if (d < 1 || options.k < 1 || options.k > n_vocab) {
        throw std::invalid_argument("led::step needs 1 <= d and 1 <= k <= n_vocab");
    }
    const bool greedy = options.temperature == 0.0f;
    const float inverse_temperature = greedy ? 1.0f : 1.0f / options.temperature;
    const int k = options.k;

    std::vector<float> probabilities(n_vocab);
    softmax(depth_logits, n_vocab, inverse_temperature, probabilities.data());

    StepResult result;
    result.candidates = top_k_indices(probabilities.data(), n_vocab, k);
    result.candidate_probabilities.resize(k);
    for (int c = 0; c < k; ++c) {
        result.candidate_probabilities[c] = probabilities[result.candidates[c]];
    }
    const float * q = result.candidate_probabilities.data();

    int index = 0;
    result.explored = explores(q[0], options.exploit, options.explore_allowed, greedy, draws.gate);
    if (!result.explored) {
        index = greedy ? 0 : draw_index(q, k, draws.token);
    } else {
        std::vector<float> depth_probabilities(static_cast<size_t>(d) * k);
        std::copy(q, q + k, depth_probabilities.begin());
        for (int j = 1; j < d; ++j) {
            softmax(depth_logits + j * n_vocab, n_vocab, inverse_temperature, probabilities.data());
            for (int c = 0; c < k; ++c) {
                depth_probabilities[j * k + c] = probabilities[result.candidates[c]];
            }
        }
        Exploration exploration = explore(depth_probabilities.data(), d, k, options.depth_rule, options.fixed_depth,
                                          greedy, draws.depth, draws.token);
        result.depth = exploration.depth;
        result.entropies = std::move(exploration.entropies);
        index = exploration.index;
    }
    result.token = result.candidates[index];
    // log p_0[token] from the logits, finite even where the probability underflows to 0.
    result.logprob =
        std::log(q[0]) + (depth_logits[result.token] - depth_logits[result.candidates[0]]) * inverse_temperature;
    return result;
}

}  // namespace led
