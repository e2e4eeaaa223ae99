// Ctrl-C while C++ decodes with the GIL released: ggml asks the model's interrupt check between
// graph nodes; on the main thread, at most every few milliseconds, it lets Python run its signal
// handlers. An exception they raise (KeyboardInterrupt) stops the decode and is re-raised in
// Python once the C++ call returns.
#pragma once

#include "decode_loop.h"
#include "model.h"

#include <pybind11/pybind11.h>

void install_interrupt_check(led::Model & model);

// Runs a decoding call with the GIL released, re-raising a pending Python exception from an
// interrupted decode.
template <typename Function> auto run_interruptible(Function && function) -> decltype(function());

void raise_pending_interrupt();

template <typename Function> auto run_interruptible(Function && function) -> decltype(function()) {
    try {
        pybind11::gil_scoped_release release;
        return function();
    } catch (const led::Interrupted &) {
        raise_pending_interrupt();
        throw;  // unreachable: raise_pending_interrupt throws
    }
}
