// A loaded GGUF model and the one llama.cpp context its generations share.
#pragma once

#include "led_sampler.h"

#include <llama.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace led {

// llama.cpp's global set-up (logging, backends), once per process.
void initialise_llama();

struct ModelOptions {
    int32_t n_ctx = 4096;
    int32_t n_gpu_layers = -1;
    int32_t n_threads = 0;  // 0 = all hardware threads
    int32_t n_batch = 512;
    bool verbose = false;
    std::string kv_type = "f16";  // "f16" or "f32" (exact comparisons in tests)
    int flash_attention = -1;     // -1 auto, 0 off, 1 on
    Projection led_projection = Projection::automatic;
};

// llama.cpp context settings every context of a model shares (threads, KV type, flash attention,
// batch size); callers set the sequence counts and outputs.
llama_context_params base_context_params(const ModelOptions & options);

class Model {
public:
    Model(const std::string & path, const ModelOptions & options);
    ~Model();
    Model(const Model &) = delete;
    Model & operator=(const Model &) = delete;

    const llama_model * model() const { return model_; }
    const llama_vocab * vocab() const { return vocab_; }
    const ModelOptions & options() const { return options_; }

    int32_t n_layer() const;
    int32_t n_embd() const;
    int32_t n_vocab() const;
    std::string architecture() const;
    std::string chat_template() const;  // empty when the GGUF has none
    std::string metadata(const std::string & key) const;
    std::string token_text(llama_token token) const;
    bool is_end_of_generation(llama_token token) const;

    std::vector<llama_token> tokenize(const std::string & text, bool add_special, bool parse_special) const;
    std::string token_piece(llama_token token) const;
    std::string detokenize(const std::vector<llama_token> & tokens) const;

    // The context is made on first use and grown when a request needs more sequences or
    // longer ones. Every sequence has its own KV stream of n_ctx_seq cells, so a sample's
    // numbers do not depend on what else is decoded beside it. One generation holds it at a
    // time (see Lease). Every sequence is emptied but `keep`, when it is kept_prompt's.
    llama_context * context(int32_t n_seq_max, int32_t n_ctx_seq, llama_seq_id keep = -1);

    // The prompt whose KV one sequence of the context still holds from position 0, left by the
    // last generation so that the next may start from it (RunOptions.cache_prompt); forgotten
    // when the context is emptied or made anew.
    struct KeptPrompt {
        llama_seq_id sequence = -1;
        std::vector<llama_token> tokens;
    };
    KeptPrompt kept_prompt;

    // Marks the context as in use by one generation; throws if another holds it.
    class Lease {
    public:
        explicit Lease(Model & model);
        ~Lease();
        Lease(const Lease &) = delete;
        Lease & operator=(const Lease &) = delete;

    private:
        Model & model_;
    };

    // The samplers tied into the context's graph, one per sequence slot, sharing one state.
    // Kept attached between generations with the same settings: attaching makes llama.cpp
    // reserve its graphs again. Call after context().
    GraphState & attach_samplers(const GraphSettings & settings);
    // Unties LED's samplers from the context (the benchmarks' baselines decode without them).
    void detach_samplers();

    // Set by a generation to stop a long llama_decode early (checked by ggml between nodes).
    std::atomic<bool> abort_requested{false};
    // Also asked between nodes: lets the Python binding stop a decode on Ctrl-C.
    std::function<bool()> interrupt_check;

private:
    ModelOptions options_;
    std::unique_ptr<GraphState> graph_state_;
    std::vector<llama_sampler *> samplers_;
    llama_model * model_ = nullptr;
    const llama_vocab * vocab_ = nullptr;
    llama_context * context_ = nullptr;
    int32_t context_seq_max_ = 0;
    int32_t context_seq_cells_ = 0;
    std::atomic<bool> busy_{false};
};

}  // namespace led
