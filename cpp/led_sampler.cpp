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

void sampler_backend_reset(llama_sampler * sampler) {
    static_cast<SlotSampler *>(sampler->ctx)->state->reset();
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
    /* .backend_reset     = */ sampler_backend_reset,
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

void GraphState::reset() { batch_ = Batch{}; }

void GraphState::apply(ggml_context * ctx, ggml_cgraph * graph, llama_sampler_data * data, int slot) {
    if (!error_.empty()) {
        return;
    }
    ggml_tensor * logits = data->logits;
    const int k = settings_.k;
    const bool capturing = !settings_.capture.layers.empty();
    if (capturing && projector_ == nullptr) {
        error_ = "LED's sampler was not initialised by llama.cpp's backend sampling";
        return;
    }
    // llama.cpp hands each sampler a view of its row of the padded logits matrix; a bare tensor
    // is its sizing probe, which gets the same ops on that one row.
    ggml_tensor * matrix = logits->view_src != nullptr ? logits->view_src : logits;
    int64_t row = logits->view_src != nullptr ? static_cast<int64_t>(logits->view_offs / matrix->nb[1]) : 0;
    const int64_t n_rows = ggml_nelements(matrix) / matrix->ne[0];
    if (batch_.logits != matrix) {
        batch_ = Batch{};
        batch_.logits = matrix;
        // Skip the padding row llama.cpp adds (it is only there to keep one-output graphs static).
        const int64_t n_real = logits->view_src != nullptr && n_rows > 1 ? n_rows - 1 : n_rows;
        batch_.candidates = build_candidates(ctx, ggml_view_2d(ctx, matrix, matrix->ne[0], n_real, matrix->nb[1], 0), k,
                                             settings_.inverse_temperature);
        if (capturing) {
            const bool probe = logits->view_src == nullptr;
            if (!probe && !head_.found()) {
                error_ = head_.discover(graph, settings_.capture.n_layer);
                if (!error_.empty()) return;
            }
            // The padded matrix has one row more than the model's outputs.
            const int64_t n_outputs = probe ? n_rows : n_rows - 1;
            error_ = stack_layer_rows(ctx, probe ? nullptr : graph, settings_.capture, settings_.n_embd, n_outputs,
                                      &batch_.stacked);
            if (!error_.empty()) return;
        }
    }
    const Candidates & candidates = batch_.candidates;
    if (row >= candidates.ids->ne[1]) {
        row = 0;  // an inactive sampler on a graph with no outputs: never computed
    }
    // Each output is at most k <= n_vocab values per row, as llama.cpp's row buffers require.
    data->candidates = ggml_view_1d(ctx, candidates.ids, k, row * candidates.ids->nb[1]);
    data->probs = ggml_view_1d(ctx, candidates.values, k, row * candidates.values->nb[1]);
    data->logits = ggml_view_1d(ctx, candidates.values, k, row * candidates.values->nb[1] + k * sizeof(float));
    // The capture rides along as a one-value output (the host never reads it), so only active
    // rows are copied: llama.cpp applies inactive samplers to row 0 without computing them.
    data->sampled = capturing && row < batch_.stacked->ne[2]
                        ? ggml_cast(ctx, capture_row(ctx, batch_.stacked, row, projector_->capture(), slot), GGML_TYPE_I32)
                        : nullptr;
}

llama_sampler * make_graph_sampler(GraphState * state, int slot) {
    llama_sampler * chain = llama_sampler_chain_init(llama_sampler_chain_default_params());
    llama_sampler_chain_add(chain, llama_sampler_init(&sampler_interface, new SlotSampler{state, slot}));
    return chain;
}

}  // namespace led
