// Bindings of the decode loop (decode_loop.h): a run advanced step by step with the GIL released.
// It takes the typed options of bind_options.cpp and returns the results of bind_results.cpp.
#include "decode_loop.h"
#include "interrupts.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

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
        .def(py::init([](led::Model & model, std::vector<std::vector<llama_token>> prompts, int n,
                         const led::SamplingSpec & spec, const led::RunOptions & options) {
                 py::gil_scoped_release release;
                 return std::make_unique<led::BatchRun>(model, std::move(prompts), n, spec, options);
             }),
             py::arg("model"), py::arg("prompts"), py::arg("n"), py::arg("spec"), py::arg("options"),
             py::keep_alive<1, 2>(),
             "A fixed run: n samples of every prompt, decoded together; finished when they all are.")
        .def(py::init([](led::Model & model, int n_parallel) {
                 py::gil_scoped_release release;
                 return std::make_unique<led::BatchRun>(model, n_parallel);
             }),
             py::arg("model"), py::arg("n_parallel"), py::keep_alive<1, 2>(),
             "An open engine taking requests until closed (the server's).")
        .def(
            "submit",
            [](led::BatchRun & run, std::vector<std::vector<llama_token>> prompts, int n,
               const led::SamplingSpec & spec, const led::RunOptions & options) {
                py::gil_scoped_release release;
                return run.submit(std::move(prompts), n, spec, options);
            },
            py::arg("prompts"), py::arg("n"), py::arg("spec"), py::arg("options"),
            "Queues a request; returns its id. Sample s of prompt p draws from the stream of (options.seed, p, s).")
        .def("cancel", &led::BatchRun::cancel, py::arg("request"), py::call_guard<py::gil_scoped_release>(),
             "Stops a request's samples and frees their cells (they finish as 'cancelled').")
        .def(
            "advance", [](led::BatchRun & run) { return run_interruptible([&] { return run.advance(); }); },
            "Runs one llama_decode (a prompt chunk or one step of every active sample); returns the Pieces "
            "of text that became final.")
        .def("take_finished", &led::BatchRun::take_finished,
             "The FinishedSamples of an open run finished since the last call (a fixed run keeps them in results()).")
        .def_property_readonly("idle", &led::BatchRun::idle, "Nothing queued or decoding: advance() would do nothing.")
        .def_property_readonly("active", &led::BatchRun::active, "Samples decoding now.")
        .def_property_readonly("waiting", &led::BatchRun::waiting, "Samples queued, not yet decoding.")
        .def_property_readonly("finished", &led::BatchRun::finished, "The run is over (closed, or every sample done).")
        .def("close", &led::BatchRun::close, py::call_guard<py::gil_scoped_release>(),
             "Stops every sequence and frees their cells; the model stays usable.")
        .def(
            "results", [](const led::BatchRun & run) { return run.results(); },
            "Per prompt, per sample, the SampleResult of a fixed run.")
        .def_property_readonly(
            "stats", [](const led::BatchRun & run) { return run.stats(); }, "The run's RunStats so far (a copy).");
}
