// Bindings of prompt scoring (prompt_scoring.h).
#include "interrupts.h"
#include "prompt_scoring.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

void register_scoring(py::module_ & module) {
    py::class_<led::PromptScorer>(module, "PromptScorer", "Scores prompt tokens (use Model.score_prompt).")
        .def(py::init([](led::Model & model) {
                 py::gil_scoped_release release;
                 return std::make_unique<led::PromptScorer>(model);
             }),
             py::arg("model"), py::keep_alive<1, 2>())
        .def("score",
             [](led::PromptScorer & scorer, const std::vector<llama_token> & tokens, int top_n) {
                 led::PromptScores scores = run_interruptible([&] { return scorer.score(tokens, top_n); });
                 py::dict out;
                 out["logprobs"] = scores.logprobs;
                 out["top"] = scores.top;
                 return out;
             },
             py::arg("tokens"), py::arg("top_n") = 0,
             "{'logprobs': per token from the second on, 'top': per token from the second on [(id, logprob)]}.");
}
