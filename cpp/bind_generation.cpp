// Bindings of the decode loop (decode_loop.h): a run advanced step by step with the GIL released.
#include "decode_loop.h"
#include "interrupts.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

namespace {

led::SamplingSpec spec_from(const py::dict & config) {
    led::SamplingSpec spec;
    spec.led = config["led"].cast<bool>();
    spec.temperature = config["temperature"].cast<float>();
    if (spec.led) {
        spec.d = config["d"].cast<int>();
        spec.k = config["k"].cast<int>();
        spec.ln = config["ln"].cast<bool>();
        spec.exploit = config["exploit"].cast<bool>();
        spec.think_only = config["think_only"].cast<bool>();
        const auto rule = config["depth_rule"].cast<std::string>();
        spec.depth_rule = rule == "random" ? led::DepthRule::random
                          : rule == "fixed" ? led::DepthRule::fixed
                                            : led::DepthRule::max_entropy;
        spec.fixed_depth = config["fixed_depth"].cast<int>();
        spec.layer_counting = config["layer_counting"].cast<std::string>() == "reference" ? led::LayerCounting::reference
                                                                                          : led::LayerCounting::paper;
    } else {
        spec.top_k = config["top_k"].cast<int>();
        spec.top_p = config["top_p"].cast<float>();
        spec.min_p = config["min_p"].cast<float>();
    }
    spec.think_start = config["think_start"].cast<std::string>();
    spec.think_end = config["think_end"].cast<std::string>();
    return spec;
}

py::dict result_dict(const led::SampleResult & result) {
    py::dict out;
    out["tokens"] = result.tokens;
    out["text"] = result.text;
    out["finish_reason"] = result.finish_reason;
    out["logprobs"] = result.logprobs;
    out["explored_steps"] = result.explored_steps;
    out["sampling_logprobs"] = result.sampling_logprobs;
    out["reasoning_tokens"] = result.reasoning_tokens;
    out["starts_in_reasoning"] = result.starts_in_reasoning;
    out["reasoning"] = py::str(result.reasoning);
    out["answer"] = py::str(result.answer);
    out["seed"] = result.seed;
    py::list trace;
    for (const auto & step : result.trace) {
        py::dict item;
        item["token"] = step.token;
        item["explored"] = step.explored;
        item["depth"] = step.depth;
        item["entropies"] = step.entropies;
        item["top1_probability"] = step.top1_probability;
        item["candidates"] = step.candidates;
        if (!step.layer_entropies.empty()) {
            item["layer_entropies"] = step.layer_entropies;
            item["layer_top_normalised"] = step.layer_top_normalised;
            item["layer_top_raw"] = step.layer_top_raw;
        }
        trace.append(item);
    }
    out["trace"] = trace;
    py::dict timings;
    timings["prompt_tokens"] = result.timings.prompt_tokens;
    timings["prompt_seconds"] = result.timings.prompt_seconds;
    timings["decode_tokens"] = result.timings.decode_tokens;
    timings["decode_seconds"] = result.timings.decode_seconds;
    out["timings"] = timings;
    py::list top;
    for (const auto & step : result.top_logprobs) {
        py::list pairs;
        for (const auto & [token, logprob] : step) pairs.append(py::make_tuple(token, logprob));
        top.append(pairs);
    }
    out["top_logprobs"] = top;
    return out;
}

led::RunOptions options_from(int max_tokens, uint64_t seed, std::vector<std::string> stop, int top_logprobs) {
    led::RunOptions options;
    options.max_tokens = max_tokens;
    options.seed = seed;
    options.stop = std::move(stop);
    options.top_logprobs = top_logprobs;
    return options;
}

}  // namespace

void register_generation(py::module_ & module) {
    module.def(
        "prompt_leaves_reasoning_open",
        [](const led::Model & model, const std::vector<llama_token> & prompt, const std::string & think_start,
           const std::string & think_end) {
            return led::prompt_leaves_reasoning_open(model, led::resolve_marker(model, think_start),
                                                     led::resolve_marker(model, think_end), prompt);
        },
        py::arg("model"), py::arg("prompt"), py::arg("think_start"), py::arg("think_end"),
        "Whether the first token generated after `prompt` is inside the reasoning segment.");
    py::class_<led::BatchRun>(module, "BatchRun", "Samples of several prompts decoded together (use Model.generate*).")
        .def(py::init([](led::Model & model, std::vector<std::vector<llama_token>> prompts, int n, const py::dict & config,
                         int max_tokens, uint64_t seed, std::vector<std::string> stop, bool trace, int n_parallel,
                         int analysis_top_k) {
                 led::RunOptions options;
                 options.max_tokens = max_tokens;
                 options.seed = seed;
                 options.stop = std::move(stop);
                 options.trace = trace;
                 options.n_parallel = n_parallel;
                 options.analysis_top_k = analysis_top_k;
                 const led::SamplingSpec spec = spec_from(config);
                 py::gil_scoped_release release;
                 return std::make_unique<led::BatchRun>(model, std::move(prompts), n, spec, options);
             }),
             py::arg("model"), py::arg("prompts"), py::arg("n"), py::arg("config"), py::arg("max_tokens"), py::arg("seed"),
             py::arg("stop"), py::arg("trace"), py::arg("n_parallel"), py::arg("analysis_top_k") = 0,
             py::keep_alive<1, 2>())
        .def(py::init([](led::Model & model, int n_parallel) {
                 py::gil_scoped_release release;
                 return std::make_unique<led::BatchRun>(model, n_parallel);
             }),
             py::arg("model"), py::arg("n_parallel"), py::keep_alive<1, 2>(),
             "An open engine taking requests until closed (the server's).")
        .def("submit",
             [](led::BatchRun & run, std::vector<std::vector<llama_token>> prompts, int n, const py::dict & config,
                int max_tokens, uint64_t seed, std::vector<std::string> stop, int top_logprobs) {
                 const led::SamplingSpec spec = spec_from(config);
                 const led::RunOptions options = options_from(max_tokens, seed, std::move(stop), top_logprobs);
                 py::gil_scoped_release release;
                 return run.submit(std::move(prompts), n, spec, options);
             },
             py::arg("prompts"), py::arg("n"), py::arg("config"), py::arg("max_tokens"), py::arg("seed"),
             py::arg("stop"), py::arg("top_logprobs") = 0,
             "Queues a request; returns its id. Sample s of prompt p draws from the stream of (seed, p, s).")
        .def("cancel", &led::BatchRun::cancel, py::arg("request"), py::call_guard<py::gil_scoped_release>(),
             "Stops a request's samples and frees their cells (they finish as 'cancelled').")
        .def("step",
             [](led::BatchRun & run) {
                 std::vector<led::Piece> pieces = run_interruptible([&] { return run.advance(); });
                 py::list out;
                 for (const auto & piece : pieces) {
                     out.append(py::make_tuple(piece.request, piece.prompt, piece.sample, py::str(piece.text), piece.reasoning));
                 }
                 return out;
             },
             "Runs one llama_decode; returns [(request, prompt_index, sample_index, text, in_reasoning)] that became final.")
        .def("take_finished",
             [](led::BatchRun & run) {
                 py::list out;
                 for (const auto & item : run.take_finished()) {
                     out.append(py::make_tuple(item.request, item.prompt, item.sample, result_dict(item.result)));
                 }
                 return out;
             },
             "[(request, prompt_index, sample_index, result)] finished since the last call.")
        .def_property_readonly("idle", &led::BatchRun::idle)
        .def_property_readonly("active", &led::BatchRun::active)
        .def_property_readonly("waiting", &led::BatchRun::waiting)
        .def("advance",
             [](led::BatchRun & run) {
                 std::vector<led::Piece> pieces = run_interruptible([&] { return run.advance(); });
                 py::list out;
                 for (const auto & piece : pieces) {
                     out.append(py::make_tuple(piece.prompt, piece.sample, py::str(piece.text), piece.reasoning));
                 }
                 return out;
             },
             "Runs one llama_decode and returns [(prompt_index, sample_index, text, in_reasoning)] that became final.")
        .def_property_readonly("finished", &led::BatchRun::finished)
        .def("close", &led::BatchRun::close, py::call_guard<py::gil_scoped_release>(),
             "Stops every sequence and frees their cells; the model stays usable.")
        .def("results",
             [](const led::BatchRun & run) {
                 py::list out;
                 for (const auto & prompt : run.results()) {
                     py::list samples;
                     for (const auto & result : prompt) samples.append(result_dict(result));
                     out.append(samples);
                 }
                 return out;
             })
        .def_property_readonly("stats", [](const led::BatchRun & run) {
            const auto & stats = run.stats();
            py::dict out;
            out["prompt_tokens_evaluated"] = stats.prompt_tokens_evaluated;
            out["decode_tokens_evaluated"] = stats.decode_tokens_evaluated;
            out["decode_calls"] = stats.decode_calls;
            out["explore_graphs"] = stats.explore_graphs;
            out["every_step"] = stats.every_step;
            out["shared_head_product"] = stats.shared_head_product;
            out["explored_steps"] = stats.explored_steps;
            out["decided_steps"] = stats.decided_steps;
            out["n_parallel"] = stats.n_parallel;
            out["peak_active"] = stats.peak_active;
            out["peak_requests_per_step"] = stats.peak_requests_per_step;
            out["graph_switches"] = stats.graph_switches;
            return out;
        });
}
