// Bindings of the per-sample random streams (random_streams.h), so tests can replay a sample's draws.
#include "random_streams.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

void register_random_streams(py::module_ & module) {
    module.def("stream_uniforms", &led::stream_uniforms, py::arg("seed"), py::arg("prompt"), py::arg("sample"),
               py::arg("stream"), py::arg("count"),
               "The uniforms a sample draws per step: stream 0 token, 1 gate, 2 depth (one of each per step).");
}
