// Bindings of the options the decode loop and the model take: the option enums (named in
// bind_choices.h) and the option structs of decode_loop.h, filled from keyword arguments.
#include "bind_choices.h"
#include "bind_record.h"
#include "decode_loop.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

namespace {

// The enum with its values, and a constructor from a value's name: the one parser of the option.
template <typename Enum> void bind_choice(py::module_ & module, const char * name, const char * doc) {
    py::enum_<Enum> type(module, name, doc);
    for (const auto & choice : led_bind::Choices<Enum>::all) type.value(choice.name, choice.value, choice.doc);
    type.def(py::init([](const std::string & value) { return led_bind::parse_choice<Enum>(value); }), py::arg("name"),
             "The value of this name; ValueError naming the allowed names otherwise.");
}

void bind_sampling_spec(py::module_ & module) {
    const led::SamplingSpec defaults;
    led_bind::Record<led::SamplingSpec> spec(
        module, "SamplingSpec",
        "How each token is chosen: standard sampling or LED (led_cpp.SamplingConfig "
        "and LEDConfig validate and build it: Model.native_config).");
    spec.type().def(
        py::init([](bool led, float temperature, int top_k, float top_p, float min_p, int d, int k, bool ln,
                    bool exploit, bool think_only, led::DepthRule depth_rule, int fixed_depth,
                    led::LayerCounting layer_counting, std::string think_start, std::string think_end) {
            led::SamplingSpec out;
            out.led = led;
            out.temperature = temperature;
            out.top_k = top_k;
            out.top_p = top_p;
            out.min_p = min_p;
            out.d = d;
            out.k = k;
            out.ln = ln;
            out.exploit = exploit;
            out.think_only = think_only;
            out.depth_rule = depth_rule;
            out.fixed_depth = fixed_depth;
            out.layer_counting = layer_counting;
            out.think_start = std::move(think_start);
            out.think_end = std::move(think_end);
            return out;
        }),
        py::kw_only(), py::arg("led") = defaults.led, py::arg("temperature") = defaults.temperature,
        py::arg("top_k") = defaults.top_k, py::arg("top_p") = defaults.top_p, py::arg("min_p") = defaults.min_p,
        py::arg("d") = defaults.d, py::arg("k") = defaults.k, py::arg("ln") = defaults.ln,
        py::arg("exploit") = defaults.exploit, py::arg("think_only") = defaults.think_only,
        py::arg("depth_rule") = defaults.depth_rule, py::arg("fixed_depth") = defaults.fixed_depth,
        py::arg("layer_counting") = defaults.layer_counting, py::arg("think_start") = defaults.think_start,
        py::arg("think_end") = defaults.think_end,
        "Every field by keyword; the rest keep their defaults. Checked against the model when a run takes it.");
    spec.readwrite("led", &led::SamplingSpec::led, "LED (True) or standard sampling (False).")
        .readwrite("temperature", &led::SamplingSpec::temperature, "Sampling temperature; 0 is greedy.")
        .readwrite("top_k", &led::SamplingSpec::top_k, "Standard sampling: candidates kept (0: the whole vocabulary).")
        .readwrite("top_p", &led::SamplingSpec::top_p, "Standard sampling: nucleus probability mass kept, in (0, 1].")
        .readwrite("min_p", &led::SamplingSpec::min_p,
                   "Standard sampling: candidates below min_p times the top probability are dropped.")
        .readwrite("d", &led::SamplingSpec::d, "LED: depths read, the final layer included (1..n_layer).")
        .readwrite("k", &led::SamplingSpec::k, "LED: candidates taken from the final layer (1..n_vocab).")
        .readwrite("ln", &led::SamplingSpec::ln, "LED: apply the final norm to the earlier depths' states.")
        .readwrite("exploit", &led::SamplingSpec::exploit, "LED: gate exploration with probability 1 - p_top1.")
        .readwrite("think_only", &led::SamplingSpec::think_only, "LED: explore only inside the reasoning segment.")
        .readwrite("depth_rule", &led::SamplingSpec::depth_rule, "LED: how an explored step picks its depth.")
        .readwrite("fixed_depth", &led::SamplingSpec::fixed_depth, "LED: the depth of depth_rule 'fixed', in [0, d).")
        .readwrite("layer_counting", &led::SamplingSpec::layer_counting, "LED: which layer output depth j reads.")
        .readwrite("think_start", &led::SamplingSpec::think_start,
                   "The reasoning segment's start marker ('' when the model has none).")
        .readwrite("think_end", &led::SamplingSpec::think_end,
                   "The reasoning segment's end marker; '' means no segment, so LED may explore on every step.");
}

void bind_run_options(py::module_ & module) {
    const led::RunOptions defaults;
    led_bind::Record<led::RunOptions> options(module, "RunOptions",
                                              "What a run or request decodes besides the sampling: lengths, seed, "
                                              "stop strings, what the results carry.");
    options.type().def(py::init([](int max_tokens, uint64_t seed, std::vector<std::string> stop, bool trace,
                                   int n_parallel, int analysis_top_k, int top_logprobs, bool cache_prompt) {
                           led::RunOptions out;
                           out.max_tokens = max_tokens;
                           out.seed = seed;
                           out.stop = std::move(stop);
                           out.trace = trace;
                           out.n_parallel = n_parallel;
                           out.analysis_top_k = analysis_top_k;
                           out.top_logprobs = top_logprobs;
                           out.cache_prompt = cache_prompt;
                           return out;
                       }),
                       py::kw_only(), py::arg("max_tokens") = defaults.max_tokens, py::arg("seed") = defaults.seed,
                       py::arg("stop") = defaults.stop, py::arg("trace") = defaults.trace,
                       py::arg("n_parallel") = defaults.n_parallel, py::arg("analysis_top_k") = defaults.analysis_top_k,
                       py::arg("top_logprobs") = defaults.top_logprobs, py::arg("cache_prompt") = defaults.cache_prompt,
                       "Every field by keyword; the rest keep their defaults. Checked when a run takes it.");
    options.readwrite("max_tokens", &led::RunOptions::max_tokens, "Tokens generated at most per sample.")
        .readwrite("seed", &led::RunOptions::seed, "Sample s of prompt p draws from the streams of (seed, p, s).")
        .readwrite("stop", &led::RunOptions::stop, "Strings that end a sample (not included in its text).")
        .readwrite("trace", &led::RunOptions::trace, "Record a TraceStep per decided step.")
        .readwrite("n_parallel", &led::RunOptions::n_parallel,
                   "Samples decoded together (0: min(samples, 16)); each has its own KV stream.")
        .readwrite("analysis_top_k", &led::RunOptions::analysis_top_k,
                   "> 0 (standard sampling): every trace step carries each layer's entropy and top ids.")
        .readwrite("top_logprobs", &led::RunOptions::top_logprobs,
                   "> 0: per token, the first top_logprobs candidates and their log-probabilities.")
        .readwrite("cache_prompt", &led::RunOptions::cache_prompt,
                   "Start each prompt from the KV of the longest prefix it shares with the prompt evaluated "
                   "before it, in this run or the model's last (llama-server's cache_prompt); its logits may then "
                   "differ in the last bits.");
}

}  // namespace

void register_options(py::module_ & module) {
    bind_choice<led::DepthRule>(module, "DepthRule",
                                "How an explored LED step picks its depth (LEDConfig.depth_rule).");
    bind_choice<led::LayerCounting>(module, "LayerCounting",
                                    "Which layer output LED's depth j reads (LEDConfig.layer_counting).");
    bind_choice<led::Projection>(
        module, "Projection",
        "Where LED projects the earlier depths through the output head (Model(led_projection=...)).");
    bind_sampling_spec(module);
    bind_run_options(module);
}
