#include "candidate_graph.h"

#include <ggml-alloc.h>

#include <cfloat>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace led {

namespace {

// How many equal chunks a row of n keys is cut into: ggml's CPU top_k and softmax (and every
// elementwise op) split their work by rows, so one sequence's vocabulary row would run on one
// thread. 1: not worth it, or no divisor leaves chunks of at least 4k keys.
int64_t chunk_count(int64_t n, int k) {
    if (n < 16384 || n >= (int64_t{1} << 24)) return 1;  // ids must stay exact in float32 below
    for (int64_t chunks = 32; chunks >= 2; --chunks) {
        if (n % chunks == 0 && n / chunks >= 4 * static_cast<int64_t>(k)) return chunks;
    }
    return 1;
}

// The tie keys' resolution: every key (n_vocab - id) * 2^-bits + {-1, 0, 1} is exact in float32
// when bits <= 23.
int tie_bits(int64_t n_vocab) {
    int bits = 0;
    while ((int64_t{1} << bits) <= n_vocab) ++bits;
    return bits;
}

// Each chunk's k largest keys, in no order.
struct ChunkTops {
    ggml_tensor * local;      // I32 [k, chunks * rows]: their positions within the chunk
    ggml_tensor * positions;  // the same in F32 (exact)
    ggml_tensor * keys;       // F32 [1, k, chunks * rows]
};

ChunkTops chunk_tops(ggml_context * ctx, ggml_tensor * keys, int k, int64_t chunks) {
    const int64_t size = keys->ne[0] / chunks;
    const int64_t parts = ggml_nelements(keys) / size;
    ggml_tensor * matrix = ggml_reshape_2d(ctx, keys, size, parts);
    ggml_tensor * local = ggml_top_k(ctx, matrix, k);  // I32 [k, parts]
    return {local, ggml_cast(ctx, local, GGML_TYPE_F32),
            ggml_get_rows(ctx, ggml_reshape_3d(ctx, matrix, 1, size, parts), local)};
}

// The k largest keys of every row [n, rows] from its chunks' tops: ids (I32 [k, rows], no order)
// and keys (F32 [1, k, rows]). The same set as one top_k over the row whenever the keys are
// distinct, and always the same k-th key.
struct Selection {
    ggml_tensor * ids;
    ggml_tensor * keys;
};

Selection merge_tops(ggml_context * ctx, const ChunkTops & tops, int64_t n, int k, int64_t chunks, int64_t rows) {
    if (chunks == 1) {
        return {tops.local, tops.keys};
    }
    const int64_t size = n / chunks;
    ggml_tensor * winners = ggml_reshape_2d(ctx, tops.keys, k * chunks, rows);
    ggml_tensor * picked = ggml_top_k(ctx, winners, k);  // I32 [k, rows]: indices among the winners
    // A winner's token id: its position within the chunk + the chunk's first id (exact in float32).
    ggml_tensor * starts =
        ggml_reshape_3d(ctx, ggml_arange(ctx, 0.0f, static_cast<float>(n), static_cast<float>(size)), 1, chunks, 1);
    ggml_tensor * ids = ggml_add(ctx, ggml_reshape_3d(ctx, tops.positions, k, chunks, rows), starts);
    ids = ggml_get_rows(ctx, ggml_reshape_3d(ctx, ids, 1, k * chunks, rows), picked);  // [1, k, rows]
    Selection selection;
    selection.ids = ggml_reshape_2d(ctx, ggml_cast(ctx, ids, GGML_TYPE_I32), k, rows);
    selection.keys = ggml_get_rows(ctx, ggml_reshape_3d(ctx, winners, 1, k * chunks, rows), picked);
    return selection;
}

// Logits times each row's inverse temperature: one scale, or row_scales [1, 1, rows] per row.
// Both are the same float product, so a row gets the same bits either way.
ggml_tensor * tempered(ggml_context * ctx, ggml_tensor * values, float inverse_temperature, ggml_tensor * row_scales) {
    if (row_scales == nullptr) return ggml_scale(ctx, values, inverse_temperature);
    const int64_t rows = row_scales->ne[2];
    ggml_tensor * per_row = ggml_reshape_3d(ctx, values, ggml_nelements(values) / rows, 1, rows);
    return ggml_reshape(ctx, ggml_mul(ctx, per_row, row_scales), values);
}

}  // namespace

TieKeys::TieKeys(ggml_backend_buffer_type_t buffer_type, int64_t n_vocab) {
    ggml_init_params params = {ggml_tensor_overhead(), nullptr, true};
    context_ = ggml_init(params);
    keys_ = ggml_new_tensor_1d(context_, GGML_TYPE_F32, n_vocab);
    ggml_set_name(keys_, "led_tie_keys");
    buffer_ = ggml_backend_alloc_ctx_tensors_from_buft(context_, buffer_type);
    if (buffer_ == nullptr) {
        ggml_free(context_);
        throw std::runtime_error("LED could not allocate its tie keys (" + std::to_string(n_vocab * 4) + " bytes) on " +
                                 ggml_backend_buft_name(buffer_type));
    }
    const float unit = std::ldexp(1.0f, -tie_bits(n_vocab));
    std::vector<float> keys(static_cast<size_t>(n_vocab));
    for (int64_t id = 0; id < n_vocab; ++id) keys[id] = static_cast<float>(n_vocab - id) * unit;
    ggml_backend_tensor_set(keys_, keys.data(), 0, ggml_nbytes(keys_));
}

TieKeys::~TieKeys() {
    ggml_backend_buffer_free(buffer_);
    ggml_free(context_);
}

Candidates build_candidates(ggml_context * ctx, ggml_tensor * logits, int k, float inverse_temperature,
                            ggml_tensor * row_scales, ggml_tensor * tie_keys) {
    const int64_t n_vocab = logits->ne[0];
    const int64_t rows = ggml_nelements(logits) / n_vocab;
    const int64_t chunks = chunk_count(n_vocab, k);
    const int64_t size = n_vocab / chunks;
    const int64_t parts = chunks * rows;
    ggml_tensor * matrix = ggml_reshape_2d(ctx, logits, n_vocab, rows);
    ggml_tensor * column = ggml_reshape_3d(ctx, matrix, 1, n_vocab, rows);

    // The k most probable tokens are the k largest logits: no softmax over the row is needed to
    // choose them, and exact ties in the logits are exact ties in the probabilities.
    const ChunkTops tops = chunk_tops(ctx, matrix, k, chunks);
    const Selection largest_logits = merge_tops(ctx, tops, n_vocab, k, chunks, rows);
    ggml_tensor * ids = largest_logits.ids;
    // Which of several tokens tied at the k-th logit v make the cut is up to the kernel; the
    // documented rule is the lower ids. A second selection on keys distinct per token takes
    // exactly that set on any backend: sign(logit - v) + (n_vocab - id) * 2^-bits.
    if (k < n_vocab && tie_bits(n_vocab) <= 23) {
        ggml_tensor * values = largest_logits.keys;  // [1, k, rows]
        ggml_tensor * lowest = ggml_argmax(ctx, ggml_neg(ctx, ggml_reshape_2d(ctx, values, k, rows)));
        ggml_tensor * kth = ggml_get_rows(ctx, values, ggml_reshape_2d(ctx, lowest, 1, rows));  // [1, 1, rows]
        if (tie_keys == nullptr) {
            const float unit = std::ldexp(1.0f, -tie_bits(n_vocab));
            tie_keys = ggml_scale_bias(ctx, ggml_arange(ctx, 0.0f, static_cast<float>(n_vocab), 1.0f), -unit,
                                       static_cast<float>(n_vocab) * unit);
        }
        // v widened to a chunk's width first: ggml's CPU binary ops run a broadcast one element at
        // a time unless the broadcast operand spans whole rows.
        ggml_tensor * level = ggml_repeat(ctx, kth, ggml_new_tensor_3d(ctx, GGML_TYPE_F32, size, 1, rows));
        ggml_tensor * side = ggml_sgn(ctx, ggml_sub(ctx, ggml_reshape_3d(ctx, matrix, size, chunks, rows), level));
        ggml_tensor * keys = ggml_add(ctx, side, ggml_reshape_3d(ctx, tie_keys, size, chunks, 1));
        ggml_tensor * key_matrix = ggml_reshape_2d(ctx, keys, n_vocab, rows);
        ids = merge_tops(ctx, chunk_tops(ctx, key_matrix, k, chunks), n_vocab, k, chunks, rows).ids;
    }
    // Sorted by logit here; the host puts exact ties in id order (led::candidate_order).
    ggml_tensor * unordered = ggml_reshape_2d(ctx, ggml_get_rows(ctx, column, ids), k, rows);
    ggml_tensor * order = ggml_argsort(ctx, unordered, GGML_SORT_ORDER_DESC);
    ggml_tensor * sorted_ids =
        ggml_reshape_2d(ctx, ggml_get_rows(ctx, ggml_reshape_3d(ctx, ids, 1, k, rows), order), k, rows);
    ggml_tensor * sorted_logits =
        ggml_reshape_2d(ctx, ggml_get_rows(ctx, ggml_reshape_3d(ctx, unordered, 1, k, rows), order), k, rows);

    // The whole vocabulary's normaliser, Z = sum exp(x - m) over x = logit * inverse temperature
    // and m the row's largest x, from a softmax over each chunk (chunks are rows, so in parallel):
    // a chunk's softmax at its own largest x_c is 1 / Z_c, and Z = sum_c exp(x_c - m) * Z_c.
    ggml_tensor * chunked = ggml_reshape_2d(ctx, matrix, size, parts);
    ggml_tensor * shares;
    if (row_scales != nullptr) {
        // Each row's scale widened to a chunk's width first (see level above).
        ggml_tensor * widened = ggml_repeat(ctx, row_scales, ggml_new_tensor_3d(ctx, GGML_TYPE_F32, size, 1, rows));
        ggml_tensor * scaled = ggml_mul(ctx, ggml_reshape_3d(ctx, matrix, size, chunks, rows), widened);
        shares = ggml_soft_max_ext(ctx, ggml_reshape_2d(ctx, scaled, size, parts), nullptr, 1.0f, 0.0f);
    } else {
        shares = ggml_soft_max_ext(ctx, chunked, nullptr, inverse_temperature, 0.0f);
    }
    ggml_tensor * best = ggml_reshape_2d(ctx, ggml_argmax(ctx, ggml_reshape_2d(ctx, tops.keys, k, parts)), 1, parts);
    ggml_tensor * chunk_max = ggml_get_rows(ctx, tops.keys, best);  // [1, 1, parts]
    ggml_tensor * best_position = ggml_get_rows(ctx, ggml_reshape_3d(ctx, tops.local, 1, k, parts), best);
    ggml_tensor * top_share =
        ggml_get_rows(ctx, ggml_reshape_3d(ctx, shares, 1, size, parts), ggml_reshape_2d(ctx, best_position, 1, parts));
    // A chunk whose logits are all -inf has a NaN share and contributes exp(-inf) = 0: the clamp
    // keeps NaN out of the sum (shares lie in [1/size, 1] otherwise).
    top_share = ggml_clamp(ctx, ggml_reshape_2d(ctx, top_share, chunks, rows), FLT_MIN, 1.0f);

    ggml_tensor * x = tempered(ctx, sorted_logits, inverse_temperature, row_scales);     // [k, rows]
    ggml_tensor * largest = ggml_cont(ctx, ggml_view_2d(ctx, x, 1, rows, x->nb[1], 0));  // [1, rows]
    ggml_tensor * chunk_x =
        tempered(ctx, ggml_reshape_2d(ctx, chunk_max, chunks, rows), inverse_temperature, row_scales);
    ggml_tensor * normaliser =
        ggml_sum_rows(ctx, ggml_div(ctx, ggml_exp(ctx, ggml_sub(ctx, chunk_x, largest)), top_share));  // [1, rows]
    ggml_tensor * probabilities = ggml_div(ctx, ggml_exp(ctx, ggml_sub(ctx, x, largest)), normaliser);

    Candidates result;
    result.ids = sorted_ids;
    result.values = ggml_concat(ctx, probabilities, sorted_logits, 0);
    ggml_set_name(result.ids, "led_candidates");
    ggml_set_name(result.values, "led_candidate_values");
    return result;
}

}  // namespace led
