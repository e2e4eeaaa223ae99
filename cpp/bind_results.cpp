// Bindings of what the decode loop returns (decode_loop.h): each result a class with documented
// read-only fields. led_cpp's Python layer wraps them (GenerationResult, Timings, TraceStep).
#include "bind_record.h"
#include "decode_loop.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

namespace {

void bind_trace_step(py::module_ & module) {
    using led::TraceStep;
    led_bind::Record<TraceStep>(module, "TraceStep",
                                "One decided step under trace: each generated token, then (finish_reason 'eos') the "
                                "step that chose the end of generation, whose token is not in the text.")
        .readonly("token", &TraceStep::token, "The token this step chose.")
        .readonly("explored", &TraceStep::explored, "Whether LED explored (chose from an earlier depth's posterior).")
        .readonly("depth", &TraceStep::depth, "The depth whose posterior chose the token (0: the final layer).")
        .readonly("entropies", &TraceStep::entropies, "The d entropies H_j; empty when the depths were not evaluated.")
        .readonly("top1_probability", &TraceStep::top1_probability, "The final layer's q[0].")
        .readonly("candidates", &TraceStep::candidates, "The k candidate ids, by descending probability.")
        .readonly(
            "layer_entropies", &TraceStep::layer_entropies,
            "Layer analysis only: per layer, the final first, the normalised entropy (final norm applied, T = 1).")
        .readonly("layer_top_normalised", &TraceStep::layer_top_normalised,
                  "Layer analysis only: n_layer x top_k ids by logit, final norm applied, flattened row by row.")
        .readonly("layer_top_raw", &TraceStep::layer_top_raw,
                  "Layer analysis only: n_layer x top_k ids by logit without the final norm, flattened row by row.");
}

void bind_timings(py::module_ & module) {
    using led::Timings;
    led_bind::Record<Timings>(module, "Timings", "Token counts and wall-clock seconds of a sample's prompt and decode.")
        .readonly("prompt_tokens", &Timings::prompt_tokens, "Tokens in the prompt.")
        .readonly("prompt_seconds", &Timings::prompt_seconds, "Seconds spent prefilling the prompt.")
        .readonly("decode_tokens", &Timings::decode_tokens, "Tokens generated.")
        .readonly("decode_seconds", &Timings::decode_seconds, "Seconds from the first decode step to the end.");
}

void bind_sample_result(py::module_ & module) {
    using led::SampleResult;
    led_bind::Record<SampleResult>(module, "SampleResult", "One finished sample (led_cpp.GenerationResult wraps it).")
        .readonly("tokens", &SampleResult::tokens, "The generated token ids.")
        .readonly("text", &SampleResult::text, "Their text (stop strings and the end token excluded).")
        .readonly("finish_reason", &SampleResult::finish_reason, "'length', 'eos', 'stop' or 'cancelled'.")
        .readonly("logprobs", &SampleResult::logprobs,
                  "The final layer's log-probability of each token at the sampling temperature.")
        .readonly("sampling_logprobs", &SampleResult::sampling_logprobs,
                  "Each token's log-probability under the distribution it was drawn from (0 for greedy steps).")
        .readonly("trace", &SampleResult::trace, "A TraceStep per decided step (empty unless traced).")
        .readonly("explored_steps", &SampleResult::explored_steps, "Decided steps on which LED explored.")
        .readonly("reasoning_tokens", &SampleResult::reasoning_tokens,
                  "Tokens generated inside the reasoning segment, the end marker included.")
        .readonly("starts_in_reasoning", &SampleResult::starts_in_reasoning,
                  "The prompt left the reasoning segment open (False without markers).")
        .readonly("reasoning", &SampleResult::reasoning, "The reasoning segment's text, markers removed.")
        .readonly("answer", &SampleResult::answer, "What follows the segment (the whole text without one).")
        .readonly("seed", &SampleResult::seed, "The run's seed.")
        .readonly("timings", &SampleResult::timings, "The sample's Timings.")
        .readonly("top_logprobs", &SampleResult::top_logprobs,
                  "With top_logprobs > 0: per token, [(candidate id, log-probability at the sampling temperature)].");
}

void bind_piece(py::module_ & module) {
    using led::Piece;
    led_bind::Record<Piece>(module, "Piece",
                            "Text of one sample that became final in a decode step (whole UTF-8 characters).")
        .readonly("request", &Piece::request, "The request it belongs to (0 for a fixed run).")
        .readonly("prompt", &Piece::prompt, "The prompt's index in its request.")
        .readonly("sample", &Piece::sample, "The sample's index among the prompt's samples.")
        .readonly("text", &Piece::text, "The text (may be empty).")
        .readonly("reasoning", &Piece::reasoning, "The text lies in the reasoning segment (markers included).");
}

void bind_finished_sample(py::module_ & module) {
    using led::FinishedSample;
    led_bind::Record<FinishedSample>(module, "FinishedSample",
                                     "A sample of an open run that finished (or was cancelled) since last asked.")
        .readonly("request", &FinishedSample::request, "The request it belongs to.")
        .readonly("prompt", &FinishedSample::prompt, "The prompt's index in its request.")
        .readonly("sample", &FinishedSample::sample, "The sample's index among the prompt's samples.")
        .readonly("result", &FinishedSample::result, "Its SampleResult.");
}

void bind_run_stats(py::module_ & module) {
    using led::RunStats;
    led_bind::Record<RunStats>(module, "RunStats", "Counts of a run, over all its samples.")
        .readonly("prompt_tokens_evaluated", &RunStats::prompt_tokens_evaluated,
                  "Tokens submitted to llama_decode for prompts.")
        .readonly("decode_tokens_evaluated", &RunStats::decode_tokens_evaluated,
                  "Tokens submitted to llama_decode for generated tokens.")
        .readonly("decode_calls", &RunStats::decode_calls, "llama_decode calls.")
        .readonly("explore_graphs", &RunStats::explore_graphs, "Depth projection graphs run (on_explore).")
        .readonly("every_step", &RunStats::every_step, "The depths were projected in the model graph every step.")
        .readonly("shared_head_product", &RunStats::shared_head_product,
                  "... through the model's own head product, widened.")
        .readonly("explored_steps", &RunStats::explored_steps, "Decided steps on which LED explored.")
        .readonly("decided_steps", &RunStats::decided_steps, "Decided steps (tokens, and steps that chose the end).")
        .readonly("n_parallel", &RunStats::n_parallel, "Sequences the run decodes together at most.")
        .readonly("peak_active", &RunStats::peak_active, "Most sequences decoding at once.")
        .readonly("peak_requests_per_step", &RunStats::peak_requests_per_step,
                  "Most requests whose samples one decode step served together.")
        .readonly("graph_switches", &RunStats::graph_switches,
                  "Times the graph was set up for another mix of in-graph settings.")
        .readonly("prompt_tokens_reused", &RunStats::prompt_tokens_reused,
                  "Prompt tokens whose KV an earlier prompt left (RunOptions.cache_prompt).");
}

}  // namespace

void register_results(py::module_ & module) {
    bind_trace_step(module);
    bind_timings(module);
    bind_sample_result(module);
    bind_piece(module);
    bind_finished_sample(module);
    bind_run_stats(module);
}
