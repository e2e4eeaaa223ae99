#include "raw_decode.h"

#include "decode_loop.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace led {

namespace {

using clock = std::chrono::steady_clock;

double seconds_since(clock::time_point start) { return std::chrono::duration<double>(clock::now() - start).count(); }

void decode(llama_context * context, const std::vector<llama_token> & tokens, const std::vector<llama_pos> & positions,
            const std::vector<llama_seq_id> & sequences, const std::vector<int8_t> & outputs) {
    llama_batch batch = llama_batch_init(static_cast<int32_t>(tokens.size()), 0, 1);
    for (size_t i = 0; i < tokens.size(); ++i) {
        batch.token[i] = tokens[i];
        batch.pos[i] = positions[i];
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = sequences[i];
        batch.logits[i] = outputs[i];
    }
    batch.n_tokens = static_cast<int32_t>(tokens.size());
    const int32_t status = llama_decode(context, batch);
    llama_batch_free(batch);
    if (status == 2) throw Interrupted();
    if (status != 0) throw std::runtime_error("llama_decode failed (status " + std::to_string(status) + ")");
}

// Prefills every sequence with its prompt (only its last token outputs) and chooses its first
// token from that output, then decodes n_generate - 1 steps of one token per sequence together;
// choose(s, i) picks sequence s's next token from output i of the last batch. Timed like
// led_cpp's decode: the window starts after the prompts and holds n_generate - 1 decodes for
// n_generate tokens per sequence.
RawDecodeTimings run(Model & model, llama_context * context, const std::vector<std::vector<llama_token>> & prompts,
                     int n_generate, const std::function<llama_token(int, int)> & choose) {
    const int n_sequences = static_cast<int>(prompts.size());
    const int n_batch = std::min(model.options().n_batch, model.options().n_ctx);
    RawDecodeTimings timings;
    std::vector<llama_token> last(n_sequences);
    auto start = clock::now();
    for (int s = 0; s < n_sequences; ++s) {
        const auto & prompt = prompts[s];
        const int n_prompt = static_cast<int>(prompt.size());
        for (int done = 0; done < n_prompt; done += n_batch) {
            const int count = std::min(n_batch, n_prompt - done);
            std::vector<llama_token> tokens(prompt.begin() + done, prompt.begin() + done + count);
            std::vector<llama_pos> positions(count);
            for (int i = 0; i < count; ++i) positions[i] = done + i;
            std::vector<int8_t> outputs(count, 0);
            outputs.back() = done + count == n_prompt;
            decode(context, tokens, positions, std::vector<llama_seq_id>(count, s), outputs);
            if (done + count == n_prompt) last[s] = choose(s, count - 1);
        }
        timings.prompt_tokens += n_prompt;
    }
    timings.prompt_seconds = seconds_since(start);

    start = clock::now();
    std::vector<llama_seq_id> sequences(n_sequences);
    for (int s = 0; s < n_sequences; ++s) sequences[s] = s;
    std::vector<llama_pos> positions(n_sequences);
    for (int step = 1; step < n_generate; ++step) {
        for (int s = 0; s < n_sequences; ++s) positions[s] = static_cast<llama_pos>(prompts[s].size()) + step - 1;
        decode(context, last, positions, sequences, std::vector<int8_t>(n_sequences, 1));
        for (int s = 0; s < n_sequences; ++s) last[s] = choose(s, s);
    }
    timings.decode_seconds = seconds_since(start);
    timings.decode_tokens = n_generate * n_sequences;
    return timings;
}

}  // namespace

RawDecodeTimings raw_decode(Model & model, int n_prompt, int n_generate, int n_sequences) {
    if (n_prompt < 1 || n_generate < 1 || n_sequences < 1) {
        throw std::invalid_argument("n_prompt, n_generate and n_sequences must be >= 1");
    }
    Model::Lease lease(model);
    llama_context * context = model.context(n_sequences, n_prompt + n_generate + 1);
    model.detach_samplers();
    const int n_vocab = model.n_vocab();
    std::vector<std::vector<llama_token>> prompts(n_sequences, std::vector<llama_token>(n_prompt));
    for (int s = 0; s < n_sequences; ++s) {
        for (int i = 0; i < n_prompt; ++i) prompts[s][i] = (i + 7 * s) % n_vocab;
    }
    RawDecodeTimings timings = run(model, context, prompts, n_generate, [&](int, int output) {
        const float * logits = llama_get_logits_ith(context, output);
        return static_cast<llama_token>(std::max_element(logits, logits + n_vocab) - logits);
    });
    llama_memory_clear(llama_get_memory(context), true);
    return timings;
}

ChainDecodeResult chain_decode(Model & model, const std::vector<llama_token> & prompt, int n_generate, int n_sequences,
                               const ChainSettings & settings) {
    if (prompt.empty() || n_generate < 1 || n_sequences < 1) {
        throw std::invalid_argument("the prompt must not be empty; n_generate and n_sequences must be >= 1");
    }
    if (settings.top_k < 1 || !(settings.top_p > 0.0f && settings.top_p <= 1.0f) || !(settings.temperature > 0.0f)) {
        throw std::invalid_argument("top_k must be >= 1, top_p in (0, 1] and temperature > 0");
    }
    Model::Lease lease(model);
    llama_context * context = model.context(n_sequences, static_cast<int>(prompt.size()) + n_generate + 1);
    model.detach_samplers();
    std::vector<llama_sampler *> chains;
    for (int s = 0; s < n_sequences; ++s) {
        llama_sampler * chain = llama_sampler_chain_init(llama_sampler_chain_default_params());
        llama_sampler_chain_add(chain, llama_sampler_init_top_k(settings.top_k));
        llama_sampler_chain_add(chain, llama_sampler_init_top_p(settings.top_p, 1));
        llama_sampler_chain_add(chain, llama_sampler_init_temp(settings.temperature));
        llama_sampler_chain_add(chain, llama_sampler_init_dist(settings.seed + static_cast<uint32_t>(s)));
        chains.push_back(chain);
    }
    const auto release = [&] {
        for (int s = 0; s < n_sequences; ++s) {
            if (settings.backend) llama_set_sampler(context, s, nullptr);
            llama_sampler_free(chains[s]);
        }
        llama_memory_clear(llama_get_memory(context), true);
    };
    ChainDecodeResult result;
    result.tokens.assign(n_sequences, {});
    try {
        if (settings.backend) {
            for (int s = 0; s < n_sequences; ++s) {
                if (!llama_set_sampler(context, s, chains[s])) {
                    throw std::runtime_error("llama.cpp refused the backend sampler chain on this backend");
                }
            }
        }
        std::vector<std::vector<llama_token>> prompts(n_sequences, prompt);
        result.timings = run(model, context, prompts, n_generate, [&](int s, int output) {
            const llama_token token = llama_sampler_sample(chains[s], context, output);
            result.tokens[s].push_back(token);
            return token;
        });
    } catch (...) {
        release();
        throw;
    }
    release();
    return result;
}

}  // namespace led
