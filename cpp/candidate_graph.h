// The final layer's candidates, built as ops in llama.cpp's model graph: the k most probable
// tokens of every output row, their probabilities normalised over the whole vocabulary, and their
// logits, without a full-vocabulary softmax row or sort and without copying logits to the host.
#pragma once

#include <ggml-backend.h>
#include <ggml.h>

#include <cstdint>

namespace led {

// Every token's tie key (n_vocab - id) * 2^-bits, F32 [n_vocab], which the candidates' tie-break
// adds at every step: written once into a buffer of the output device, not formed by an arange
// over the vocabulary at every step (a single-threaded pass on the CPU).
class TieKeys {
public:
    TieKeys(ggml_backend_buffer_type_t buffer_type, int64_t n_vocab);
    ~TieKeys();
    TieKeys(const TieKeys &) = delete;
    TieKeys & operator=(const TieKeys &) = delete;
    ggml_tensor * tensor() const { return keys_; }
    int64_t n_vocab() const { return keys_->ne[0]; }

private:
    ggml_context * context_ = nullptr;
    ggml_backend_buffer_t buffer_ = nullptr;
    ggml_tensor * keys_ = nullptr;
};

// For every row of a logits matrix [n_vocab, rows]: the k most probable tokens, which are the k
// largest logits (on exact ties at the k-th logit, the lower ids), sorted by logit, exact ties in
// no fixed order (ids, I32 [k, rows]; led::candidate_order finishes the order on the host), and,
// per row, their probabilities normalised over the whole vocabulary at the given inverse
// temperature followed by their logits (values, F32 [2k, rows]).
// row_scales (F32 [1, 1, rows], or nullptr): each row's own inverse temperature instead; a row
// gets the same bits either way (the scaled logits are the same products).
// tie_keys (nullptr: formed in the graph, for graphs that are only probed): TieKeys::tensor().
struct Candidates {
    ggml_tensor * ids;
    ggml_tensor * values;
};
Candidates build_candidates(ggml_context * ctx, ggml_tensor * logits, int k, float inverse_temperature,
                            ggml_tensor * row_scales = nullptr, ggml_tensor * tie_keys = nullptr);

}  // namespace led
