#include "depth_probe.h"

#include "decode_loop.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace led {

std::vector<float> depth_logits(Model & model, const std::vector<llama_token> & tokens, int d, bool ln,
                                LayerCounting counting) {
    const int n_layer = model.n_layer();
    if (d < 1 || d > n_layer) throw std::invalid_argument("d must lie in [1, n_layer]");
    if (tokens.empty()) throw std::invalid_argument("depth_logits needs at least one token");
    if (static_cast<int>(tokens.size()) > model.options().n_ctx) {
        throw std::invalid_argument(
            "the tokens do not fit in the context (n_ctx=" + std::to_string(model.options().n_ctx) + ")");
    }
    for (llama_token token : tokens) {
        if (token < 0 || token >= model.n_vocab()) throw std::invalid_argument("token id outside the vocabulary");
    }
    // The final layer's output first, then the depths LED reads.
    GraphSettings settings;
    settings.k = 1;
    settings.n_slots = 1;
    settings.n_threads = model.options().n_threads;
    settings.n_embd = model.n_embd();
    settings.capture.n_layer = n_layer;
    settings.capture.layers.push_back(n_layer - 1);
    for (int il : depth_layers(n_layer, d, counting)) settings.capture.layers.push_back(il);
    Model::Lease lease(model);
    llama_context * context = model.context(1, static_cast<int32_t>(tokens.size()) + 1);
    GraphState & state = model.attach_samplers(settings);
    struct Clear {
        llama_context * context;
        ~Clear() { llama_memory_clear(llama_get_memory(context), true); }
    } clear{context};
    const size_t n_batch = std::min<size_t>(model.options().n_batch, model.options().n_ctx);
    for (size_t done = 0; done < tokens.size();) {
        const size_t count = std::min(n_batch, tokens.size() - done);
        const int32_t status = decode_prompt_chunk(context, tokens, done, count, 0);
        if (!state.error().empty())
            throw std::runtime_error("LED cannot run on this " + model.architecture() + " model: " + state.error());
        if (status == 2) throw Interrupted();
        if (status != 0) throw std::runtime_error("llama_decode failed (status " + std::to_string(status) + ")");
        done += count;
    }
    return state.captured_logits(model.n_vocab(), 0, ln, true);
}

}  // namespace led
