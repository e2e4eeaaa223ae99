// The llama.cpp sampler that ties LED (and led_cpp's standard sampling) into the model graph
// through llama.cpp's backend-sampling interface. Per output row it adds the candidate ops and,
// for LED, the capture of the intermediate layer outputs; the tokens are decided on the host from
// O(k) numbers. The depths are projected either in the model graph at every step (on GPUs, where
// that costs little) or by the depth projector's graph only for steps that explore (on the CPU).
#pragma once

#include "candidate_graph.h"
#include "led_graph.h"

#include <llama.h>

#include <memory>
#include <string>
#include <vector>

namespace led {

// Where LED projects the earlier depths through the output head.
enum class Projection {
    automatic,   // every_step when the model's output lives on a GPU, else on_explore
    every_step,  // in the model graph, for every output row; the depths come back with the candidates
    on_explore,  // captured rows go through a second graph, only for the sequences that explore
};

// What the model graph adds for the rows of one decode. Requests with different settings share
// a graph: it serves the union of what its rows need (the most candidates any row takes, every
// layer any row reads), and what differs per row is set per slot (set_slot) and read as graph
// inputs each step, so a batch of one setting runs exactly the ops it ran alone.
struct GraphSettings {
    int k = 8;                         // candidates taken from the final layer (the most any row needs)
    float inverse_temperature = 1.0f;  // every row's, unless per_row_temperature
    bool per_row_temperature = false;  // rows differ: each row's logits are scaled by its slot's value
    CaptureSpec capture;               // empty layers: standard sampling, nothing captured
    Projection projection = Projection::on_explore;
    bool ln = false;  // the final norm on earlier depths (every_step only), unless per_row_ln
    bool per_row_ln = false;
    int64_t n_embd = 0;
    int n_slots = 1;
    int n_threads = 1;

    bool operator==(const GraphSettings & other) const {
        return k == other.k && inverse_temperature == other.inverse_temperature &&
               per_row_temperature == other.per_row_temperature && capture.layers == other.capture.layers &&
               capture.n_layer == other.capture.n_layer && projection == other.projection && ln == other.ln &&
               per_row_ln == other.per_row_ln && n_embd == other.n_embd && n_slots == other.n_slots &&
               n_threads == other.n_threads;
    }
};

// State shared by the samplers of one context: the head found in the graph and the projector.
class GraphState {
public:
    explicit GraphState(const GraphSettings & settings)
        : settings_(settings),
          slot_inverse_temperature_(settings.n_slots, settings.inverse_temperature),
          slot_ln_(settings.n_slots, settings.ln),
          slot_row_(settings.n_slots, -1) {}
    const GraphSettings & settings() const { return settings_; }
    // What the row of a slot's sequence needs where rows differ (per_row_temperature, per_row_ln).
    void set_slot(int slot, float inverse_temperature, bool ln);
    // on_explore: the candidates' probabilities at the captured depths of each query (see
    // DepthProjector::explore).
    std::vector<std::vector<float>> explore(int64_t n_vocab, const ExploreSettings & settings,
                                            const std::vector<ExploreQuery> & queries);
    // Analyses: the captured rows of a slot through the head (see DepthProjector).
    std::vector<float> captured_logits(int64_t n_vocab, int slot, bool ln, bool final_row_normalised);
    DepthProjector::LayerStatistics layer_statistics(int64_t n_vocab, int slot, int top_k);
    // True when the model graph returns every step's depths: per row, after the k final-layer
    // probabilities, come the k logits and the candidates' probabilities at each captured layer
    // [layers][k] (a row reads the layers of its own depths).
    bool every_step() const { return every_step_; }
    // every_step: whether the last graph read the head weight once for the model and the depths.
    bool shared_head_product() const { return shared_head_product_; }
    // Why LED cannot run on this model or backend, or "".
    const std::string & error() const { return error_; }

    bool initialise(ggml_backend_buffer_type_t buffer_type);
    // Per graph build: forget the ops of the previous graph.
    void reset();
    // Adds the ops for all output rows on the first call of a graph build; every sampler then
    // takes its row's views (and copies its row's captured layers to its slot).
    void apply(ggml_context * ctx, ggml_cgraph * graph, llama_sampler_data * data, int slot);
    // Per step, for each active slot: writes its row's per-row inputs.
    void set_input(int slot);

private:
    // every_step: the depths' logits [n_vocab, depths * rows] of the stacked rows (graph ==
    // nullptr: llama.cpp's sizing probe, which gets a stand-in).
    ggml_tensor * project_depths(ggml_context * ctx, ggml_cgraph * graph, int64_t n_vocab);

    struct Batch {
        ggml_tensor * logits = nullptr;  // the padded logits matrix the ops were built on
        Candidates candidates{};
        ggml_tensor * stacked = nullptr;               // captured layers of every output row
        ggml_tensor * values = nullptr;                // per row: what the sampler returns after the ids
        ggml_tensor * inverse_temperatures = nullptr;  // per_row_temperature: F32 [1, 1, rows]
        ggml_tensor * ln_rows = nullptr;  // per_row_ln: I32 [depths * rows], which projection each column takes
    };

    GraphSettings settings_;
    OutputHead head_;
    std::unique_ptr<DepthProjector> projector_;
    ggml_backend_buffer_type_t buffer_type_ = nullptr;  // the output device's, from backend_init
    std::unique_ptr<TieKeys> tie_keys_;                 // made at the first graph of this vocabulary
    std::string error_;
    bool every_step_ = false;
    bool support_checked_ = false;
    bool fallback_ = false;  // automatic: the device lacks an op, so on_explore
    bool shared_head_product_ = false;
    Batch batch_;
    std::vector<float> slot_inverse_temperature_;
    std::vector<char> slot_ln_;
    std::vector<int64_t> slot_row_;  // the output row of each slot in the last graph built
};

// A sampler chain holding one LED sampler for one sequence slot; free with llama_sampler_free.
llama_sampler * make_graph_sampler(GraphState * state, int slot);

}  // namespace led
