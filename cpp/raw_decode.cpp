#include "raw_decode.h"

#include "decode_loop.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace led {

RawDecodeTimings raw_decode(Model & model, int n_prompt, int n_generate, int n_sequences) {
    if (n_prompt < 1 || n_generate < 1 || n_sequences < 1) {
        throw std::invalid_argument("n_prompt, n_generate and n_sequences must be >= 1");
    }
    Model::Lease lease(model);
    llama_context * context = model.context(n_sequences, n_prompt + n_generate + 1);
    const int n_vocab = model.n_vocab();
    const int n_batch = std::min(model.options().n_batch, model.options().n_ctx);
    using clock = std::chrono::steady_clock;
    RawDecodeTimings timings;

    const auto decode = [&](const std::vector<llama_token> & tokens, const std::vector<llama_pos> & positions,
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
    };

    std::vector<llama_token> last(n_sequences);
    auto start = clock::now();
    for (int s = 0; s < n_sequences; ++s) {
        for (int done = 0; done < n_prompt; done += n_batch) {
            const int count = std::min(n_batch, n_prompt - done);
            std::vector<llama_token> tokens(count);
            std::vector<llama_pos> positions(count);
            std::vector<llama_seq_id> sequences(count, s);
            std::vector<int8_t> outputs(count, 0);
            for (int i = 0; i < count; ++i) {
                tokens[i] = (done + i + 7 * s) % n_vocab;
                positions[i] = done + i;
            }
            outputs.back() = done + count == n_prompt;
            decode(tokens, positions, sequences, outputs);
        }
        last[s] = s % n_vocab;
    }
    timings.prompt_seconds = std::chrono::duration<double>(clock::now() - start).count();
    timings.prompt_tokens = n_prompt * n_sequences;

    start = clock::now();
    for (int step = 0; step < n_generate; ++step) {
        std::vector<llama_pos> positions(n_sequences, n_prompt + step);
        std::vector<llama_seq_id> sequences(n_sequences);
        for (int s = 0; s < n_sequences; ++s) sequences[s] = s;
        decode(last, positions, sequences, std::vector<int8_t>(n_sequences, 1));
        for (int s = 0; s < n_sequences; ++s) {
            const float * logits = llama_get_logits_ith(context, s);
            last[s] = static_cast<llama_token>(std::max_element(logits, logits + n_vocab) - logits);
        }
    }
    timings.decode_seconds = std::chrono::duration<double>(clock::now() - start).count();
    timings.decode_tokens = n_generate * n_sequences;
    llama_memory_clear(llama_get_memory(context), true);
    return timings;
}

}  // namespace led
