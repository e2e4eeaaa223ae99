// The decode loop: an engine over a queue of requests (each: prompts, n samples of each, its own
// config, seed, stop strings and lengths) decoded together in one llama.cpp context, with one
// prefill per prompt shared by its samples, continuous batching across requests, per-sample
// random streams, reasoning-segment state, stop strings and streaming UTF-8 text.
#pragma once

#include "led_math.h"
#include "led_sampler.h"
#include "model.h"
#include "random_streams.h"
#include "reasoning.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace led {

// llama_decode was stopped by the model's abort or interrupt check.
struct Interrupted : std::runtime_error {
    Interrupted() : std::runtime_error("generation was interrupted") {}
};

struct SamplingSpec {
    bool led = false;
    float temperature = 0.6f;  // 0 = greedy
    // standard sampling
    int top_k = 20;  // 0 = whole vocabulary
    float top_p = 0.95f;
    float min_p = 0.0f;
    // LED
    int d = 8;
    int k = 8;
    bool ln = false;
    bool exploit = true;
    bool think_only = true;
    DepthRule depth_rule = DepthRule::max_entropy;
    int fixed_depth = 0;
    LayerCounting layer_counting = LayerCounting::paper;
    // Reasoning markers for every config (LED_SPEC "Reasoning segment"); an empty think_end: the
    // model has none, so there is no segment and LED may explore on every step.
    std::string think_start;
    std::string think_end;
};

struct RunOptions {
    int max_tokens = 256;
    uint64_t seed = 0;
    std::vector<std::string> stop;
    bool trace = false;
    int n_parallel = 0;      // 0 = min(samples, 16); each decoding sample has its own KV stream
    int analysis_top_k = 0;  // > 0: per-layer statistics of every step in the trace (standard sampling)
    int top_logprobs = 0;    // > 0: per token, the first top_logprobs candidates and their log-probabilities
    // Start the prompt from the KV of the longest prefix it shares with the prompt evaluated
    // before it: in this run, or the last run's on this model (llama-server's cache_prompt). The
    // logits of a prompt evaluated in two parts may differ from a whole evaluation's in the last bits.
    bool cache_prompt = false;
};

// One per decided step: every generated token, then the step that chose the end of generation
// (finish_reason "eos"), whose token is not in the text.
struct TraceStep {
    int32_t token = -1;
    bool explored = false;
    int depth = 0;                 // the depth whose posterior chose the token (0 = final layer)
    std::vector<float> entropies;  // d values; empty when the depths were not evaluated
    float top1_probability = 0.0f;
    std::vector<int32_t> candidates;
    // analysis_top_k > 0 only: per layer, final first (n_layer values, n_layer x top_k ids)
    std::vector<float> layer_entropies;
    std::vector<int32_t> layer_top_normalised;
    std::vector<int32_t> layer_top_raw;
};

struct Timings {
    int prompt_tokens = 0;
    double prompt_seconds = 0.0;
    int decode_tokens = 0;
    double decode_seconds = 0.0;
};

struct SampleResult {
    std::vector<int32_t> tokens;
    std::string text;
    std::string finish_reason;
    std::vector<float> logprobs;
    // log-probability of each token under the distribution it was drawn from (0 for greedy steps)
    std::vector<float> sampling_logprobs;
    std::vector<TraceStep> trace;
    int explored_steps = 0;
    int reasoning_tokens = 0;
    bool starts_in_reasoning = false;  // the prompt left the segment open (false without markers)
    std::string reasoning;             // the segment's text, markers removed
    std::string answer;                // what follows it (the whole text without a segment)
    uint64_t seed = 0;
    Timings timings;
    // top_logprobs > 0: per token, (candidate id, log-probability at the sampling temperature)
    std::vector<std::vector<std::pair<int32_t, float>>> top_logprobs;
};

struct Piece {
    int prompt;
    int sample;
    std::string text;
    bool reasoning = false;  // the text lies in the reasoning segment (markers included)
    int64_t request = 0;
};

// A sample that finished (or was cancelled) since the engine was last asked.
struct FinishedSample {
    int64_t request = 0;
    int prompt = 0;
    int sample = 0;
    SampleResult result;
};

struct RunStats {
    int64_t prompt_tokens_evaluated = 0;  // tokens submitted to llama_decode for prompts
    int64_t decode_tokens_evaluated = 0;  // tokens submitted for generated tokens
    int64_t decode_calls = 0;
    int64_t explore_graphs = 0;        // depth projection graphs run
    bool every_step = false;           // the depths projected in the model graph every step
    bool shared_head_product = false;  // ... through the model's own head product, widened
    int64_t explored_steps = 0;
    int64_t decided_steps = 0;
    int n_parallel = 0;
    int peak_active = 0;
    int peak_requests_per_step = 0;    // most requests whose samples one decode step served together
    int64_t graph_switches = 0;        // times the graph was set up for another mix of settings
    int64_t prompt_tokens_reused = 0;  // prompt tokens whose KV an earlier prompt left (cache_prompt)
};

// Decodes tokens[from, from + count) of one sequence at their positions; only the prompt's last
// token asks for an output. Returns llama_decode's status.
int32_t decode_prompt_chunk(llama_context * context, const std::vector<llama_token> & tokens, size_t from, size_t count,
                            llama_seq_id sequence);

// The engine. A fixed run (the first constructor: generate_batch) is one request that finishes
// when its samples do; an open run (the second: the server) takes requests until closed. Samples
// of every request share the batch: each keeps its request's config, seed stream, stop strings
// and lengths. Requests with different in-graph settings (temperature, candidates, LED's d, ln,
// layer counting, standard or LED) share it too: the graph serves the union of what the running
// rows need, with per-row inputs where they differ (GraphSettings), and each row reads its own.
class BatchRun {
public:
    BatchRun(Model & model, std::vector<std::vector<llama_token>> prompts, int n_samples, const SamplingSpec & spec,
             const RunOptions & options);
    // An open engine of n_parallel sequences, each up to the model's n_ctx tokens.
    BatchRun(Model & model, int n_parallel);
    ~BatchRun();
    BatchRun(const BatchRun &) = delete;
    BatchRun & operator=(const BatchRun &) = delete;

    // Queues a request (validated here: throws std::invalid_argument naming the problem) and
    // returns its id. Sample s of prompt p draws from the stream of (options.seed, p, s).
    int64_t submit(std::vector<std::vector<llama_token>> prompts, int n_samples, const SamplingSpec & spec,
                   const RunOptions & options);
    // Stops a request's samples and frees their cells; they finish with reason "cancelled".
    void cancel(int64_t request);

    // Runs one llama_decode (a prompt chunk or one step of every active sample) and returns the
    // text that became final.
    std::vector<Piece> advance();
    bool finished() const { return closed_ || close_requested_ || (!open_ && remaining_ == 0); }
    // Nothing queued or decoding: advance() would do nothing.
    bool idle() const { return remaining_ == 0; }
    int active() const { return active_; }
    int waiting() const { return remaining_ - active_; }
    void close();

    // Samples finished since the last call (open runs; a fixed run keeps them in results()).
    std::vector<FinishedSample> take_finished();
    const std::vector<std::vector<SampleResult>> & results() const;
    const RunStats & stats() const { return stats_; }

private:
    struct StepData {
        std::vector<int32_t> candidates;
        std::vector<float> probabilities;
        std::vector<float> logits;
        std::vector<float> depth_probabilities;  // every-step projection: depths 1..d-1, [d-1][k]
        int capture_slot = 0;
    };
    enum class Status { waiting, active, done };
    struct Request {
        int64_t id = 0;
        std::vector<std::vector<llama_token>> prompts;
        SamplingSpec spec;
        RunOptions options;
        GraphSettings graph;        // what it needs from the model graph
        std::vector<int> captured;  // LED: its depths 1..d-1 among the graph's captured layers
        std::vector<std::vector<SampleResult>> results;
        std::vector<double> prompt_seconds;
        size_t max_stop = 0;
        int remaining = 0;
        Marker think_start;  // the reasoning markers this request's config resolves to
        Marker think_end;
        std::vector<bool> prompt_open;  // per prompt: the first generated token is inside the segment
    };
    struct Sample {
        Request * request = nullptr;
        int prompt = 0;
        int index = 0;
        Status status = Status::waiting;
        int slot = -1;
        llama_pos position = 0;
        ReasoningTracker reasoning;
        bool has_step = false;
        StepData step;
        llama_token next_token = 0;
        std::string bytes;
        size_t emitted = 0;
        std::chrono::steady_clock::time_point started;
    };

    GraphSettings check_request(const std::vector<std::vector<llama_token>> & prompts, int n_samples,
                                const SamplingSpec & spec, const RunOptions & options) const;
    GraphSettings graph_settings(const SamplingSpec & spec, const RunOptions & options) const;
    void start(int n_parallel, int32_t n_ctx_seq);
    // The graph settings serving every request of `members` at once.
    GraphSettings plan_for(const std::vector<Request *> & members) const;
    // Sets the graph up for the running requests, the prompt being prefilled and `joining`. Call
    // when no step is pending: another graph drops the captured depths.
    void serve(Request * joining);
    // A prefilled prompt's step waits in the holder slot for samples not yet admitted.
    bool holder_step_pending() const;
    void bind_slot(int slot, const Request & request);
    bool prefill_chunk();
    // submit() after check_request(): queues the request.
    int64_t queue(std::vector<std::vector<llama_token>> prompts, int n_samples, const SamplingSpec & spec,
                  const RunOptions & options, const GraphSettings & settings);
    // Empties the holder slot for the prompt but for the KV of the longest prefix it shares with
    // holder_tokens_ (reuse: cache_prompt), of which the prompt's last token is never part (its
    // output is needed). Returns how many tokens were kept.
    size_t keep_prefix(const std::vector<llama_token> & prompt, bool reuse);
    // A run of one sample (Model.generate) with cache_prompt leaves the sample's sequence, its
    // prompt and the tokens decoded after it, in the holder slot for the model's next generation:
    // a chat's next turn, which repeats the answer, then evaluates only the new turn. (A copy of
    // the sample's KV stream, so only when asked.)
    void keep_sample(const Sample & sample, const std::vector<llama_token> & tokens);
    void admit();
    // One step of every sample with a step read: choose (draws, gate, exploit token), the
    // depths of those that need them (project_depths, explore_depths), then record the step,
    // append the token and check whether the sample stops.
    struct Decision {
        Sample * sample;
        int index = 0;
        bool explored = false;
        bool needs_depths = false;  // explores, or the trace wants the entropies
        int depth = 0;
        float u_token = 0.0f;
        float u_depth = 0.0f;
        std::vector<float> depth_probabilities;  // on_explore: depths 1..d-1 from the second graph
        std::vector<float> entropies;
        float sampling_logprob = 0.0f;  // under the distribution the token was drawn from
    };
    void decide(std::vector<Piece> & pieces);
    Decision choose(Sample & sample);
    void project_depths(std::vector<Decision> & decisions);
    void explore_depths(Decision & decision);
    llama_token record_step(Decision & decision);                     // counts and traces the step; returns its token
    size_t append_token(Sample & sample, const Decision & decision);  // returns where its bytes begin
    const char * stop_reason(Sample & sample, size_t before);         // "stop", "length" or nullptr
    void decode_active();
    void read_step(int batch_index, StepData & step, int capture_slot, const Request & request);
    void finish(Sample & sample, const char * reason, std::vector<Piece> & pieces);
    void emit(Sample & sample, bool final, std::vector<Piece> & pieces);
    void check_graph_state() const;

    Model & model_;
    llama_context * context_ = nullptr;
    std::unique_ptr<Model::Lease> lease_;
    GraphState * graph_state_ = nullptr;  // owned by the model, shared by its generations
    std::map<int64_t, std::unique_ptr<Request>> requests_;
    std::deque<std::unique_ptr<Sample>> waiting_;  // in request order, then prompt, then sample
    std::vector<std::unique_ptr<Sample>> running_;
    std::vector<FinishedSample> finished_;
    std::vector<SampleStreams> streams_;  // per slot, so waiting samples cost no state
    std::vector<int> free_slots_;
    bool open_ = false;
    int64_t next_request_ = 0;
    int n_parallel_ = 1;
    int holder_slot_ = 0;
    Request * holder_request_ = nullptr;
    int holder_prompt_ = -1;
    size_t holder_done_ = 0;
    std::vector<llama_token> holder_tokens_;  // the tokens whose KV the holder slot holds, from position 0
    StepData holder_step_;
    std::vector<int> order_;  // read_step's scratch for candidate_order
    int remaining_ = 0;
    int active_ = 0;
    std::atomic<bool> closed_{false};
    std::atomic<bool> close_requested_{false};
    std::mutex mutex_;  // advance() and close() may come from different threads
    RunStats stats_;
};

}  // namespace led
