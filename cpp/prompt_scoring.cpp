#include "prompt_scoring.h"

#include "decode_loop.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

namespace led {

PromptScorer::PromptScorer(Model & model) : model_(model) {
    const ModelOptions & options = model_.options();
    llama_context_params params = base_context_params(options);
    params.n_ctx = static_cast<uint32_t>(options.n_ctx);
    params.n_seq_max = 1;
    context_ = llama_init_from_model(const_cast<llama_model *>(model_.model()), params);  // llama.cpp only reads it
    if (context_ == nullptr) {
        throw std::runtime_error("llama.cpp could not create the prompt-scoring context of " +
                                 std::to_string(options.n_ctx) + " tokens (out of memory?)");
    }
}

PromptScorer::~PromptScorer() {
    if (context_ != nullptr) llama_free(context_);
}

PromptScores PromptScorer::score(const std::vector<llama_token> & tokens, int top_n) {
    const int n_vocab = model_.n_vocab();
    if (tokens.empty()) throw std::invalid_argument("prompt scoring needs at least one token");
    if (top_n < 0 || top_n > n_vocab) throw std::invalid_argument("top_logprobs must lie in [0, n_vocab]");
    if (tokens.size() > static_cast<size_t>(model_.options().n_ctx)) {
        throw std::invalid_argument("the prompt has " + std::to_string(tokens.size()) +
                                    " tokens, more than the context of " + std::to_string(model_.options().n_ctx));
    }
    for (llama_token token : tokens) {
        if (token < 0 || token >= n_vocab) {
            throw std::invalid_argument("token id " + std::to_string(token) + " is outside the vocabulary [0, " +
                                        std::to_string(n_vocab) + ")");
        }
    }
    llama_memory_clear(llama_get_memory(context_), true);
    PromptScores scores;
    std::vector<int32_t> order(n_vocab);
    const size_t n_batch = llama_n_batch(context_);
    // The logits at position i score token i + 1; the last position scores nothing.
    for (size_t done = 0; done + 1 < tokens.size();) {
        const size_t count = std::min(n_batch, tokens.size() - 1 - done);
        llama_batch batch = llama_batch_init(static_cast<int32_t>(count), 0, 1);
        for (size_t i = 0; i < count; ++i) {
            batch.token[i] = tokens[done + i];
            batch.pos[i] = static_cast<llama_pos>(done + i);
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = 0;
            batch.logits[i] = true;
        }
        batch.n_tokens = static_cast<int32_t>(count);
        const int32_t status = llama_decode(context_, batch);
        llama_batch_free(batch);
        if (status == 2) throw Interrupted();
        if (status != 0)
            throw std::runtime_error("llama_decode failed while scoring the prompt (status " + std::to_string(status) +
                                     ")");
        for (size_t i = 0; i < count; ++i) {
            const float * logits = llama_get_logits_ith(context_, static_cast<int32_t>(i));
            const float top = *std::max_element(logits, logits + n_vocab);
            double total = 0.0;
            for (int v = 0; v < n_vocab; ++v) total += std::exp(static_cast<double>(logits[v]) - top);
            const double normaliser = top + std::log(total);
            scores.logprobs.push_back(static_cast<float>(logits[tokens[done + i + 1]] - normaliser));
            if (top_n > 0) {
                std::iota(order.begin(), order.end(), 0);
                std::partial_sort(order.begin(), order.begin() + top_n, order.end(), [&](int32_t a, int32_t b) {
                    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
                });
                std::vector<std::pair<int32_t, float>> best(top_n);
                for (int j = 0; j < top_n; ++j) best[j] = {order[j], static_cast<float>(logits[order[j]] - normaliser)};
                scores.top.push_back(std::move(best));
            }
        }
        done += count;
    }
    llama_memory_clear(llama_get_memory(context_), true);
    return scores;
}

}  // namespace led
