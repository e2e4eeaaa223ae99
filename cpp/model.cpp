#include "model.h"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace led {

llama_context_params base_context_params(const ModelOptions & options) {
    llama_context_params params = llama_context_default_params();
    params.n_batch = static_cast<uint32_t>(std::min(options.n_batch, options.n_ctx));
    params.n_ubatch = params.n_batch;
    params.n_threads = options.n_threads;
    params.n_threads_batch = options.n_threads;
    params.no_perf = true;
    if (options.kv_type == "f32") {
        params.type_k = GGML_TYPE_F32;
        params.type_v = GGML_TYPE_F32;
    }
    params.flash_attn_type = options.flash_attention < 0    ? LLAMA_FLASH_ATTN_TYPE_AUTO
                             : options.flash_attention == 0 ? LLAMA_FLASH_ATTN_TYPE_DISABLED
                                                            : LLAMA_FLASH_ATTN_TYPE_ENABLED;
    return params;
}

namespace {

bool g_verbose = false;

void log_callback(ggml_log_level level, const char * text, void *) {
    if (g_verbose || level == GGML_LOG_LEVEL_ERROR) {
        std::fputs(text, stderr);
    }
}

}  // namespace

void initialise_llama() {
    static std::once_flag once;
    std::call_once(once, [] {
        llama_log_set(log_callback, nullptr);
        llama_backend_init();
    });
}

namespace {

bool abort_callback(void * data) {
    auto * model = static_cast<Model *>(data);
    return model->abort_requested.load(std::memory_order_relaxed) ||
           (model->interrupt_check && model->interrupt_check());
}

}  // namespace

Model::Model(const std::string & path, const ModelOptions & options) : options_(options) {
    initialise_llama();
    g_verbose = options.verbose;
    if (options_.n_threads <= 0) {
        options_.n_threads = static_cast<int32_t>(std::max(1u, std::thread::hardware_concurrency()));
    }
    llama_model_params params = llama_model_default_params();
    params.n_gpu_layers = options.n_gpu_layers;
    model_ = llama_model_load_from_file(path.c_str(), params);
    if (model_ == nullptr) {
        throw std::runtime_error("llama.cpp could not load the model file '" + path +
                                 "' (run with verbose=True to see why)");
    }
    vocab_ = llama_model_get_vocab(model_);
}

Model::~Model() {
    detach_samplers();
    if (context_ != nullptr) {
        llama_free(context_);
    }
    if (model_ != nullptr) {
        llama_model_free(model_);
    }
}

int32_t Model::n_layer() const { return llama_model_n_layer(model_); }
int32_t Model::n_embd() const { return llama_model_n_embd(model_); }
int32_t Model::n_vocab() const { return llama_vocab_n_tokens(vocab_); }

std::string Model::metadata(const std::string & key) const {
    const int32_t size = llama_model_meta_val_str(model_, key.c_str(), nullptr, 0);
    if (size < 0) {
        return {};
    }
    std::string value(static_cast<size_t>(size) + 1, '\0');
    llama_model_meta_val_str(model_, key.c_str(), value.data(), value.size());
    value.resize(static_cast<size_t>(size));
    return value;
}

std::string Model::architecture() const { return metadata("general.architecture"); }

std::string Model::chat_template() const {
    const char * text = llama_model_chat_template(model_, nullptr);
    return text != nullptr ? text : "";
}

std::string Model::token_text(llama_token token) const {
    if (token < 0 || token >= n_vocab()) {
        return {};
    }
    return llama_vocab_get_text(vocab_, token);
}

bool Model::is_end_of_generation(llama_token token) const { return llama_vocab_is_eog(vocab_, token); }

std::vector<llama_token> Model::tokenize(const std::string & text, bool add_special, bool parse_special) const {
    if (text.size() > static_cast<size_t>(INT32_MAX / 2)) {
        throw std::invalid_argument("text is too long to tokenize");
    }
    std::vector<llama_token> tokens(text.size() + 8);
    int32_t n = llama_tokenize(vocab_, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                               static_cast<int32_t>(tokens.size()), add_special, parse_special);
    if (n < 0) {
        tokens.resize(static_cast<size_t>(-n));
        n = llama_tokenize(vocab_, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                           static_cast<int32_t>(tokens.size()), add_special, parse_special);
    }
    if (n < 0) {
        throw std::runtime_error("llama.cpp could not tokenize the text");
    }
    tokens.resize(static_cast<size_t>(n));
    return tokens;
}

std::string Model::token_piece(llama_token token) const {
    char buffer[256];
    int32_t n = llama_token_to_piece(vocab_, token, buffer, sizeof(buffer), 0, false);
    if (n >= 0) {
        return std::string(buffer, static_cast<size_t>(n));
    }
    std::string piece(static_cast<size_t>(-n), '\0');
    n = llama_token_to_piece(vocab_, token, piece.data(), static_cast<int32_t>(piece.size()), 0, false);
    piece.resize(static_cast<size_t>(std::max(n, 0)));
    return piece;
}

std::string Model::detokenize(const std::vector<llama_token> & tokens) const {
    const int32_t n_vocab_tokens = n_vocab();
    for (llama_token token : tokens) {
        if (token < 0 || token >= n_vocab_tokens) {
            throw std::invalid_argument("token id " + std::to_string(token) + " is outside the vocabulary [0, " +
                                        std::to_string(n_vocab_tokens) + ")");
        }
    }
    std::string text;
    for (llama_token token : tokens) {
        text += token_piece(token);
    }
    return text;
}

llama_context * Model::context(int32_t n_seq_max, int32_t n_ctx_seq, llama_seq_id keep) {
    n_ctx_seq = ((n_ctx_seq + 255) / 256) * 256;  // llama.cpp pads streams to 256 cells
    if (context_ != nullptr && context_seq_max_ >= n_seq_max && context_seq_cells_ >= n_ctx_seq) {
        llama_memory_t memory = llama_get_memory(context_);
        if (keep >= 0 && keep == kept_prompt.sequence) {
            for (llama_seq_id sequence = 0; sequence < context_seq_max_; ++sequence) {
                if (sequence != keep) llama_memory_seq_rm(memory, sequence, -1, -1);
            }
        } else {
            llama_memory_clear(memory, true);
            kept_prompt = KeptPrompt{};
        }
        return context_;
    }
    kept_prompt = KeptPrompt{};
    detach_samplers();
    if (context_ != nullptr) {
        llama_free(context_);
        context_ = nullptr;
    }
    n_seq_max = std::max(n_seq_max, context_seq_max_);
    n_ctx_seq = std::max(n_ctx_seq, context_seq_cells_);
    llama_context_params params = base_context_params(options_);
    params.n_ctx = static_cast<uint32_t>(n_ctx_seq) * static_cast<uint32_t>(n_seq_max);
    params.n_seq_max = static_cast<uint32_t>(n_seq_max);
    // Every decode asks for at most one output per sequence; llama.cpp would otherwise size its
    // output buffers and reserve graphs (LED's ops included) for n_batch outputs.
    params.n_outputs_max = static_cast<uint32_t>(n_seq_max);
    params.n_outputs_max_per_seq = 1;
    params.kv_unified = false;
    params.abort_callback = abort_callback;
    params.abort_callback_data = this;
    context_ = llama_init_from_model(model_, params);
    if (context_ == nullptr) {
        throw std::runtime_error("llama.cpp could not create a context of " + std::to_string(n_seq_max) +
                                 " sequences of " + std::to_string(n_ctx_seq) +
                                 " tokens (out of memory?); lower n_parallel or max_tokens");
    }
    context_seq_max_ = n_seq_max;
    context_seq_cells_ = n_ctx_seq;
    return context_;
}

void Model::detach_samplers() {
    if (context_ != nullptr) {
        for (size_t slot = 0; slot < samplers_.size(); ++slot) {
            llama_set_sampler(context_, static_cast<llama_seq_id>(slot), nullptr);
        }
    }
    for (llama_sampler * sampler : samplers_) {
        llama_sampler_free(sampler);
    }
    samplers_.clear();
    graph_state_.reset();
}

GraphState & Model::attach_samplers(const GraphSettings & wanted) {
    GraphSettings settings = wanted;
    settings.n_slots = context_seq_max_;  // every slot of the context, so smaller runs reuse them
    if (graph_state_ != nullptr && graph_state_->settings() == settings) {
        return *graph_state_;
    }
    detach_samplers();
    graph_state_ = std::make_unique<GraphState>(settings);
    for (int slot = 0; slot < settings.n_slots; ++slot) {
        samplers_.push_back(make_graph_sampler(graph_state_.get(), slot));
        llama_set_sampler(context_, slot, samplers_.back());
    }
    return *graph_state_;
}

Model::Lease::Lease(Model & model) : model_(model) {
    bool expected = false;
    if (!model_.busy_.compare_exchange_strong(expected, true)) {
        throw std::runtime_error(
            "this Model is already generating (another Generation is open, maybe in another thread); "
            "finish or close() it first, or load a second Model for concurrent generation");
    }
    model_.abort_requested = false;
}

Model::Lease::~Lease() { model_.busy_ = false; }

}  // namespace led
