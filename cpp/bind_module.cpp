// The led_cpp._core extension: one register function per binding file. The option and result
// types come first: the functions and classes after them take and return them.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void register_options(py::module_ & module);
void register_results(py::module_ & module);
void register_math(py::module_ & module);
void register_random_streams(py::module_ & module);
void register_model(py::module_ & module);
void register_generation(py::module_ & module);
void register_scoring(py::module_ & module);

PYBIND11_MODULE(_core, module) {
    module.doc() = "led_cpp's C++ core: LED math, GGUF models through llama.cpp, and the decode loop.";
    register_options(module);
    register_results(module);
    register_math(module);
    register_random_streams(module);
    register_model(module);
    register_generation(module);
    register_scoring(module);
}
