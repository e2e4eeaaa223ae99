#include "led_graph.h"

#include <ggml-cpu.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <tuple>
#include <unordered_set>

namespace led {

namespace {

constexpr int kMaxChain = 16;

bool is_computed(const ggml_tensor * tensor) { return tensor->op != GGML_OP_NONE; }

std::string layer_name(int il) { return "l_out-" + std::to_string(il); }

ggml_tensor * find_embeddings(ggml_cgraph * graph) {
    // The residual stream entering layer 0: the scaled embeddings where the architecture scales,
    // else the token embeddings (named "embd"; "inp_embd" is the unused raw-vector input).
    for (const char * name : {"inp_scaled", "embd", "inp_embd"}) {
        if (ggml_tensor * tensor = ggml_graph_get_tensor(graph, name)) {
            return tensor;
        }
    }
    return nullptr;
}

// The GET_ROWS that keeps only the output rows (llama.cpp's out_ids input).
bool selects_output_rows(const ggml_tensor * node) {
    return node->op == GGML_OP_GET_ROWS && node->src[1] != nullptr && std::strcmp(node->src[1]->name, "out_ids") == 0;
}

// Ops that regroup a hidden state's rows without changing a value (row width kept, same data).
bool keeps_values(const ggml_tensor * node) {
    const ggml_tensor * source = node->src[0];
    if (source == nullptr || source->ne[0] != node->ne[0] || ggml_nelements(source) != ggml_nelements(node)) {
        return false;
    }
    switch (node->op) {
        case GGML_OP_RESHAPE:
        case GGML_OP_CONT:    return true;
        case GGML_OP_VIEW:    return node->view_offs == 0 && node->nb[1] == source->nb[1];
        default:              return false;
    }
}

bool is_leaf_operand(const ggml_tensor * node) {
    return (node->op == GGML_OP_MUL || node->op == GGML_OP_ADD) &&
           (!is_computed(node->src[0]) || !is_computed(node->src[1]));
}

// The residual stream entering layer il: the input of its attention norm (the norm, its weight
// and bias walked back over).
ggml_tensor * norm_input(ggml_cgraph * graph, int il) {
    ggml_tensor * node = ggml_graph_get_tensor(graph, ("attn_norm-" + std::to_string(il)).c_str());
    for (int steps = 0; node != nullptr && steps < kMaxChain; ++steps) {
        if (node->op == GGML_OP_RMS_NORM || node->op == GGML_OP_NORM) {
            return node->src[0];
        }
        if (!is_leaf_operand(node)) {
            return nullptr;
        }
        node = is_computed(node->src[0]) ? node->src[0] : node->src[1];
    }
    return nullptr;
}

struct ContextDeleter {
    void operator()(ggml_context * ctx) const { ggml_free(ctx); }
};
using ContextPtr = std::unique_ptr<ggml_context, ContextDeleter>;

ContextPtr scratch_context(size_t n_tensors) {
    ggml_init_params params = {
        /*.mem_size   =*/n_tensors * ggml_tensor_overhead() + ggml_graph_overhead_custom(n_tensors, false),
        /*.mem_buffer =*/nullptr,
        /*.no_alloc   =*/true,
    };
    return ContextPtr(ggml_init(params));
}

}  // namespace

int depth_layer(int n_layer, int depth, LayerCounting counting) {
    // paper: depth j is the output of layer n_layer-1-j; reference: the stream entering it.
    return counting == LayerCounting::paper ? n_layer - 1 - depth : n_layer - 2 - depth;
}

std::vector<int> depth_layers(int n_layer, int d, LayerCounting counting) {
    if (d < 1 || d > n_layer) throw std::invalid_argument("d must lie in [1, n_layer]");
    std::vector<int> layers;
    for (int j = 1; j < d; ++j) {
        const int il = depth_layer(n_layer, j, counting);
        if (il < -1) throw std::invalid_argument("d is too large for layer_counting='reference' on this model");
        layers.push_back(il);
    }
    return layers;
}

struct OutputHead::Walk {
    std::string error;
    ggml_tensor * weight = nullptr;
    std::vector<Op> norm_ops;
    std::vector<Op> post_ops;
    ggml_tensor * last_layer = nullptr;
    bool selects_rows = false;
    bool named = false;
};

OutputHead::Walk OutputHead::walk(ggml_cgraph * graph, int n_layer) {
    Walk found;
    ggml_tensor * node = ggml_graph_get_tensor(graph, "result_output");
    if (node == nullptr) {
        found.error = "the model graph has no node named result_output (the logits)";
        return found;
    }
    // The walk ends at the graph's l_out-<n_layer-1>, or, where the graph names it otherwise (or
    // names a tensor inside the layer so), at the stream entering the final norm.
    ggml_tensor * named_last = ggml_graph_get_tensor(graph, layer_name(n_layer - 1).c_str());
    std::vector<Op> * chain = &found.post_ops;
    bool normalised = false;
    for (int steps = 0;; ++steps) {
        if (node == named_last) {
            found.named = true;
            break;
        }
        if (steps > 3 * kMaxChain) {
            found.error = "the path from the last layer's output to the logits is longer than expected";
            return found;
        }
        if (chain == &found.norm_ops && (selects_output_rows(node) || keeps_values(node))) {
            // Row selection commutes with the head's per-row ops: LED selects the same rows itself.
            found.selects_rows = found.selects_rows || selects_output_rows(node);
            node = node->src[0];
            continue;
        }
        if (normalised) {
            break;  // the stream entering the final norm
        }
        Op op{};
        op.op = node->op;
        std::memcpy(op.params, node->op_params, sizeof(op.params));
        ggml_tensor * activation = nullptr;
        switch (node->op) {
            case GGML_OP_MUL_MAT:
                if (chain == &found.norm_ops) {
                    found.error = "the output head has two matrix products";
                    return found;
                }
                found.weight = node->src[0];
                node = node->src[1];
                chain = &found.norm_ops;
                continue;
            case GGML_OP_RMS_NORM:
            case GGML_OP_NORM:
                normalised = chain == &found.norm_ops;
                activation = node->src[0];
                break;
            case GGML_OP_SCALE:
            case GGML_OP_UNARY: activation = node->src[0]; break;
            case GGML_OP_MUL:
            case GGML_OP_ADD:
                activation = is_computed(node->src[0]) ? node->src[0] : node->src[1];
                op.operand = activation == node->src[0] ? node->src[1] : node->src[0];
                if (is_computed(op.operand)) {
                    found.error = std::string("the output head combines two computed tensors in ") + ggml_op_desc(node);
                    return found;
                }
                break;
            default:
                found.error = std::string("the output head uses the op ") + ggml_op_desc(node) + " (node " +
                              node->name + "), which LED cannot replay on earlier layers";
                return found;
        }
        if (node->op == GGML_OP_UNARY) {
            const auto unary = static_cast<ggml_unary_op>(op.params[0]);
            if (unary != GGML_UNARY_OP_TANH) {
                found.error =
                    std::string("the output head applies ") + ggml_unary_op_name(unary) + ", which LED does not replay";
                return found;
            }
        }
        chain->push_back(op);
        node = activation;
    }
    if (found.weight == nullptr || is_computed(found.weight)) {
        found.error = "could not find the output head's weight in the model graph";
        return found;
    }
    if (node->type != GGML_TYPE_F32 || node->ne[0] != found.weight->ne[0]) {
        found.error = std::string("the tensor entering the output head (") + node->name +
                      ") is not an F32 hidden state of the head's width";
        return found;
    }
    found.last_layer = node;
    std::reverse(found.norm_ops.begin(), found.norm_ops.end());
    std::reverse(found.post_ops.begin(), found.post_ops.end());
    return found;
}

std::string OutputHead::discover(ggml_cgraph * graph, int n_layer) {
    Walk found = walk(graph, n_layer);
    weight_ = found.error.empty() ? found.weight : nullptr;
    if (!found.error.empty()) {
        return found.error;
    }
    norm_ops_ = std::move(found.norm_ops);
    post_ops_ = std::move(found.post_ops);
    n_layer_ = n_layer;
    selects_rows_ = found.selects_rows;
    named_layers_ = found.named;
    return "";
}

ggml_tensor * OutputHead::layer_output(ggml_cgraph * graph, int il) const {
    if (il == n_layer_ - 1) {
        Walk found = walk(graph, n_layer_);
        return found.error.empty() && found.weight == weight_ ? found.last_layer : nullptr;
    }
    if (il < 0) {
        ggml_tensor * embeddings = find_embeddings(graph);
        return embeddings != nullptr ? embeddings : norm_input(graph, 0);
    }
    // Where l_out-<il> is not the stream the last layer leaves (a graph may name a tensor inside
    // the layer so), the stream entering the next layer's norm is.
    ggml_tensor * named = ggml_graph_get_tensor(graph, layer_name(il).c_str());
    ggml_tensor * entering = norm_input(graph, il + 1);
    if (named_layers_) {
        return named != nullptr ? named : entering;
    }
    return entering != nullptr ? entering : named;
}

ggml_tensor * OutputHead::replay(ggml_context * ctx, ggml_tensor * x, const Op & op) {
    float values[2];
    std::memcpy(values, op.params, sizeof(values));
    switch (op.op) {
        case GGML_OP_RMS_NORM: return ggml_rms_norm(ctx, x, values[0]);
        case GGML_OP_NORM:     return ggml_norm(ctx, x, values[0]);
        case GGML_OP_SCALE:    return ggml_scale_bias(ctx, x, values[0], values[1]);
        case GGML_OP_UNARY:    return ggml_unary(ctx, x, static_cast<ggml_unary_op>(op.params[0]));
        case GGML_OP_MUL:      return ggml_mul(ctx, x, op.operand);
        case GGML_OP_ADD:      return ggml_add(ctx, x, op.operand);
        default:               throw std::logic_error("unreachable: unsupported op in the output head");
    }
}

ggml_tensor * OutputHead::normalise(ggml_context * ctx, ggml_tensor * hidden) const {
    for (const Op & op : norm_ops_) {
        hidden = replay(ctx, hidden, op);
    }
    return hidden;
}

ggml_tensor * OutputHead::post(ggml_context * ctx, ggml_tensor * logits) const {
    for (const Op & op : post_ops_) {
        logits = replay(ctx, logits, op);
    }
    return logits;
}

ggml_tensor * OutputHead::project(ggml_context * ctx, ggml_tensor * hidden) const {
    return post(ctx, ggml_mul_mat(ctx, weight_, hidden));
}

ggml_tensor * OutputHead::find_product(ggml_cgraph * graph) const {
    ggml_tensor * node = ggml_graph_get_tensor(graph, "result_output");
    // Back from the logits over the transforms after the head, as discover() found them.
    for (size_t i = 0; node != nullptr && i < post_ops_.size(); ++i) {
        if (node->op != post_ops_[post_ops_.size() - 1 - i].op) return nullptr;
        const bool binary = node->op == GGML_OP_MUL || node->op == GGML_OP_ADD;
        node = binary && !is_computed(node->src[0]) ? node->src[1] : node->src[0];
    }
    if (node == nullptr || node->op != GGML_OP_MUL_MAT || node->src[0] != weight_ ||
        node->src[1]->type != GGML_TYPE_F32 || !ggml_is_contiguous(node) || !ggml_is_contiguous(node->src[1])) {
        return nullptr;
    }
    return node;
}

ggml_tensor * OutputHead::project_with_model(ggml_context * ctx, ggml_cgraph * graph, ggml_tensor * hidden,
                                             bool * shared) const {
    *shared = false;
    ggml_tensor * product = find_product(graph);
    if (product == nullptr) return nullptr;
    ggml_tensor ** nodes = ggml_graph_nodes(graph);
    const int before = ggml_graph_n_nodes(graph);
    int at = 0;
    while (at < before && nodes[at] != product) ++at;
    if (at == before) return nullptr;
    const int64_t n_outputs = product->ne[1];
    ggml_tensor * wide = ggml_mul_mat(ctx, weight_, ggml_concat(ctx, product->src[1], hidden, 1));
    ggml_set_name(wide, "led_head_product");
    ggml_build_forward_expand(graph, wide);
    const int after = ggml_graph_n_nodes(graph);
    ggml_tensor * columns = ggml_view_2d(ctx, wide, wide->ne[0], hidden->ne[1], wide->nb[1], n_outputs * wide->nb[1]);
    // The wide product's new nodes read the layer outputs, the final norm and leaves, which come
    // before the model's product, so they can move in front of it. Should one read a node after
    // it, the model keeps its own product and the wide one just runs later.
    const std::unordered_set<const ggml_tensor *> later(nodes + at, nodes + before);
    for (int i = before; i < after; ++i) {
        for (const ggml_tensor * source : nodes[i]->src) {
            if (source != nullptr && later.count(source) != 0) return post(ctx, columns);
        }
    }
    std::rotate(nodes + at, nodes + before, nodes + after);
    if (product->flags & GGML_TENSOR_FLAG_OUTPUT) {
        ggml_set_output(wide);
    }
    // The model's product becomes a view of the wide product's first n_outputs columns (the
    // layout ggml_view_2d gives: same strides, offset 0).
    product->op = GGML_OP_VIEW;
    std::memset(product->op_params, 0, sizeof(product->op_params));
    product->src[0] = wide;
    product->src[1] = nullptr;
    product->view_src = wide;
    product->view_offs = 0;
    *shared = true;
    return post(ctx, columns);
}

std::string stack_layer_rows(ggml_context * ctx, ggml_cgraph * graph, const OutputHead & head, const CaptureSpec & spec,
                             int64_t n_embd, int64_t n_rows, ggml_tensor ** stacked) {
    *stacked = nullptr;
    ggml_tensor * out_ids =
        graph != nullptr ? ggml_graph_get_tensor(graph, "out_ids") : ggml_new_tensor_1d(ctx, GGML_TYPE_I32, n_rows);
    for (int il : spec.layers) {
        ggml_tensor * layer =
            graph != nullptr ? head.layer_output(graph, il) : ggml_new_tensor_2d(ctx, GGML_TYPE_F32, n_embd, n_rows);
        if (layer == nullptr) {
            return "the model graph has no node " + (il >= 0 ? layer_name(il) : std::string("embd")) +
                   " and no attention norm input for layer " + std::to_string(il + 1) +
                   " (LED reads the outputs of the last d layers)";
        }
        if (layer->ne[0] != n_embd || layer->type != GGML_TYPE_F32) {
            return "the node " + std::string(layer->name) + " is not an F32 hidden state of width n_embd";
        }
        ggml_tensor * hidden;
        if (il == spec.n_layer - 1 && graph != nullptr && !head.selects_rows_after_layers()) {
            hidden = layer;  // the last layer keeps only the output rows already
        } else {
            // Every other layer output, and the last where the graph selects rows after the
            // layers, holds all token rows: take the rows out_ids maps the outputs to.
            if (out_ids == nullptr) {
                return "the model graph has no out_ids input to map output rows to token positions";
            }
            ggml_tensor * rows =
                ggml_is_contiguous(layer) ? ggml_reshape_2d(ctx, layer, n_embd, ggml_nelements(layer) / n_embd) : layer;
            hidden = ggml_get_rows(ctx, rows, out_ids);
        }
        if (hidden->ne[1] != n_rows) {
            return "the node " + std::string(layer->name) + " does not hold one row per output";
        }
        hidden = ggml_reshape_3d(ctx, ggml_cont(ctx, hidden), n_embd, 1, n_rows);
        *stacked = *stacked == nullptr ? hidden : ggml_concat(ctx, *stacked, hidden, 1);
    }
    return "";
}

ggml_tensor * capture_row(ggml_context * ctx, ggml_tensor * stacked, int64_t row, ggml_tensor * capture, int slot) {
    const int64_t n_embd = stacked->ne[0];
    const int64_t layers = stacked->ne[1];
    ggml_tensor * source = ggml_view_2d(ctx, stacked, n_embd, layers, stacked->nb[1], row * stacked->nb[2]);
    ggml_tensor * target =
        ggml_view_2d(ctx, capture, n_embd, layers, capture->nb[1], static_cast<size_t>(slot) * layers * capture->nb[1]);
    return ggml_view_1d(ctx, ggml_cpy(ctx, source, target), 1, 0);
}

ggml_tensor * build_depth_probabilities(ggml_context * ctx, ggml_tensor * depth_logits, ggml_tensor * ids,
                                        int64_t depths, float inverse_temperature, ggml_tensor * row_scales) {
    const int64_t n_vocab = depth_logits->ne[0];
    const int64_t rows = ids->ne[1];
    const int64_t k = ids->ne[0];
    const int64_t m = depths * rows;
    ggml_tensor * full =
        row_scales != nullptr
            ? ggml_soft_max_ext(
                  ctx,
                  ggml_reshape_2d(ctx,
                                  ggml_mul(ctx, ggml_reshape_3d(ctx, depth_logits, n_vocab, depths, rows), row_scales),
                                  n_vocab, m),
                  nullptr, 1.0f, 0.0f)
            : ggml_soft_max_ext(ctx, depth_logits, nullptr, inverse_temperature, 0.0f);
    // Every depth of a row gathers that row's candidates. Ids travel through F32 to be repeated
    // (exact below 2^24), since CUDA repeats only float types.
    ggml_tensor * repeated = ggml_cast(
        ctx,
        ggml_repeat_4d(ctx, ggml_cast(ctx, ggml_reshape_3d(ctx, ids, k, 1, rows), GGML_TYPE_F32), k, depths, rows, 1),
        GGML_TYPE_I32);
    ggml_tensor * picked =
        ggml_get_rows(ctx, ggml_reshape_3d(ctx, full, 1, n_vocab, m), ggml_reshape_2d(ctx, repeated, k, m));
    return ggml_reshape_3d(ctx, picked, k, depths, rows);
}

DepthProjector::DepthProjector(ggml_backend_buffer_type_t buffer_type, int64_t n_embd, int n_captured, int n_slots,
                               int n_threads)
    : n_captured_(n_captured) {
    ggml_backend_dev_t device = ggml_backend_buft_get_device(buffer_type);
    if (device == nullptr) {
        device = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    }
    device_name_ = ggml_backend_dev_name(device);
    backend_ = ggml_backend_dev_init(device, nullptr);
    if (backend_ == nullptr) {
        throw std::runtime_error("LED could not start a backend on " + device_name_);
    }
    ggml_backend_reg_t registry = ggml_backend_dev_backend_reg(device);
    auto set_threads = reinterpret_cast<ggml_backend_set_n_threads_t>(
        ggml_backend_reg_get_proc_address(registry, "ggml_backend_set_n_threads"));
    if (set_threads != nullptr) {
        set_threads(backend_, n_threads);
    }
    ggml_init_params params = {ggml_tensor_overhead() * 2, nullptr, true};
    capture_context_ = ggml_init(params);
    capture_ = ggml_new_tensor_2d(capture_context_, GGML_TYPE_F32, n_embd,
                                  static_cast<int64_t>(std::max(n_captured, 1)) * n_slots);
    ggml_set_name(capture_, "led_capture");
    capture_buffer_ = ggml_backend_alloc_ctx_tensors_from_buft(capture_context_, buffer_type);
    if (capture_buffer_ == nullptr) {
        throw std::runtime_error("LED could not allocate its capture buffer on " + device_name_);
    }
    ggml_backend_buffer_clear(capture_buffer_, 0);
    allocator_ = ggml_gallocr_new(ggml_backend_get_default_buffer_type(backend_));
}

DepthProjector::~DepthProjector() {
    if (allocator_ != nullptr) ggml_gallocr_free(allocator_);
    if (capture_buffer_ != nullptr) ggml_backend_buffer_free(capture_buffer_);
    if (capture_context_ != nullptr) ggml_free(capture_context_);
    if (backend_ != nullptr) ggml_backend_free(backend_);
}

void DepthProjector::check_support(ggml_cgraph * graph) {
    for (int i = 0; i < ggml_graph_n_nodes(graph); ++i) {
        ggml_tensor * node = ggml_graph_node(graph, i);
        if (!ggml_backend_supports_op(backend_, node)) {
            throw std::runtime_error(
                std::string("the ") + device_name_ + " backend cannot run " + ggml_op_desc(node) +
                " for LED's depth projection; load the model with n_gpu_layers=0 to run LED on the CPU");
        }
    }
}

void DepthProjector::compute(ggml_cgraph * graph, const char * what) {
    check_support(graph);
    if (!ggml_gallocr_alloc_graph(allocator_, graph)) {
        throw std::runtime_error(std::string("LED could not allocate the graph of ") + what + " on " + device_name_);
    }
    if (ggml_backend_graph_compute(backend_, graph) != GGML_STATUS_SUCCESS) {
        throw std::runtime_error(std::string(what) + " failed on " + device_name_);
    }
}

DepthProjector::ExploreGraph & DepthProjector::explore_graph(const OutputHead & head, int64_t n_vocab,
                                                             const ExploreSettings & settings, int n) {
    const auto key =
        std::make_tuple(n, settings.d, settings.k, settings.inverse_temperature, settings.ln, head.weight());
    auto found = explore_graphs_.find(key);
    if (found != explore_graphs_.end()) {
        return found->second;
    }
    const int k = settings.k;
    const int depths = settings.d - 1;
    const int64_t m = static_cast<int64_t>(depths) * n;
    ExploreGraph built;
    built.context.reset(scratch_context(32).release());
    ggml_context * ctx = built.context.get();
    ggml_cgraph * graph = ggml_new_graph_custom(ctx, 32, false);
    built.graph = graph;
    // All inputs in one I32 tensor (capture rows, then every row's candidates): one copy a step.
    built.ints = ggml_new_tensor_1d(ctx, GGML_TYPE_I32, m + static_cast<int64_t>(k) * m);
    ggml_set_input(built.ints);
    ggml_tensor * rows = ggml_view_1d(ctx, built.ints, m, 0);
    ggml_tensor * candidates = ggml_view_2d(ctx, built.ints, k, m, k * sizeof(int32_t), m * sizeof(int32_t));
    ggml_tensor * hidden = ggml_get_rows(ctx, capture_, rows);
    if (settings.ln) {
        hidden = head.normalise(ctx, hidden);
    }
    ggml_tensor * logits = head.project(ctx, hidden);
    ggml_tensor * full = ggml_soft_max_ext_inplace(ctx, logits, nullptr, settings.inverse_temperature, 0.0f);
    built.probabilities = ggml_get_rows(ctx, ggml_reshape_3d(ctx, full, 1, n_vocab, m), candidates);  // [1, k, m]
    ggml_set_output(built.probabilities);
    ggml_build_forward_expand(graph, built.probabilities);
    check_support(graph);
    return explore_graphs_.emplace(key, std::move(built)).first->second;
}

std::vector<std::vector<float>> DepthProjector::explore(const OutputHead & head, int64_t n_vocab,
                                                        const ExploreSettings & settings,
                                                        const std::vector<ExploreQuery> & queries) {
    const int n = static_cast<int>(queries.size());
    const int k = settings.k;
    const int depths = settings.d - 1;
    if (n == 0 || depths < 1) {
        return std::vector<std::vector<float>>(n);
    }
    const int64_t m = static_cast<int64_t>(depths) * n;
    ExploreGraph & built = explore_graph(head, n_vocab, settings, n);
    // The graph of a given shape is built once and allocated afresh each step (another shape may
    // have moved the allocator's buffer since); the same shape gets the same addresses, which
    // lets backends replay it (CUDA graphs).
    for (ggml_tensor * tensor = ggml_get_first_tensor(built.context.get()); tensor != nullptr;
         tensor = ggml_get_next_tensor(built.context.get(), tensor)) {
        tensor->data = nullptr;
        tensor->buffer = nullptr;
    }
    if (!ggml_gallocr_alloc_graph(allocator_, built.graph)) {
        throw std::runtime_error("LED could not allocate its depth projection graph on " + device_name_);
    }
    std::vector<int32_t> ints(m + static_cast<int64_t>(k) * m);
    for (int e = 0; e < n; ++e) {
        for (int j = 0; j < depths; ++j) {
            const int64_t row = static_cast<int64_t>(e) * depths + j;
            ints[row] = queries[e].slot * n_captured_ + (queries[e].captured != nullptr ? queries[e].captured[j] : j);
            std::memcpy(ints.data() + m + row * k, queries[e].candidates, sizeof(int32_t) * k);
        }
    }
    ggml_backend_tensor_set_async(backend_, built.ints, ints.data(), 0, ggml_nbytes(built.ints));
    if (ggml_backend_graph_compute_async(backend_, built.graph) != GGML_STATUS_SUCCESS) {
        throw std::runtime_error("LED's depth projection failed on " + device_name_);
    }
    std::vector<float> host(static_cast<size_t>(k) * m);
    ggml_backend_tensor_get_async(backend_, built.probabilities, host.data(), 0, ggml_nbytes(built.probabilities));
    ggml_backend_synchronize(backend_);
    std::vector<std::vector<float>> answers(n);
    const size_t per_query = static_cast<size_t>(k) * depths;
    for (int e = 0; e < n; ++e) {
        answers[e].assign(host.begin() + e * per_query, host.begin() + (e + 1) * per_query);
    }
    return answers;
}

std::vector<float> DepthProjector::logits(const OutputHead & head, int64_t n_vocab, int slot, bool ln,
                                          bool final_row_normalised) {
    ContextPtr ctx = scratch_context(64);
    ggml_cgraph * graph = ggml_new_graph_custom(ctx.get(), 64, false);
    std::vector<ggml_tensor *> outputs;
    for (int i = 0; i < n_captured_; ++i) {
        ggml_tensor * hidden = ggml_view_2d(ctx.get(), capture_, capture_->ne[0], 1, capture_->nb[1],
                                            (static_cast<size_t>(slot) * n_captured_ + i) * capture_->nb[1]);
        if ((i == 0 && final_row_normalised) || (i > 0 && ln)) {
            hidden = head.normalise(ctx.get(), hidden);
        }
        ggml_tensor * logits = head.project(ctx.get(), hidden);
        ggml_set_output(logits);
        ggml_build_forward_expand(graph, logits);
        outputs.push_back(logits);
    }
    compute(graph, "LED's depth projection");
    std::vector<float> result(static_cast<size_t>(n_captured_) * n_vocab);
    for (int i = 0; i < n_captured_; ++i) {
        ggml_backend_tensor_get(outputs[i], result.data() + static_cast<size_t>(i) * n_vocab, 0,
                                sizeof(float) * n_vocab);
    }
    return result;
}

DepthProjector::LayerStatistics DepthProjector::layer_statistics(const OutputHead & head, int64_t n_vocab, int slot,
                                                                 int top_k) {
    ContextPtr ctx = scratch_context(64);
    ggml_cgraph * graph = ggml_new_graph_custom(ctx.get(), 64, false);
    const int n = n_captured_;
    ggml_tensor * hidden = ggml_view_2d(ctx.get(), capture_, capture_->ne[0], n, capture_->nb[1],
                                        static_cast<size_t>(slot) * n * capture_->nb[1]);
    ggml_tensor * normalised = head.project(ctx.get(), head.normalise(ctx.get(), hidden));
    ggml_tensor * raw = head.project(ctx.get(), ggml_cont(ctx.get(), hidden));
    ggml_tensor * probabilities = ggml_soft_max(ctx.get(), normalised);
    ggml_tensor * log_probabilities = ggml_log(ctx.get(), ggml_clamp(ctx.get(), probabilities, 1e-30f, FLT_MAX));
    ggml_tensor * entropies =
        ggml_scale(ctx.get(), ggml_sum_rows(ctx.get(), ggml_mul(ctx.get(), probabilities, log_probabilities)),
                   -1.0f / std::log(static_cast<float>(n_vocab)));
    // top_k leaves its ids unordered; order them by logit so every smaller top-k is a prefix.
    const auto ordered_top = [&](ggml_tensor * logits) {
        ggml_tensor * ids = ggml_top_k(ctx.get(), logits, top_k);
        ggml_tensor * values = ggml_get_rows(ctx.get(), ggml_reshape_3d(ctx.get(), logits, 1, n_vocab, n), ids);
        ggml_tensor * order =
            ggml_argsort(ctx.get(), ggml_reshape_2d(ctx.get(), values, top_k, n), GGML_SORT_ORDER_DESC);
        return ggml_reshape_2d(ctx.get(), ggml_get_rows(ctx.get(), ggml_reshape_3d(ctx.get(), ids, 1, top_k, n), order),
                               top_k, n);
    };
    ggml_tensor * top_normalised = ordered_top(normalised);
    ggml_tensor * top_raw = ordered_top(raw);
    for (ggml_tensor * output : {entropies, top_normalised, top_raw}) {
        ggml_set_output(output);
        ggml_build_forward_expand(graph, output);
    }
    compute(graph, "LED's layer analysis");
    LayerStatistics statistics;
    statistics.entropies.resize(n);
    statistics.top_normalised.resize(static_cast<size_t>(n) * top_k);
    statistics.top_raw.resize(static_cast<size_t>(n) * top_k);
    ggml_backend_tensor_get(entropies, statistics.entropies.data(), 0, ggml_nbytes(entropies));
    ggml_backend_tensor_get(top_normalised, statistics.top_normalised.data(), 0, ggml_nbytes(top_normalised));
    ggml_backend_tensor_get(top_raw, statistics.top_raw.data(), 0, ggml_nbytes(top_raw));
    return statistics;
}

}  // namespace led
