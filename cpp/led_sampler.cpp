#include "led_sampler.h"

#include <algorithm>
#include <stdexcept>

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

void sampler_backend_apply(llama_sampler * sampler, ggml_context * ctx, ggml_cgraph * graph,
                           llama_sampler_data * data) {
    auto * slot = static_cast<SlotSampler *>(sampler->ctx);
    slot->state->apply(ctx, graph, data, slot->slot);
}

void sampler_backend_set_input(llama_sampler * sampler) {
    auto * slot = static_cast<SlotSampler *>(sampler->ctx);
    slot->state->set_input(slot->slot);
}

void sampler_backend_reset(llama_sampler * sampler) { static_cast<SlotSampler *>(sampler->ctx)->state->reset(); }

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
    /* .backend_set_input = */ sampler_backend_set_input,
    /* .backend_reset     = */ sampler_backend_reset,
    /* .copy_state        = */ nullptr,
};

// every_step: per row, the candidates' values [2k, rows] followed by their probabilities at
// depths 1..d-1 [(d-1)*k]; the host forms the posteriors and decides (led::explore), as it does
// with the on_explore projection. depth_logits: [n_vocab, (d-1) * rows].
ggml_tensor * append_depth_probabilities(ggml_context * ctx, const Candidates & candidates, ggml_tensor * depth_logits,
                                         float inverse_temperature, ggml_tensor * row_scales = nullptr) {
    ggml_tensor * values = candidates.values;
    const int64_t k = candidates.ids->ne[0];
    const int64_t rows = values->ne[1];
    const int64_t depths = depth_logits->ne[1] / rows;
    ggml_tensor * depth_probabilities =
        build_depth_probabilities(ctx, depth_logits, candidates.ids, depths, inverse_temperature, row_scales);
    ggml_tensor * result = ggml_concat(ctx, values, ggml_reshape_2d(ctx, depth_probabilities, k * depths, rows), 0);
    ggml_set_name(result, "led_step_values");
    return result;
}

// Whether the device runs every op LED adds to the model graph for the every-step projection
// (the model's own head ops aside); else llama.cpp would move them, and the logits, to the CPU.
std::string unsupported_every_step_op(ggml_backend_dev_t device, const GraphSettings & settings) {
    constexpr int64_t n_vocab = 4096;
    constexpr int64_t rows = 2;
    ggml_init_params params = {256 * ggml_tensor_overhead() + ggml_graph_overhead_custom(256, false), nullptr, true};
    ggml_context * ctx = ggml_init(params);
    ggml_cgraph * graph = ggml_new_graph_custom(ctx, 256, false);
    const Candidates candidates =
        build_candidates(ctx, ggml_new_tensor_2d(ctx, GGML_TYPE_F32, n_vocab, rows),
                         static_cast<int>(std::min<int64_t>(settings.k, n_vocab)), settings.inverse_temperature);
    const int64_t depths = static_cast<int64_t>(settings.capture.layers.size());
    ggml_tensor * depth_logits = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, n_vocab, depths * rows);
    ggml_build_forward_expand(graph,
                              append_depth_probabilities(ctx, candidates, depth_logits, settings.inverse_temperature));
    std::string unsupported;
    for (int i = 0; i < ggml_graph_n_nodes(graph) && unsupported.empty(); ++i) {
        ggml_tensor * node = ggml_graph_node(graph, i);
        if (!ggml_backend_dev_supports_op(device, node)) {
            unsupported = ggml_op_desc(node);
        }
    }
    ggml_free(ctx);
    return unsupported;
}

// The first n_real rows of the logits matrix llama.cpp hands the samplers. That matrix is the
// model's logits padded with one dummy row (ggml_pad), a copy of every logit at every step (1 MB
// a step for a 262k vocabulary); reading the pad's source instead leaves the copy out of the
// graph. The rows hold the same values, so the candidates are the same.
ggml_tensor * model_logits(ggml_context * ctx, ggml_tensor * matrix, int64_t n_real) {
    ggml_tensor * source = matrix->src[0];
    if (matrix->op == GGML_OP_PAD && source != nullptr && source->type == GGML_TYPE_F32 &&
        source->ne[0] == matrix->ne[0] && source->ne[1] == n_real && ggml_nelements(source) == source->ne[0] * n_real &&
        ggml_is_contiguous(source)) {
        return source;
    }
    return ggml_view_2d(ctx, matrix, matrix->ne[0], n_real, matrix->nb[1], 0);
}

}  // namespace

ggml_tensor * GraphState::project_depths(ggml_context * ctx, ggml_cgraph * graph, int64_t n_vocab) {
    ggml_tensor * stacked = batch_.stacked;  // [n_embd, depths, rows]
    const int64_t m = stacked->ne[1] * stacked->ne[2];
    if (graph == nullptr) {
        return ggml_new_tensor_2d(ctx, GGML_TYPE_F32, n_vocab, m);  // the sizing probe's stand-in
    }
    ggml_tensor * hidden = ggml_reshape_2d(ctx, stacked, stacked->ne[0], m);
    if (settings_.per_row_ln) {
        // Rows differ: each column takes its row's copy, raw or normalised (get_rows copies exactly).
        batch_.ln_rows = ggml_new_tensor_1d(ctx, GGML_TYPE_I32, m);
        ggml_set_name(batch_.ln_rows, "led_ln_rows");
        ggml_set_input(batch_.ln_rows);
        ggml_tensor * both = ggml_concat(ctx, hidden, head_.normalise(ctx, hidden), 1);
        hidden = ggml_get_rows(ctx, both, batch_.ln_rows);
    } else if (settings_.ln) {
        hidden = head_.normalise(ctx, hidden);
    }
    bool shared = false;
    ggml_tensor * logits = head_.project_with_model(ctx, graph, hidden, &shared);
    shared_head_product_ = shared;
    return logits != nullptr ? logits : head_.project(ctx, hidden);
}

bool GraphState::initialise(ggml_backend_buffer_type_t buffer_type) {
    if (!error_.empty()) {
        return false;
    }
    buffer_type_ = buffer_type;
    // On a GPU, d-1 more columns in the head's matrix product cost little (reading the weight is
    // the cost), less than a second graph at every exploring step; on the CPU they cost d-1 head
    // passes of arithmetic, so there only exploring steps pay.
    ggml_backend_dev_t device = ggml_backend_buft_get_device(buffer_type);
    const bool on_gpu = device != nullptr && ggml_backend_dev_type(device) != GGML_BACKEND_DEVICE_TYPE_CPU;
    every_step_ = !settings_.capture.layers.empty() && (settings_.projection == Projection::every_step ||
                                                        (settings_.projection == Projection::automatic && on_gpu));
    if (every_step_ && on_gpu && !support_checked_) {
        support_checked_ = true;
        const std::string op = unsupported_every_step_op(device, settings_);
        if (!op.empty()) {
            if (settings_.projection == Projection::every_step) {
                error_ = std::string("the ") + ggml_backend_dev_name(device) + " backend cannot run " + op +
                         " for LED's every-step projection; load the model with led_projection='on_explore'";
                return false;
            }
            fallback_ = true;  // the second graph says which op it misses, should a step explore
        }
    }
    every_step_ = every_step_ && !fallback_;
    if (projector_ != nullptr || settings_.capture.layers.empty() || every_step_) {
        return true;
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

void GraphState::set_slot(int slot, float inverse_temperature, bool ln) {
    if (slot < 0 || slot >= settings_.n_slots)
        throw std::logic_error("LED's sampler has no slot " + std::to_string(slot));
    slot_inverse_temperature_[slot] = inverse_temperature;
    slot_ln_[slot] = ln;
}

void GraphState::set_input(int slot) {
    const int64_t row = slot >= 0 && slot < settings_.n_slots ? slot_row_[slot] : -1;
    if (row < 0 || !error_.empty()) return;
    if (batch_.inverse_temperatures != nullptr && row < batch_.inverse_temperatures->ne[2]) {
        ggml_backend_tensor_set(batch_.inverse_temperatures, &slot_inverse_temperature_[slot], row * sizeof(float),
                                sizeof(float));
    }
    if (batch_.ln_rows != nullptr && batch_.stacked != nullptr) {
        const int64_t depths = batch_.stacked->ne[1];
        const int64_t m = batch_.ln_rows->ne[0];
        if ((row + 1) * depths > m) return;
        std::vector<int32_t> columns(depths);
        for (int64_t j = 0; j < depths; ++j) {
            columns[j] = static_cast<int32_t>(row * depths + j + (slot_ln_[slot] ? m : 0));
        }
        ggml_backend_tensor_set(batch_.ln_rows, columns.data(), row * depths * sizeof(int32_t),
                                depths * sizeof(int32_t));
    }
}

std::vector<std::vector<float>> GraphState::explore(int64_t n_vocab, const ExploreSettings & settings,
                                                    const std::vector<ExploreQuery> & queries) {
    if (projector_ == nullptr) throw std::logic_error("LED's depth projector was not set up");
    return projector_->explore(head_, n_vocab, settings, queries);
}

std::vector<float> GraphState::captured_logits(int64_t n_vocab, int slot, bool ln, bool final_row_normalised) {
    if (projector_ == nullptr) throw std::logic_error("LED's depth projector was not set up");
    return projector_->logits(head_, n_vocab, slot, ln, final_row_normalised);
}

DepthProjector::LayerStatistics GraphState::layer_statistics(int64_t n_vocab, int slot, int top_k) {
    if (projector_ == nullptr) throw std::logic_error("LED's depth projector was not set up");
    return projector_->layer_statistics(head_, n_vocab, slot, top_k);
}

void GraphState::apply(ggml_context * ctx, ggml_cgraph * graph, llama_sampler_data * data, int slot) {
    if (!error_.empty()) {
        return;
    }
    ggml_tensor * logits = data->logits;
    const bool capturing = !settings_.capture.layers.empty();
    if (capturing && !every_step_ && projector_ == nullptr) {
        error_ = "LED's sampler was not initialised by llama.cpp's backend sampling";
        return;
    }
    // llama.cpp hands each sampler a view of its row of the padded logits matrix; a bare tensor
    // is its sizing probe, which gets the same ops on that one row.
    ggml_tensor * matrix = logits->view_src != nullptr ? logits->view_src : logits;
    int64_t row = logits->view_src != nullptr ? static_cast<int64_t>(logits->view_offs / matrix->nb[1]) : 0;
    const int64_t n_rows = ggml_nelements(matrix) / matrix->ne[0];
    // The probe's row may be narrower than the vocabulary (llama.cpp's op-support probe takes
    // 128k values); it gets as many candidates as fit.
    const int k = static_cast<int>(std::min<int64_t>(settings_.k, matrix->ne[0]));
    if (batch_.logits != matrix) {
        batch_ = Batch{};
        batch_.logits = matrix;
        // Skip the padding row llama.cpp adds (it is only there to keep one-output graphs static).
        const int64_t n_real = logits->view_src != nullptr && n_rows > 1 ? n_rows - 1 : n_rows;
        if (settings_.per_row_temperature) {
            batch_.inverse_temperatures = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, 1, 1, n_real);
            ggml_set_name(batch_.inverse_temperatures, "led_inverse_temperatures");
            ggml_set_input(batch_.inverse_temperatures);
        }
        ggml_tensor * tie_keys = nullptr;  // llama.cpp's probes form them in the graph instead
        if (logits->view_src != nullptr && buffer_type_ != nullptr) {
            try {
                if (tie_keys_ == nullptr || tie_keys_->n_vocab() != matrix->ne[0]) {
                    tie_keys_ = std::make_unique<TieKeys>(buffer_type_, matrix->ne[0]);
                }
            } catch (const std::exception & failure) {
                error_ = failure.what();
                return;
            }
            tie_keys = tie_keys_->tensor();
        }
        batch_.candidates = build_candidates(ctx, model_logits(ctx, matrix, n_real), k, settings_.inverse_temperature,
                                             batch_.inverse_temperatures, tie_keys);
        batch_.values = batch_.candidates.values;
        if (capturing) {
            const bool probe = logits->view_src == nullptr;
            if (!probe && !head_.found()) {
                error_ = head_.discover(graph, settings_.capture.n_layer);
                if (!error_.empty()) return;
            }
            // The padded matrix has one row more than the model's outputs.
            const int64_t n_outputs = probe ? n_rows : n_rows - 1;
            error_ = stack_layer_rows(ctx, probe ? nullptr : graph, head_, settings_.capture, settings_.n_embd,
                                      n_outputs, &batch_.stacked);
            if (!error_.empty()) return;
            if (every_step_ && n_outputs > 0) {
                batch_.values = append_depth_probabilities(ctx, batch_.candidates,
                                                           project_depths(ctx, probe ? nullptr : graph, matrix->ne[0]),
                                                           settings_.inverse_temperature, batch_.inverse_temperatures);
            }
        }
    }
    if (slot >= 0 && slot < settings_.n_slots) slot_row_[slot] = logits->view_src != nullptr ? row : -1;
    const Candidates & candidates = batch_.candidates;
    if (row >= candidates.ids->ne[1]) {
        row = 0;  // an inactive sampler on a graph with no outputs: never computed
    }
    // Each output is at most n_vocab values per row, as llama.cpp's row buffers require (k, and
    // d*k with the every-step depths: the decode loop checks both).
    data->candidates = ggml_view_1d(ctx, candidates.ids, k, row * candidates.ids->nb[1]);
    ggml_tensor * values = batch_.values;
    data->probs = ggml_view_1d(ctx, values, k, row * values->nb[1]);
    data->logits = ggml_view_1d(ctx, values, values->ne[0] - k, row * values->nb[1] + k * sizeof(float));
    // The capture rides along as a one-value output (the host never reads it), so only active
    // rows are copied: llama.cpp applies inactive samplers to row 0 without computing them.
    data->sampled =
        capturing && !every_step_ && row < batch_.stacked->ne[2]
            ? ggml_cast(ctx, capture_row(ctx, batch_.stacked, row, projector_->capture(), slot), GGML_TYPE_I32)
            : nullptr;
}

llama_sampler * make_graph_sampler(GraphState * state, int slot) {
    llama_sampler * chain = llama_sampler_chain_init(llama_sampler_chain_default_params());
    llama_sampler_chain_add(chain, llama_sampler_init(&sampler_interface, new SlotSampler{state, slot}));
    return chain;
}

}  // namespace led
