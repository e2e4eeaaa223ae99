// Bindings of the LED math unit (led_math.h), so tests can check it against a NumPy port.
#include "bind_choices.h"
#include "led_math.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <stdexcept>

namespace py = pybind11;

namespace {

py::dict led_step(py::array_t<float, py::array::c_style | py::array::forcecast> depth_logits, float temperature, int k,
                  bool exploit, bool explore_allowed, const std::string & depth_rule, int fixed_depth, float u_gate,
                  float u_token, float u_depth) {
    if (depth_logits.ndim() != 2) throw std::invalid_argument("depth_logits must be a 2-D array [d, n_vocab]");
    if (!(temperature >= 0.0f) || std::isinf(temperature))
        throw std::invalid_argument("temperature must be finite and >= 0");
    const int d = static_cast<int>(depth_logits.shape(0));
    const int64_t n_vocab = depth_logits.shape(1);
    if (d < 1 || n_vocab < 1) throw std::invalid_argument("depth_logits must have at least one depth and one token");
    if (k < 1 || k > n_vocab) throw std::invalid_argument("k must lie in [1, n_vocab]");
    led::StepOptions options;
    options.temperature = temperature;
    options.k = k;
    options.exploit = exploit;
    options.explore_allowed = explore_allowed;
    options.depth_rule = led_bind::parse_choice<led::DepthRule>(depth_rule);
    options.fixed_depth = fixed_depth;
    led::Draws draws{u_gate, u_token, u_depth};
    led::StepResult result;
    {
        py::gil_scoped_release release;
        result = led::step(depth_logits.data(), d, n_vocab, options, draws);
    }
    py::dict out;
    out["token"] = result.token;
    out["explored"] = result.explored;
    out["depth"] = result.depth;
    out["entropies"] = result.entropies;
    out["candidates"] = result.candidates;
    out["candidate_probs"] = result.candidate_probabilities;
    out["top1_probability"] = result.candidate_probabilities[0];
    out["logprob"] = result.logprob;
    return out;
}

}  // namespace

void register_math(py::module_ & module) {
    module.def("led_step", &led_step, py::arg("depth_logits"), py::kw_only(), py::arg("temperature"), py::arg("k"),
               py::arg("exploit"), py::arg("explore_allowed") = true, py::arg("depth_rule") = "max_entropy",
               py::arg("fixed_depth") = 0, py::arg("u_gate"), py::arg("u_token"), py::arg("u_depth") = 0.0f,
               R"doc(One LED step (LED_SPEC.md) computed by the C++ math unit on the host.

depth_logits: float32 [d, n_vocab], row 0 the final layer's logits, row j depth j (not yet divided
by the temperature). Returns a dict: token, explored, depth, entropies (d values when the step
explored), candidates, candidate_probs, top1_probability, logprob.)doc");
}
