#include "interrupts.h"

#include <Python.h>
#include <pythread.h>

#include <chrono>

namespace py = pybind11;

namespace {

// The exception Python's signal handlers raised during an interrupted decode (main thread only).
struct PendingError {
    PyObject * type = nullptr;
    PyObject * value = nullptr;
    PyObject * traceback = nullptr;
};
PendingError pending;

unsigned long main_thread_ident() {
    static const unsigned long ident =
        py::module_::import("threading").attr("main_thread")().attr("ident").cast<unsigned long>();
    return ident;
}

}  // namespace

void install_interrupt_check(led::Model & model) {
    const unsigned long main_thread = main_thread_ident();
    model.interrupt_check = [main_thread]() {
        // Rate-limited: taking the GIL between every node would slow decoding.
        static thread_local std::chrono::steady_clock::time_point last;
        const auto now = std::chrono::steady_clock::now();
        if (now - last < std::chrono::milliseconds(5) || PyThread_get_thread_ident() != main_thread) {
            return false;
        }
        last = now;
        py::gil_scoped_acquire acquire;
        if (PyErr_CheckSignals() == 0) {
            return false;
        }
        if (pending.type == nullptr) {
            PyErr_Fetch(&pending.type, &pending.value, &pending.traceback);
        } else {
            PyErr_Clear();
        }
        return true;
    };
}

void raise_pending_interrupt() {
    if (pending.type == nullptr) {
        PyErr_SetNone(PyExc_KeyboardInterrupt);
    } else {
        PyErr_Restore(pending.type, pending.value, pending.traceback);
        pending = PendingError{};
    }
    throw py::error_already_set();
}
