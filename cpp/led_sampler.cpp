#include "led_sampler.h"

namespace led {

namespace {

struct SlotSampler {
    GraphState * state;
    int slot;
};

const char * sampler_name(const llama_sampler *) { return "led"; }

// The host never asks this sampler to choose from full logits: tokens are decided from the
// candidates the graph returns. Should llama.cpp fall back to this path, keep its choice inert.
void sampler_apply(llama_sampler *, llama_token_data_array * candidates) { candidates->selected = 0; }

void sampler_free(llama_sampler * sampler) { delete static_cast<SlotSampler *>(sampler->ctx); }

bool sampler_backend_init(llama_sampler * sampler, ggml_backend_buffer_type_t buffer_type, uint32_t) {
    return static_cast<SlotSampler *>(sampler->ctx)->state->initialise(buffer_type);
}

void sampler_backend_apply(llama_sampler * sampler, ggml_context * ctx, ggml_cgraph * graph, llama_sampler_data * data) {
    auto * slot = static_cast<SlotSampler *>(sampler->ctx);
    slot->state->apply(ctx, graph, data, slot->slot);
}

llama_sampler_i sampler_interface = {
    /* .name              = */ sampler_name,
    /* .accept            = */ nullptr,
    /* .apply             = */ sampler_apply,
    /* .reset             = */ nullptr,
    /* .clone             = */ nullptr,
    /* .free              = */ sampler_free,
    /* .backend_init      = */ sampler_backend_init,
    /* .backend_accept    = */ nullptr,
    /* .backend_apply     = */ sampler_backend_apply,
    /* .backend_set_input = */ nullptr,
    /* .backend_reset     = */ nullptr,
    /* .copy_state        = */ nullptr,
};

}  // namespace

bool GraphState::initialise(ggml_backend_buffer_type_t buffer_type) {
    if (projector_ != nullptr || !error_.empty() || settings_.capture.layers.empty()) {
        return error_.empty();
    }
    try {
        projector_ = std::make_unique<DepthProjector>(buffer_type, settings_.n_embd,
                                                      static_cast<int>(settings_.capture.layers.size()),
                                                      settings_.n_slots, settings_.n_threads);
    } catch (const std::exception & failure) {
        error_ = failure.what();
    }
    return error_.empty();
}

void GraphState::apply(ggml_context * ctx, ggml_cgraph * graph, llama_sampler_data * data, int slot) {
    if (!error_.empty()) {
        return;
    }
    ggml_tensor * logits = data->logits;
    // llama.cpp hands each sampler a view of its row of the (padded) logits matrix.
    const int64_t row = logits->view_src != nullptr ? static_cast<int64_t>(logits->view_offs / logits->view_src->nb[1]) : 0;
    Candidates candidates = build_candidates(ctx, logits, settings_.k, settings_.inverse_temperature);
    // Returned to the host: the k probabilities, then the k logits.
    ggml_tensor * probabilities = ggml_concat(ctx, candidates.probabilities, candidates.logits, 0);
    if (!settings_.capture.layers.empty()) {
        if (projector_ == nullptr) {
            error_ = "LED's sampler was not initialised by llama.cpp's backend sampling";
            return;
        }
        // A logits tensor that is not a view of the model's logits is llama.cpp's sizing probe.
        const bool probe = logits->view_src == nullptr;
        if (!probe && !head_.found()) {
            error_ = head_.discover(graph, settings_.capture.n_layer);
            if (!error_.empty()) {
                return;
            }
        }
        ggml_tensor * dependency = nullptr;
        error_ = capture_rows(ctx, probe ? nullptr : graph, settings_.capture, row, projector_->capture(), slot, &dependency);
        if (!error_.empty()) {
            return;
        }
        // Host reads the first 2k values; the tail only keeps the captures in the graph.
        probabilities = ggml_concat(ctx, probabilities, dependency, 0);
    }
    data->candidates = candidates.ids;
    data->probs = probabilities;
    data->logits = nullptr;
}

llama_sampler * make_graph_sampler(GraphState * state, int slot) {
    llama_sampler * chain = llama_sampler_chain_init(llama_sampler_chain_default_params());
    llama_sampler_chain_add(chain, llama_sampler_init(&sampler_interface, new SlotSampler{state, slot}));
    return chain;
}

}  // namespace led
