#include "decode_loop.h"

#include "utf8.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <tuple>

namespace led {

namespace {

// Samples decoded together when the caller does not say (each has its own KV stream).
constexpr int kDefaultParallel = 16;

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Standard sampling over the sorted candidates: top-p and min-p on the renormalised
// candidates (temperature applied first, as transformers and vLLM do). Returns how many of the
// leading candidates the draw is made from.
int kept_standard(const std::vector<float> & q, float top_p, float min_p) {
    const int k = static_cast<int>(q.size());
    float total = 0.0f;
    for (float p : q) total += p;
    int keep = k;
    if (top_p < 1.0f) {
        float running = 0.0f;
        for (int i = 0; i < k; ++i) {
            if (running >= top_p * total) {
                keep = i;
                break;
            }
            running += q[i];
        }
    }
    if (min_p > 0.0f) {
        int i = 1;
        while (i < keep && q[i] >= min_p * q[0]) ++i;
        keep = i;
    }
    return std::max(keep, 1);
}

// log of weights[index] / sum(weights[0, n)): the log-probability of a draw from those weights.
float log_share(const float * weights, int n, int index) {
    float total = 0.0f;
    for (int i = 0; i < n; ++i) total += weights[i];
    return std::log(weights[index]) - std::log(total);
}

}  // namespace

int32_t decode_prompt_chunk(llama_context * context, const std::vector<llama_token> & tokens, size_t from, size_t count,
                            llama_seq_id sequence) {
    llama_batch batch = llama_batch_init(static_cast<int32_t>(count), 0, 1);
    for (size_t i = 0; i < count; ++i) {
        batch.token[i] = tokens[from + i];
        batch.pos[i] = static_cast<llama_pos>(from + i);
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = sequence;
        batch.logits[i] = from + i + 1 == tokens.size();
    }
    batch.n_tokens = static_cast<int32_t>(count);
    const int32_t status = llama_decode(context, batch);
    llama_batch_free(batch);
    return status;
}

BatchRun::BatchRun(Model & model, std::vector<std::vector<llama_token>> prompts, int n_samples,
                   const SamplingSpec & spec, const RunOptions & options)
    : model_(model) {
    const GraphSettings settings = check_request(prompts, n_samples, spec, options);
    size_t longest = 0;
    for (const auto & prompt : prompts) longest = std::max(longest, prompt.size());
    const int total = static_cast<int>(prompts.size()) * n_samples;
    start(std::min(options.n_parallel > 0 ? options.n_parallel : kDefaultParallel, total),
          static_cast<int32_t>(longest) + options.max_tokens + 1);
    graph_state_ = &model_.attach_samplers(settings);
    check_graph_state();
    queue(std::move(prompts), n_samples, spec, options, settings);
}

BatchRun::BatchRun(Model & model, int n_parallel) : model_(model) {
    if (n_parallel < 1) throw std::invalid_argument("n_parallel must be at least 1");
    open_ = true;
    start(n_parallel, model_.options().n_ctx + 1);
}

void BatchRun::start(int n_parallel, int32_t n_ctx_seq) {
    n_parallel_ = n_parallel;
    stats_.n_parallel = n_parallel_;
    holder_slot_ = n_parallel_;
    lease_ = std::make_unique<Model::Lease>(model_);
    context_ = model_.context(n_parallel_ + 1, n_ctx_seq, holder_slot_);
    // The last generation's prompt, where it left it in this run's holder slot (cache_prompt).
    if (model_.kept_prompt.sequence == holder_slot_) holder_tokens_ = std::move(model_.kept_prompt.tokens);
    model_.kept_prompt = Model::KeptPrompt{};
    for (int slot = n_parallel_ - 1; slot >= 0; --slot) free_slots_.push_back(slot);
    streams_.resize(n_parallel_);
}

GraphSettings BatchRun::graph_settings(const SamplingSpec & spec, const RunOptions & options) const {
    const int n_vocab = model_.n_vocab();
    const int n_layer = model_.n_layer();
    GraphSettings settings;
    const bool greedy = spec.temperature == 0.0f;
    settings.inverse_temperature = greedy ? 1.0f : 1.0f / spec.temperature;
    settings.n_slots = n_parallel_ + 1;
    settings.n_threads = model_.options().n_threads;
    settings.n_embd = model_.n_embd();
    settings.capture.n_layer = n_layer;
    if (spec.led) {
        settings.capture.layers = depth_layers(n_layer, spec.d, spec.layer_counting);
        if (spec.k < 1 || spec.k > n_vocab) throw std::invalid_argument("k must lie in [1, n_vocab]");
        settings.k = spec.k;
        settings.ln = spec.ln;
        // The every-step values (k logits, then k probabilities at each of d-1 depths) must fit a
        // row of llama.cpp's sampled-logits buffer.
        const bool fits = static_cast<int64_t>(spec.k) * spec.d <= n_vocab;
        const Projection projection = model_.options().led_projection;
        if (projection == Projection::every_step && !fits) {
            throw std::invalid_argument("led_projection='every_step' needs k*d <= n_vocab; lower k or d, or load the "
                                        "model with led_projection='on_explore'");
        }
        settings.projection = fits && spec.d > 1 ? projection : Projection::on_explore;
    } else {
        if (spec.top_k < 0 || spec.top_k > n_vocab) throw std::invalid_argument("top_k must lie in [0, n_vocab]");
        settings.k = greedy ? 1 : (spec.top_k == 0 ? n_vocab : spec.top_k);
        if (options.analysis_top_k > 0) {
            if (options.analysis_top_k > n_vocab) throw std::invalid_argument("the analysis top_k exceeds n_vocab");
            // Every layer's output, the final layer first: the paper's per-layer analyses.
            for (int il = n_layer - 1; il >= 0; --il) settings.capture.layers.push_back(il);
        }
    }
    if (spec.led && options.analysis_top_k > 0) {
        throw std::invalid_argument("layer analysis runs with standard sampling (SamplingConfig), not LED");
    }
    return settings;
}

GraphSettings BatchRun::check_request(const std::vector<std::vector<llama_token>> & prompts, int n_samples,
                                      const SamplingSpec & spec, const RunOptions & options) const {
    const int n_ctx = model_.options().n_ctx;
    const int n_vocab = model_.n_vocab();
    if (prompts.empty()) throw std::invalid_argument("no prompts were given");
    if (n_samples < 1) throw std::invalid_argument("n must be at least 1");
    if (options.max_tokens < 1) throw std::invalid_argument("max_tokens must be at least 1");
    if (options.top_logprobs < 0) throw std::invalid_argument("top_logprobs must be >= 0");
    for (size_t p = 0; p < prompts.size(); ++p) {
        const auto & prompt = prompts[p];
        if (prompt.empty()) {
            throw std::invalid_argument("prompt " + std::to_string(p) + " has no tokens; give at least one token");
        }
        for (llama_token token : prompt) {
            if (token < 0 || token >= n_vocab) {
                throw std::invalid_argument("prompt " + std::to_string(p) + " holds token id " + std::to_string(token) +
                                            ", outside the vocabulary [0, " + std::to_string(n_vocab) + ")");
            }
        }
        if (prompt.size() + static_cast<size_t>(options.max_tokens) > static_cast<size_t>(n_ctx)) {
            throw std::invalid_argument(
                "prompt " + std::to_string(p) + " has " + std::to_string(prompt.size()) + " tokens and max_tokens is " +
                std::to_string(options.max_tokens) + ": together they exceed the context of " + std::to_string(n_ctx) +
                " tokens; shorten the prompt, lower max_tokens or load the model with a larger n_ctx");
        }
    }
    for (const auto & stop : options.stop) {
        if (stop.empty()) throw std::invalid_argument("stop strings must not be empty");
    }
    return graph_settings(spec, options);
}

int64_t BatchRun::submit(std::vector<std::vector<llama_token>> prompts, int n_samples, const SamplingSpec & spec,
                         const RunOptions & options) {
    const GraphSettings settings = check_request(prompts, n_samples, spec, options);
    return queue(std::move(prompts), n_samples, spec, options, settings);
}

int64_t BatchRun::queue(std::vector<std::vector<llama_token>> prompts, int n_samples, const SamplingSpec & spec,
                        const RunOptions & options, const GraphSettings & settings) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_ || close_requested_) throw std::runtime_error("the engine is closed");
    auto request = std::make_unique<Request>();
    request->id = next_request_++;
    request->graph = settings;
    for (const auto & stop : options.stop) request->max_stop = std::max(request->max_stop, stop.size());
    request->spec = spec;
    request->options = options;
    request->prompts = std::move(prompts);
    const int n_prompts = static_cast<int>(request->prompts.size());
    request->results.assign(n_prompts, std::vector<SampleResult>(n_samples));
    request->prompt_seconds.assign(n_prompts, 0.0);
    request->remaining = n_prompts * n_samples;
    request->think_start = resolve_marker(model_, spec.think_start);
    request->think_end = resolve_marker(model_, spec.think_end);
    for (const auto & prompt : request->prompts) {
        request->prompt_open.push_back(
            prompt_leaves_reasoning_open(model_, request->think_start, request->think_end, prompt));
    }
    for (int p = 0; p < n_prompts; ++p) {
        for (int s = 0; s < n_samples; ++s) {
            auto sample = std::make_unique<Sample>();
            sample->request = request.get();
            sample->prompt = p;
            sample->index = s;
            sample->reasoning = ReasoningTracker(&request->think_start, &request->think_end, request->prompt_open[p]);
            request->results[p][s].seed = options.seed;
            request->results[p][s].starts_in_reasoning = request->prompt_open[p] && !request->think_end.empty();
            waiting_.push_back(std::move(sample));
        }
    }
    remaining_ += request->remaining;
    const int64_t id = request->id;
    requests_.emplace(id, std::move(request));
    return id;
}

void BatchRun::cancel(int64_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto found = requests_.find(id);
    if (found == requests_.end() || closed_) return;
    Request * request = found->second.get();
    std::vector<Piece> pieces;  // a cancelled sample's last text goes nowhere
    for (auto & sample : running_) {
        if (sample->request == request && sample->status == Status::active) finish(*sample, "cancelled", pieces);
    }
    for (auto & sample : waiting_) {
        if (sample->request == request) finish(*sample, "cancelled", pieces);
    }
    const auto done = [](const std::unique_ptr<Sample> & sample) { return sample->status == Status::done; };
    waiting_.erase(std::remove_if(waiting_.begin(), waiting_.end(), done), waiting_.end());
    running_.erase(std::remove_if(running_.begin(), running_.end(), done), running_.end());
    if (holder_request_ == request) holder_request_ = nullptr;  // its prefill is no longer wanted
}

std::vector<FinishedSample> BatchRun::take_finished() {
    std::lock_guard<std::mutex> lock(mutex_);
    return std::move(finished_);
}

const std::vector<std::vector<SampleResult>> & BatchRun::results() const {
    static const std::vector<std::vector<SampleResult>> none;
    const auto found = requests_.find(0);
    return found == requests_.end() ? none : found->second->results;
}

BatchRun::~BatchRun() { close(); }

void BatchRun::close() {
    if (closed_) return;
    // From another thread while advance() decodes: stop the decode, then wait for advance().
    close_requested_ = true;
    model_.abort_requested = true;
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    if (context_ != nullptr) {
        // Every sample's cells are freed; the holder slot keeps the last prompt for the next
        // generation of the model to start from (cache_prompt).
        llama_memory_t memory = llama_get_memory(context_);
        for (llama_seq_id sequence = 0; sequence < n_parallel_; ++sequence) {
            llama_memory_seq_rm(memory, sequence, -1, -1);
        }
        if (holder_tokens_.empty()) {
            llama_memory_seq_rm(memory, holder_slot_, -1, -1);
        } else {
            model_.kept_prompt = Model::KeptPrompt{holder_slot_, std::move(holder_tokens_)};
        }
        context_ = nullptr;
    }
    model_.abort_requested = false;
    lease_.reset();
    closed_ = true;
}

void BatchRun::check_graph_state() const {
    if (!graph_state_->error().empty()) {
        throw std::runtime_error("LED cannot run on this " + model_.architecture() +
                                 " model: " + graph_state_->error());
    }
}

void BatchRun::read_step(int batch_index, StepData & step, int capture_slot, const Request & request) {
    // The graph returns the candidates of the row that needs the most; this row takes its own k,
    // a prefix of them once they are in the documented order.
    const int captured_k = graph_state_->settings().k;
    const int k = std::min(request.graph.k, captured_k);
    const llama_token * candidates = llama_get_sampled_candidates_ith(context_, batch_index);
    const float * probabilities = llama_get_sampled_probs_ith(context_, batch_index);
    const float * logits = llama_get_sampled_logits_ith(context_, batch_index);
    const uint32_t n_candidates = llama_get_sampled_candidates_count_ith(context_, batch_index);
    if (candidates == nullptr || probabilities == nullptr || logits == nullptr ||
        n_candidates != static_cast<uint32_t>(captured_k)) {
        check_graph_state();
        throw std::runtime_error("llama.cpp returned no candidates from the LED sampler for output " +
                                 std::to_string(batch_index));
    }
    const int captured_depths = static_cast<int>(graph_state_->settings().capture.layers.size());
    const int depths = graph_state_->every_step() && request.spec.led ? request.spec.d - 1 : 0;
    if (depths > 0) {
        const size_t expected = static_cast<size_t>(captured_k) * (1 + captured_depths);
        if (llama_get_sampled_logits_count_ith(context_, batch_index) != expected) {
            throw std::runtime_error("llama.cpp returned no depth probabilities from the LED sampler for output " +
                                     std::to_string(batch_index));
        }
    }
    // Exact probability ties come back in no fixed order: put the lower id first (led_math).
    if (!candidate_order(candidates, probabilities, captured_k, order_)) {
        order_.resize(captured_k);
        for (int c = 0; c < captured_k; ++c) order_[c] = c;
    }
    if (k < captured_k && probabilities[order_[k - 1]] == probabilities[order_[k]]) {
        // A tie across this row's cut: the lower ids make it, as the graph's own cut takes them
        // (zero-probability runs included, which candidate_order leaves as they come).
        const float tied = probabilities[order_[k - 1]];
        int start = k - 1, end = k + 1;
        while (start > 0 && probabilities[order_[start - 1]] == tied) --start;
        while (end < captured_k && probabilities[order_[end]] == tied) ++end;
        std::sort(order_.begin() + start, order_.begin() + end,
                  [candidates](int a, int b) { return candidates[a] < candidates[b]; });
    }
    step.candidates.resize(k);
    step.probabilities.resize(k);
    step.logits.resize(k);
    step.depth_probabilities.resize(static_cast<size_t>(depths) * k);
    for (int c = 0; c < k; ++c) {
        const int from = order_[c];
        step.candidates[c] = candidates[from];
        step.probabilities[c] = probabilities[from];
        step.logits[c] = logits[from];
        for (int j = 0; j < depths; ++j) {
            const size_t column = static_cast<size_t>(request.captured[j]);
            step.depth_probabilities[static_cast<size_t>(j) * k + c] = logits[captured_k + column * captured_k + from];
        }
    }
    step.capture_slot = capture_slot;
}

GraphSettings BatchRun::plan_for(const std::vector<Request *> & members) const {
    // One request: its own settings, so a batch of one setting builds the graph it built alone.
    GraphSettings plan = members.front()->graph;
    if (members.size() == 1) return plan;
    bool captures = false;
    plan.capture.layers.clear();
    for (const Request * request : members) {
        const GraphSettings & own = request->graph;
        plan.k = std::max(plan.k, own.k);
        plan.per_row_temperature = plan.per_row_temperature || own.inverse_temperature != plan.inverse_temperature;
        if (own.capture.layers.empty()) continue;
        if (!captures) {
            plan.projection = own.projection;
            plan.ln = own.ln;
            captures = true;
        } else {
            if (own.projection != plan.projection) plan.projection = Projection::on_explore;
            plan.per_row_ln = plan.per_row_ln || own.ln != plan.ln;
        }
        for (int il : own.capture.layers) {
            if (std::find(plan.capture.layers.begin(), plan.capture.layers.end(), il) == plan.capture.layers.end()) {
                plan.capture.layers.push_back(il);
            }
        }
    }
    if (!captures) {
        plan.projection = Projection::on_explore;
        plan.ln = false;
    }
    // The every-step values (k logits, then k probabilities per captured depth) must fit a row of
    // llama.cpp's sampled-logits buffer; else the depths go through the second graph.
    const int64_t values = static_cast<int64_t>(plan.k) * (1 + static_cast<int64_t>(plan.capture.layers.size()));
    if (values > model_.n_vocab()) plan.projection = Projection::on_explore;
    return plan;
}

bool BatchRun::holder_step_pending() const {
    return holder_request_ != nullptr && !waiting_.empty() && waiting_.front()->request == holder_request_ &&
           waiting_.front()->prompt == holder_prompt_ &&
           holder_done_ == holder_request_->prompts[holder_prompt_].size();
}

void BatchRun::serve(Request * joining) {
    std::vector<Request *> members;
    const auto add = [&members](Request * request) {
        if (request != nullptr && std::find(members.begin(), members.end(), request) == members.end()) {
            members.push_back(request);
        }
    };
    for (const auto & sample : running_) {
        if (sample->status == Status::active) add(sample->request);
    }
    add(holder_request_);
    add(joining);
    if (members.empty()) return;
    GraphSettings plan = plan_for(members);
    if (graph_state_ != nullptr) plan.n_slots = graph_state_->settings().n_slots;  // the model sizes it to the context
    if (graph_state_ == nullptr || !(graph_state_->settings() == plan)) {
        graph_state_ = &model_.attach_samplers(plan);
        ++stats_.graph_switches;
        check_graph_state();
    }
    const std::vector<int> & layers = graph_state_->settings().capture.layers;
    for (Request * request : members) {
        request->captured.clear();
        if (!request->spec.led) continue;
        for (int il : depth_layers(model_.n_layer(), request->spec.d, request->spec.layer_counting)) {
            request->captured.push_back(static_cast<int>(std::find(layers.begin(), layers.end(), il) - layers.begin()));
        }
    }
    for (const auto & sample : running_) {
        if (sample->status == Status::active) bind_slot(sample->slot, *sample->request);
    }
    if (holder_request_ != nullptr) bind_slot(holder_slot_, *holder_request_);
}

void BatchRun::bind_slot(int slot, const Request & request) {
    graph_state_->set_slot(slot, request.graph.inverse_temperature, request.graph.ln);
}

bool BatchRun::prefill_chunk() {
    if (waiting_.empty()) return false;
    const Sample & next = *waiting_.front();
    Request * request = next.request;
    const int wanted = next.prompt;
    const auto & prompt = request->prompts[wanted];
    if (holder_request_ == request && holder_prompt_ == wanted && holder_done_ == prompt.size()) return false;
    if (holder_request_ != request || holder_prompt_ != wanted) {
        // Start the next prompt once a slot is free for one of its samples, with the graph set up
        // for it beside the running requests (no step is pending here: advance decides first).
        if (free_slots_.empty()) return false;
        serve(request);
        bind_slot(holder_slot_, *request);
        holder_request_ = request;
        holder_prompt_ = wanted;
        holder_done_ = keep_prefix(prompt, request->options.cache_prompt);
        stats_.prompt_tokens_reused += static_cast<int64_t>(holder_done_);
    }
    const auto start = std::chrono::steady_clock::now();
    const size_t n_batch = std::min<size_t>(model_.options().n_batch, model_.options().n_ctx);
    const size_t count = std::min(n_batch, prompt.size() - holder_done_);
    const int32_t status = decode_prompt_chunk(context_, prompt, holder_done_, count, holder_slot_);
    if (status != 0) {
        holder_tokens_.clear();  // the slot's KV is not known to hold a prefix any more
    } else {
        holder_tokens_.insert(holder_tokens_.end(), prompt.begin() + static_cast<std::ptrdiff_t>(holder_done_),
                              prompt.begin() + static_cast<std::ptrdiff_t>(holder_done_ + count));
    }
    check_graph_state();
    if (status == 2) throw Interrupted();
    if (status != 0) {
        throw std::runtime_error("llama_decode failed on the prompt (status " + std::to_string(status) + ")");
    }
    stats_.prompt_tokens_evaluated += static_cast<int64_t>(count);
    holder_done_ += count;
    request->prompt_seconds[wanted] += seconds_since(start);
    if (holder_done_ == prompt.size()) {
        read_step(static_cast<int>(count) - 1, holder_step_, holder_slot_, *request);
    }
    return true;
}

size_t BatchRun::keep_prefix(const std::vector<llama_token> & prompt, bool reuse) {
    llama_memory_t memory = llama_get_memory(context_);
    size_t common = 0;
    if (reuse) {
        const size_t limit = std::min(holder_tokens_.size(), prompt.size() - 1);
        while (common < limit && holder_tokens_[common] == prompt[common]) ++common;
        // Cutting a tail off (as llama-server decides): a sliding-window cache may have dropped
        // positions the prefix's last tokens attend to, and a recurrent state holds only its last
        // position, so it must reach back to the window before the cut.
        if (common > 0 && common < holder_tokens_.size()) {
            const int window = std::max(1, llama_model_n_swa(model_.model()));
            const llama_pos earliest = llama_memory_seq_pos_min(memory, holder_slot_);
            if (earliest > std::max(0, static_cast<int>(common) - window)) common = 0;
        }
    }
    // llama.cpp refuses to drop a tail it cannot roll back (it says so).
    if (common == 0 || !llama_memory_seq_rm(memory, holder_slot_, static_cast<llama_pos>(common), -1)) {
        llama_memory_seq_rm(memory, holder_slot_, -1, -1);
        common = 0;
    }
    holder_tokens_.resize(common);
    return common;
}

void BatchRun::keep_sample(const Sample & sample, const std::vector<llama_token> & tokens) {
    const auto & prompt = sample.request->prompts[sample.prompt];
    const size_t fed = static_cast<size_t>(sample.position) - prompt.size();  // tokens decoded after the prompt
    if (fed > tokens.size()) return;  // not the tokens it decoded: the holder keeps the prompt
    llama_memory_t memory = llama_get_memory(context_);
    llama_memory_seq_rm(memory, holder_slot_, -1, -1);
    llama_memory_seq_cp(memory, sample.slot, holder_slot_, -1, -1);
    holder_tokens_ = prompt;
    holder_tokens_.insert(holder_tokens_.end(), tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(fed));
}

void BatchRun::admit() {
    while (!waiting_.empty() && !free_slots_.empty()) {
        Sample & sample = *waiting_.front();
        if (sample.request != holder_request_ || sample.prompt != holder_prompt_ ||
            holder_done_ != sample.request->prompts[holder_prompt_].size()) {
            return;
        }
        sample.slot = free_slots_.back();
        free_slots_.pop_back();
        streams_[sample.slot].seed(sample.request->options.seed, sample.prompt, sample.index);
        llama_memory_seq_cp(llama_get_memory(context_), holder_slot_, sample.slot, -1, -1);
        bind_slot(sample.slot, *sample.request);
        sample.status = Status::active;
        sample.position = static_cast<llama_pos>(sample.request->prompts[sample.prompt].size());
        sample.step = holder_step_;
        sample.has_step = true;
        sample.started = std::chrono::steady_clock::now();
        ++active_;
        running_.push_back(std::move(waiting_.front()));
        waiting_.pop_front();
        stats_.peak_active = std::max(stats_.peak_active, active_);
    }
}

BatchRun::Decision BatchRun::choose(Sample & sample) {
    const SamplingSpec & spec = sample.request->spec;
    const RunOptions & options = sample.request->options;
    const bool greedy = spec.temperature == 0.0f;
    const auto & q = sample.step.probabilities;
    const int k = static_cast<int>(q.size());
    // One draw of each stream per step, whichever of them the step uses.
    SampleStreams & streams = streams_[sample.slot];
    const float u_gate = uniform(streams.gate);
    Decision decision{&sample};
    decision.u_token = uniform(streams.token);
    decision.u_depth = uniform(streams.depth);
    if (!spec.led) {
        if (!greedy) {
            const int keep = kept_standard(q, spec.top_p, spec.min_p);
            decision.index = draw_index(q.data(), keep, decision.u_token);
            decision.sampling_logprob = log_share(q.data(), keep, decision.index);
        }
        return decision;
    }
    const bool allowed = !spec.think_only || sample.reasoning.inside();
    decision.explored = explores(q[0], spec.exploit, allowed, greedy, u_gate);
    decision.needs_depths = decision.explored || (options.trace && spec.d > 1);
    if (!decision.explored && !greedy) {
        decision.index = draw_index(q.data(), k, decision.u_token);
        decision.sampling_logprob = log_share(q.data(), k, decision.index);
    }
    return decision;
}

void BatchRun::project_depths(std::vector<Decision> & decisions) {
    if (decisions.empty() || graph_state_->every_step()) return;  // every_step: they came with the candidates
    // One explore graph per group of queries sharing d, k, T and ln (each query names its own
    // captured depths).
    std::map<std::tuple<int, int, float, bool>, std::vector<Decision *>> groups;
    for (Decision & decision : decisions) {
        const Request & request = *decision.sample->request;
        if (!decision.needs_depths || request.spec.d < 2) continue;
        groups[{request.spec.d, request.graph.k, request.graph.inverse_temperature, request.spec.ln}].push_back(
            &decision);
    }
    for (const auto & [key, members] : groups) {
        ExploreSettings settings;
        settings.d = std::get<0>(key);
        settings.k = std::get<1>(key);
        settings.inverse_temperature = std::get<2>(key);
        settings.ln = std::get<3>(key);
        std::vector<ExploreQuery> queries;
        for (const Decision * decision : members) {
            ExploreQuery query;
            query.slot = decision->sample->step.capture_slot;
            query.candidates = decision->sample->step.candidates.data();
            query.captured = decision->sample->request->captured.data();
            queries.push_back(query);
        }
        auto answers = graph_state_->explore(model_.n_vocab(), settings, queries);
        ++stats_.explore_graphs;
        for (size_t j = 0; j < answers.size(); ++j) members[j]->depth_probabilities = std::move(answers[j]);
    }
}

void BatchRun::explore_depths(Decision & decision) {
    // One decision path for both projections: the depth and the token from the candidates'
    // probabilities at every depth, on the host (led_math: first maximum, lower id on ties).
    const SamplingSpec & spec = decision.sample->request->spec;
    const bool greedy = spec.temperature == 0.0f;
    const StepData & step = decision.sample->step;
    const int k = static_cast<int>(step.probabilities.size());
    const std::vector<float> & deeper =
        graph_state_->every_step() ? step.depth_probabilities : decision.depth_probabilities;
    std::vector<float> depth_probabilities(step.probabilities.begin(), step.probabilities.end());
    depth_probabilities.insert(depth_probabilities.end(), deeper.begin(), deeper.end());
    if (depth_probabilities.size() != static_cast<size_t>(spec.d) * k) {
        throw std::logic_error("LED's depth projection returned the wrong number of probabilities");
    }
    Exploration exploration = explore(depth_probabilities.data(), spec.d, k, spec.depth_rule, spec.fixed_depth, greedy,
                                      decision.u_depth, decision.u_token);
    if (decision.explored) {
        decision.depth = exploration.depth;
        decision.index = exploration.index;
        if (!greedy) {
            // The token was drawn from the chosen depth's posterior.
            std::vector<float> posteriors(static_cast<size_t>(spec.d) * k), entropies(spec.d);
            cumulative_posteriors(depth_probabilities.data(), spec.d, k, posteriors.data(), entropies.data());
            decision.sampling_logprob =
                log_share(posteriors.data() + static_cast<size_t>(decision.depth) * k, k, decision.index);
        }
    }
    if (decision.sample->request->options.trace) decision.entropies = std::move(exploration.entropies);
}

llama_token BatchRun::record_step(Decision & decision) {
    Sample & sample = *decision.sample;
    const RunOptions & options = sample.request->options;
    SampleResult & result = sample.request->results[sample.prompt][sample.index];
    sample.has_step = false;
    const StepData & step = sample.step;
    const llama_token token = step.candidates[decision.index];
    // The step that chooses the end of generation is a decided step like any other: it counts
    // (explored or not) and has its trace entry, though its token is not part of the text.
    ++stats_.decided_steps;
    if (decision.explored) {
        ++stats_.explored_steps;
        ++result.explored_steps;
    }
    if (options.trace) {
        TraceStep trace;
        trace.token = token;
        trace.explored = decision.explored;
        trace.depth = decision.depth;
        trace.entropies = std::move(decision.entropies);
        trace.top1_probability = step.probabilities[0];
        trace.candidates = step.candidates;
        if (options.analysis_top_k > 0) {
            auto statistics =
                graph_state_->layer_statistics(model_.n_vocab(), step.capture_slot, options.analysis_top_k);
            trace.layer_entropies = std::move(statistics.entropies);
            trace.layer_top_normalised = std::move(statistics.top_normalised);
            trace.layer_top_raw = std::move(statistics.top_raw);
        }
        result.trace.push_back(std::move(trace));
    }
    return token;
}

size_t BatchRun::append_token(Sample & sample, const Decision & decision) {
    const RunOptions & options = sample.request->options;
    SampleResult & result = sample.request->results[sample.prompt][sample.index];
    const StepData & step = sample.step;
    const float inverse_temperature = sample.request->graph.inverse_temperature;
    const llama_token token = step.candidates[decision.index];
    result.tokens.push_back(token);
    // log p_0[token] = log q0 + (z_token - z_top) / T: finite where the probability underflows.
    const float top_logprob = std::log(step.probabilities[0]);
    result.logprobs.push_back(top_logprob + (step.logits[decision.index] - step.logits[0]) * inverse_temperature);
    if (options.top_logprobs > 0) {
        const size_t count = std::min(static_cast<size_t>(options.top_logprobs), step.candidates.size());
        std::vector<std::pair<int32_t, float>> top(count);
        for (size_t i = 0; i < count; ++i) {
            top[i] = {step.candidates[i], top_logprob + (step.logits[i] - step.logits[0]) * inverse_temperature};
        }
        result.top_logprobs.push_back(std::move(top));
    }
    result.sampling_logprobs.push_back(decision.sampling_logprob);
    if (sample.reasoning.inside() && !sample.request->think_end.empty()) ++result.reasoning_tokens;
    const size_t before = sample.bytes.size();
    sample.bytes += model_.token_piece(token);
    sample.reasoning.feed(token, sample.bytes, before);
    return before;
}

const char * BatchRun::stop_reason(Sample & sample, size_t before) {
    const RunOptions & options = sample.request->options;
    if (!options.stop.empty()) {
        // Only a stop string ending in the new token's bytes can be new; cut the text before it.
        size_t cut = std::string::npos;
        const size_t from = before >= sample.request->max_stop ? before - sample.request->max_stop + 1 : 0;
        for (const auto & stop : options.stop) {
            const size_t at = sample.bytes.find(stop, from);
            if (at != std::string::npos && at >= sample.emitted) cut = std::min(cut, at);
        }
        if (cut != std::string::npos) {
            sample.bytes.resize(cut);
            return "stop";
        }
    }
    const auto & tokens = sample.request->results[sample.prompt][sample.index].tokens;
    return static_cast<int>(tokens.size()) >= options.max_tokens ? "length" : nullptr;
}

void BatchRun::decide(std::vector<Piece> & pieces) {
    std::vector<Decision> decisions;
    for (auto & running : running_) {
        if (running->status == Status::active && running->has_step) decisions.push_back(choose(*running));
    }
    project_depths(decisions);
    for (Decision & decision : decisions) {
        if (decision.needs_depths) explore_depths(decision);
    }
    for (Decision & decision : decisions) {
        Sample & sample = *decision.sample;
        const llama_token token = record_step(decision);
        if (model_.is_end_of_generation(token)) {
            finish(sample, "eos", pieces);
            continue;
        }
        const size_t before = append_token(sample, decision);
        if (const char * reason = stop_reason(sample, before)) {
            finish(sample, reason, pieces);
            continue;
        }
        emit(sample, false, pieces);
        sample.next_token = token;
    }
    running_.erase(
        std::remove_if(running_.begin(), running_.end(),
                       [](const std::unique_ptr<Sample> & sample) { return sample->status == Status::done; }),
        running_.end());
}

void BatchRun::emit(Sample & sample, bool final, std::vector<Piece> & pieces) {
    size_t end = sample.bytes.size();
    if (!final) {
        // Hold back what could still become a stop string, and an unfinished character.
        const size_t max_stop = sample.request->max_stop;
        end = max_stop > 1 ? (end >= max_stop - 1 ? end - (max_stop - 1) : 0) : end;
        end = std::max(end, sample.emitted);
        end = sample.emitted +
              complete_utf8_prefix(std::string_view(sample.bytes).substr(sample.emitted, end - sample.emitted));
    }
    if (end > sample.emitted) {
        // A piece never straddles the end of the reasoning segment.
        const size_t boundary = std::clamp(sample.reasoning.answer_begin(), sample.emitted, end);
        const std::string_view bytes(sample.bytes);
        if (boundary > sample.emitted) {
            pieces.push_back({sample.prompt, sample.index,
                              sanitize_utf8(bytes.substr(sample.emitted, boundary - sample.emitted)), true,
                              sample.request->id});
        }
        if (end > boundary) {
            pieces.push_back({sample.prompt, sample.index, sanitize_utf8(bytes.substr(boundary, end - boundary)), false,
                              sample.request->id});
        }
        sample.emitted = end;
    }
}

void BatchRun::finish(Sample & sample, const char * reason, std::vector<Piece> & pieces) {
    emit(sample, true, pieces);
    Request & request = *sample.request;
    SampleResult & result = request.results[sample.prompt][sample.index];
    result.finish_reason = reason;
    result.text = sanitize_utf8(sample.bytes);
    result.reasoning = sample.reasoning.reasoning(sample.bytes);
    result.answer = sample.reasoning.answer(sample.bytes);
    result.timings.prompt_tokens = static_cast<int>(request.prompts[sample.prompt].size());
    result.timings.prompt_seconds = request.prompt_seconds[sample.prompt];
    result.timings.decode_tokens = static_cast<int>(result.tokens.size());
    if (sample.status == Status::active) {
        result.timings.decode_seconds = seconds_since(sample.started);
        if (!open_ && request.options.cache_prompt && request.results.size() == 1 && request.results[0].size() == 1 &&
            std::string(reason) != "cancelled") {
            keep_sample(sample, result.tokens);
        }
        llama_memory_seq_rm(llama_get_memory(context_), sample.slot, -1, -1);
        free_slots_.push_back(sample.slot);
        --active_;
    }
    sample.slot = -1;
    sample.status = Status::done;
    sample.bytes.clear();
    sample.bytes.shrink_to_fit();
    --remaining_;
    if (open_) {
        // An open run hands each result over once and forgets a request when it is done.
        finished_.push_back({request.id, sample.prompt, sample.index, std::move(result)});
        if (--request.remaining == 0) {
            if (holder_request_ == &request) holder_request_ = nullptr;
            requests_.erase(request.id);  // running_ and waiting_ drop its done samples before touching them
        }
    }
}

void BatchRun::decode_active() {
    std::vector<Sample *> running;
    for (auto & sample : running_) {
        if (sample->status == Status::active && !sample->has_step) running.push_back(sample.get());
    }
    if (running.empty()) return;
    // Every step is decided here; a finished request's settings may leave the graph, unless a
    // prefilled prompt still waits for slots with its step captured.
    if (!holder_step_pending()) serve(nullptr);
    std::vector<const Request *> requests;
    for (const Sample * sample : running) {
        if (std::find(requests.begin(), requests.end(), sample->request) == requests.end())
            requests.push_back(sample->request);
    }
    stats_.peak_requests_per_step = std::max(stats_.peak_requests_per_step, static_cast<int>(requests.size()));
    llama_batch batch = llama_batch_init(static_cast<int32_t>(running.size()), 0, 1);
    for (size_t i = 0; i < running.size(); ++i) {
        batch.token[i] = running[i]->next_token;
        batch.pos[i] = running[i]->position;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = running[i]->slot;
        batch.logits[i] = true;
    }
    batch.n_tokens = static_cast<int32_t>(running.size());
    const int32_t status = llama_decode(context_, batch);
    llama_batch_free(batch);
    check_graph_state();
    if (status == 2) throw Interrupted();
    if (status != 0) {
        throw std::runtime_error("llama_decode failed while generating (status " + std::to_string(status) +
                                 "); the context may be too small for this many samples");
    }
    ++stats_.decode_calls;
    stats_.decode_tokens_evaluated += static_cast<int64_t>(running.size());
    stats_.every_step = graph_state_->every_step();
    stats_.shared_head_product = graph_state_->shared_head_product();
    for (size_t i = 0; i < running.size(); ++i) {
        read_step(static_cast<int>(i), running[i]->step, running[i]->slot, *running[i]->request);
        running[i]->has_step = true;
        ++running[i]->position;
    }
}

std::vector<Piece> BatchRun::advance() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<Piece> pieces;
    if (finished()) return pieces;
    try {
        // Decide the steps of the last decode first: a prompt may then set the graph up anew.
        admit();
        decide(pieces);
        if (finished() || prefill_chunk()) return pieces;
        const int active = active_;
        admit();
        decide(pieces);  // the first token of samples admitted from a finished prefill
        // Their first text goes out now, not after the next step's decode: the time to first token.
        if (active_ > active && !pieces.empty()) return pieces;
        if (!finished() && active_ > 0) decode_active();
    } catch (const Interrupted &) {
        if (close_requested_) return pieces;  // closed from another thread: end quietly
        throw;
    }
    return pieces;
}

}  // namespace led
