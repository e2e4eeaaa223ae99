// The per-depth logits of a prompt's last token, through the same capture and projection LED
// decodes with: for tests and analyses, never used while decoding.
#pragma once

#include "led_graph.h"
#include "model.h"

#include <vector>

namespace led {

// Per-depth logits [d][n_vocab] at the last token of `tokens` (row 0 is the model's final layer
// through the same replayed head). Copies full-vocabulary rows to the host.
std::vector<float> depth_logits(Model & model, const std::vector<llama_token> & tokens, int d, bool ln,
                                LayerCounting counting);

}  // namespace led
