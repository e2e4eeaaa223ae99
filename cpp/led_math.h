// The arithmetic of one Latent Exploration Decoding step (LED_SPEC.md), with no llama.cpp state.
// The in-graph versions (candidate_graph.cpp, led_graph.cpp) compute the same quantities with
// ggml ops; tests check both against a NumPy port of the spec.
#pragma once

#include <cstdint>
#include <vector>

namespace led {

enum class DepthRule { max_entropy, random, fixed };

// Per-depth floor and log floor from the spec (step 5).
constexpr float kProbabilityFloor = 1e-6f;
constexpr float kLogFloor = 1e-9f;

// softmax(logits * inverse_temperature) over the whole row, max-subtracted, float32.
void softmax(const float * logits, int64_t n, float inverse_temperature, float * out);

// Indices of the k largest values, descending; ties go to the lower index.
std::vector<int32_t> top_k_indices(const float * values, int64_t n, int k);

// Index drawn from non-negative weights with a uniform u in [0, 1): the first i whose running
// sum exceeds u * total; if rounding leaves none, the last index with positive weight.
int draw_index(const float * weights, int n, float uniform);

// First index of the maximum.
int argmax_first(const float * values, int n);

// The confidence gate (step 4): explore with probability 1 - q0 when exploit is on. Greedy
// (temperature 0) makes q one-hot, so the gate never explores there: T = 0 is deterministic.
bool explores(float top1_probability, bool exploit, bool explore_allowed, bool greedy, float uniform_gate);

// The permutation that puts candidates sorted by descending probability (as the graph returns
// them, ties in no fixed order) in the documented order: the lower token id first on exact ties.
// Returns false, order untouched, when they already are (one pass); else sorts only the runs of
// equal positive probability.
bool candidate_order(const int32_t * ids, const float * probabilities, int k, std::vector<int> & order);

// Step 5. depth_probabilities is [d][k] row-major: p_j[c] of the final layer's candidates,
// each depth normalised over the whole vocabulary. Writes the cumulative posteriors P_j
// ([d][k]) and the entropies H_j ([d]).
void cumulative_posteriors(const float * depth_probabilities, int d, int k, float * posteriors, float * entropies);

// The depth whose posterior picks the token (max_entropy: the first maximum).
int choose_depth(const float * entropies, int d, DepthRule rule, int fixed_depth, float uniform_depth);

// Step 5 from the candidates' probabilities at every depth ([d][k], depth 0 first): posteriors,
// entropies, the depth and the candidate index (greedy: the first maximum, else a draw). Every
// path that explores decides here, whichever graph projected the depths.
struct Exploration {
    int depth = 0;
    int index = 0;
    std::vector<float> entropies;  // d values
};
Exploration explore(const float * depth_probabilities, int d, int k, DepthRule rule, int fixed_depth, bool greedy,
                    float uniform_depth, float uniform_token);

struct StepOptions {
    float temperature = 0.6f;  // 0 = greedy
    int k = 8;
    bool exploit = true;
    bool explore_allowed = true;  // false once a think_only sequence has left the reasoning segment
    DepthRule depth_rule = DepthRule::max_entropy;
    int fixed_depth = 0;
};

struct Draws {
    float gate = 0.0f;
    float token = 0.0f;  // used by whichever of the exploit or explore draws happens
    float depth = 0.0f;  // depth_rule random only
};

struct StepResult {
    int32_t token = -1;
    bool explored = false;
    int depth = 0;
    std::vector<float> entropies;     // d values when the step explored, else empty
    std::vector<int32_t> candidates;  // k vocabulary ids, descending probability
    std::vector<float> candidate_probabilities;
    float logprob = 0.0f;  // log p_0[token] at the sampling temperature
};

// A whole step from per-depth logits [d][n_vocab] (depth 0 = the model's own logits).
StepResult step(const float * depth_logits, int d, int64_t n_vocab, const StepOptions & options, const Draws & draws);

}  // namespace led
