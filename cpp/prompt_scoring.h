// Prompt scoring: the log-probability of every prompt token given the ones before it (what
// OpenAI's `echo` with `logprobs` returns, and log-likelihood evaluations need). It runs in its
// own small context of one sequence with every position's logits, apart from the decode loop's.
#pragma once

#include "model.h"

#include <cstdint>
#include <utility>
#include <vector>

namespace led {

struct PromptScores {
    // Per token from the second on: log p(token i | tokens before i) at temperature 1.
    std::vector<float> logprobs;
    // Per token from the second on: the top_n most probable tokens there and their log-probabilities.
    std::vector<std::vector<std::pair<int32_t, float>>> top;
};

class PromptScorer {
public:
    explicit PromptScorer(Model & model);
    ~PromptScorer();
    PromptScorer(const PromptScorer &) = delete;
    PromptScorer & operator=(const PromptScorer &) = delete;

    PromptScores score(const std::vector<llama_token> & tokens, int top_n);

private:
    Model & model_;
    llama_context * context_ = nullptr;
};

}  // namespace led
