// Bindings of prompt scoring (prompt_scoring.h).
#include "bind_record.h"
#include "interrupts.h"
#include "prompt_scoring.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

void register_scoring(py::module_ & module) {
    led_bind::Record<led::PromptScores>(module, "PromptScores", "Log-probabilities of a prompt's tokens (T = 1).")
        .readonly("logprobs", &led::PromptScores::logprobs,
                  "Per token from the second on: log p(token | the tokens before it).")
        .readonly("top", &led::PromptScores::top,
                  "Per token from the second on: the top_n most probable tokens there, [(id, log-probability)].");
    py::class_<led::PromptScorer>(module, "PromptScorer", "Scores prompt tokens (use Model.score_prompt).")
        .def(py::init([](led::Model & model) {
                 py::gil_scoped_release release;
                 return std::make_unique<led::PromptScorer>(model);
             }),
             py::arg("model"), py::keep_alive<1, 2>(), "A scoring context of its own beside the model's runs.")
        .def(
            "score",
            [](led::PromptScorer & scorer, const std::vector<llama_token> & tokens, int top_n) {
                return run_interruptible([&] { return scorer.score(tokens, top_n); });
            },
            py::arg("tokens"), py::arg("top_n") = 0, "The PromptScores of the tokens (top empty when top_n is 0).");
}
