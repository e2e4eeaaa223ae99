// LED's ops inside llama.cpp's compute graph: finding the model's output head in a built graph,
// the depths' projection and posteriors added to it (every step), the capture of intermediate
// layer outputs, and the depth projection graph that runs on the model's backend only for steps
// that explore (on_explore). The final layer's candidates are candidate_graph.h.
#pragma once

#include <ggml-alloc.h>
#include <ggml-backend.h>
#include <ggml.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

namespace led {

enum class LayerCounting { paper, reference };

// The layer whose output (the residual stream leaving layer il) is depth j >= 1; -1 means the
// embeddings entering layer 0.
int depth_layer(int n_layer, int depth, LayerCounting counting);

// The layers of depths 1..d-1 in order; throws std::invalid_argument when d does not fit the model.
std::vector<int> depth_layers(int n_layer, int d, LayerCounting counting);

// The model's output head as the graph applies it: the final norm, the head weight (the same
// tensor the model uses: no copy), and any transform after the head (logit scale, soft-cap).
class OutputHead {
public:
    // Reads the head off a built model graph, walking back from the logits to the last layer's
    // output over the ops that transform the hidden state (replayed) and those that only select
    // or regroup rows (the out_ids selection, reshapes: stepped over, wherever the graph places
    // them). Returns "" or why it cannot be replayed.
    std::string discover(ggml_cgraph * graph, int n_layer);
    bool found() const { return weight_ != nullptr; }
    // The output of layer il (-1: the embeddings) in `graph`, or nullptr. The last layer's is
    // where discover() ended; the others are named l_out-<il> where the last one is, else they
    // are the residual stream entering layer il+1's attention norm.
    ggml_tensor * layer_output(ggml_cgraph * graph, int il) const;
    // Whether the graph selects the output rows after the last layer, so that the last layer's
    // output, like every earlier one, holds all token rows.
    bool selects_rows_after_layers() const { return selects_rows_; }
    ggml_tensor * weight() const { return weight_; }
    ggml_tensor * normalise(ggml_context * ctx, ggml_tensor * hidden) const;
    ggml_tensor * project(ggml_context * ctx, ggml_tensor * hidden) const;
    // Projects `hidden` [n_embd, m] through the model's own head product in `graph`: that matrix
    // product is widened to take the m columns after its own, so the head weight is read once
    // for the final layer and every depth (on a GPU at one sequence, the head's cost is reading
    // it). The model's product becomes a view of the first columns of the wide one. Returns the
    // m columns' logits (*shared tells whether the model's product became the view), or nullptr
    // when the graph's head is not the one discovered.
    ggml_tensor * project_with_model(ggml_context * ctx, ggml_cgraph * graph, ggml_tensor * hidden,
                                     bool * shared) const;

private:
    struct Op {
        ggml_op op;
        int32_t params[GGML_MAX_OP_PARAMS / sizeof(int32_t)];
        ggml_tensor * operand;
    };
    static ggml_tensor * replay(ggml_context * ctx, ggml_tensor * x, const Op & op);
    ggml_tensor * post(ggml_context * ctx, ggml_tensor * logits) const;
    ggml_tensor * find_product(ggml_cgraph * graph) const;
    struct Walk;
    static Walk walk(ggml_cgraph * graph, int n_layer);
    ggml_tensor * weight_ = nullptr;
    std::vector<Op> norm_ops_;
    std::vector<Op> post_ops_;
    int n_layer_ = 0;
    bool selects_rows_ = false;
    bool named_layers_ = true;  // the last layer's output is the graph's l_out-<n_layer-1>
};

// The output rows of every captured layer, stacked per row: [n_embd, layers, rows] (one
// get_rows per layer for the whole batch). graph == nullptr builds stand-ins (llama.cpp's
// sizing probe).
struct CaptureSpec {
    std::vector<int> layers;  // l_out index per captured row; n_layer-1 = the final layer
    int n_layer = 0;
};
std::string stack_layer_rows(ggml_context * ctx, ggml_cgraph * graph, const OutputHead & head, const CaptureSpec & spec,
                             int64_t n_embd, int64_t n_rows, ggml_tensor ** stacked);

// Copies one output row's stacked layers into a slot of the capture tensor. Returns a one-value
// tensor that depends on the copy: as a sampler output it is computed exactly when that
// sampler's row is active.
ggml_tensor * capture_row(ggml_context * ctx, ggml_tensor * stacked, int64_t row, ggml_tensor * capture, int slot);

// The depths' logits of every output row, [n_vocab, depths * rows] (row-major over depths), each
// softmaxed over the whole vocabulary at the inverse temperature, and the probabilities of that
// row's final-layer candidates (ids, I32 [k, rows]) taken at every depth: [k, depths, rows].
// row_scales (F32 [1, 1, rows], or nullptr): each row's own inverse temperature instead.
ggml_tensor * build_depth_probabilities(ggml_context * ctx, ggml_tensor * depth_logits, ggml_tensor * ids,
                                        int64_t depths, float inverse_temperature, ggml_tensor * row_scales = nullptr);

struct ExploreSettings {
    int d = 8;
    int k = 8;
    float inverse_temperature = 1.0f;
    bool ln = false;
};

struct ExploreQuery {
    int slot = 0;
    const int32_t * candidates = nullptr;  // k ids
    const int * captured = nullptr;        // d-1 indices of its depths among the slot's captured rows (nullptr: 0..d-2)
};

// Owns the capture tensor and runs the second, lazy graph: the captured depths through the
// output head, full-vocabulary softmax, and the candidates' probabilities at every depth. The
// host decides from those (led::explore), as it does with the every-step projection.
class DepthProjector {
public:
    DepthProjector(ggml_backend_buffer_type_t buffer_type, int64_t n_embd, int n_captured, int n_slots, int n_threads);
    ~DepthProjector();
    DepthProjector(const DepthProjector &) = delete;
    DepthProjector & operator=(const DepthProjector &) = delete;

    ggml_tensor * capture() const { return capture_; }
    int n_captured() const { return n_captured_; }
    const std::string & device_name() const { return device_name_; }

    // One graph for every exploring sequence of a step. Captured rows are depths 1..d-1; per
    // query, the candidates' probabilities at depths 1..d-1, [d-1][k] (depth 0 is the host's q).
    std::vector<std::vector<float>> explore(const OutputHead & head, int64_t n_vocab, const ExploreSettings & settings,
                                            const std::vector<ExploreQuery> & queries);

    // Full logits of every captured row of a slot, [n_captured][n_vocab]; row 0 goes through the
    // final norm when final_row_normalised, the others when ln. For tests and analyses only.
    std::vector<float> logits(const OutputHead & head, int64_t n_vocab, int slot, bool ln, bool final_row_normalised);

    // The paper's per-layer analyses for one slot whose captured rows are every layer, final
    // first: each layer's normalised entropy (full vocabulary, final norm applied, T = 1) and
    // its top_k token ids (descending logit) with and without the final norm. [n_captured], [n_captured][top_k] x 2.
    struct LayerStatistics {
        std::vector<float> entropies;
        std::vector<int32_t> top_normalised;
        std::vector<int32_t> top_raw;
    };
    LayerStatistics layer_statistics(const OutputHead & head, int64_t n_vocab, int slot, int top_k);

private:
    struct ContextDeleter {
        void operator()(ggml_context * ctx) const { ggml_free(ctx); }
    };
    struct ExploreGraph {
        std::unique_ptr<ggml_context, ContextDeleter> context;
        ggml_cgraph * graph = nullptr;
        ggml_tensor * ints = nullptr;           // inputs: capture rows, candidates
        ggml_tensor * probabilities = nullptr;  // [k, d-1, n]
    };
    using ExploreKey = std::tuple<int, int, int, float, bool, const ggml_tensor *>;

    ExploreGraph & explore_graph(const OutputHead & head, int64_t n_vocab, const ExploreSettings & settings, int n);
    void check_support(ggml_cgraph * graph);
    // Allocates and runs a one-off graph (debug logits, analyses); `what` names it in errors.
    void compute(ggml_cgraph * graph, const char * what);
    std::map<ExploreKey, ExploreGraph> explore_graphs_;
    ggml_backend_t backend_ = nullptr;
    ggml_backend_buffer_t capture_buffer_ = nullptr;
    ggml_context * capture_context_ = nullptr;
    ggml_gallocr_t allocator_ = nullptr;
    ggml_tensor * capture_ = nullptr;
    int n_captured_ = 0;
    std::string device_name_;
};

}  // namespace led
