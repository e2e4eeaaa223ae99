// Bindings of a loaded model (model.h): metadata, tokenizer, and the per-depth logits probe.
#include "decode_loop.h"
#include "depth_probe.h"
#include "interrupts.h"
#include "model.h"
#include "raw_decode.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

namespace {

std::unique_ptr<led::Model> load(const std::string & path, int n_ctx, int n_gpu_layers, int n_threads, bool verbose,
                                 const std::string & kv_type, int flash_attention, int n_batch,
                                 led::Projection led_projection) {
    led::ModelOptions options;
    options.n_ctx = n_ctx;
    options.n_gpu_layers = n_gpu_layers;
    options.n_threads = n_threads;
    options.verbose = verbose;
    options.kv_type = kv_type;
    options.flash_attention = flash_attention;
    options.n_batch = n_batch;
    options.led_projection = led_projection;
    std::unique_ptr<led::Model> model;
    {
        py::gil_scoped_release release;
        model = std::make_unique<led::Model>(path, options);
    }
    install_interrupt_check(*model);
    return model;
}

llama_token special(const led::Model & model, llama_token (*getter)(const llama_vocab *)) {
    return getter(model.vocab());
}

}  // namespace

void quantize(const std::string & source, const std::string & target, const std::string & type, int n_threads) {
    led::initialise_llama();
    llama_model_quantize_params params = llama_model_quantize_default_params();
    params.nthread = n_threads;
    if (type == "Q4_K_M") {
        params.ftype = LLAMA_FTYPE_MOSTLY_Q4_K_M;
    } else if (type == "Q8_0") {
        params.ftype = LLAMA_FTYPE_MOSTLY_Q8_0;
    } else if (type == "F16") {
        params.ftype = LLAMA_FTYPE_MOSTLY_F16;
    } else {
        throw std::invalid_argument("type must be Q4_K_M, Q8_0 or F16, not " + type);
    }
    if (llama_model_quantize(source.c_str(), target.c_str(), &params) != 0) {
        throw std::runtime_error("llama.cpp could not quantize " + source);
    }
}

// The compute devices llama.cpp sees in this process (what a model's layers can be offloaded to).
py::list devices() {
    py::list out;
    for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
        ggml_backend_dev_t device = ggml_backend_dev_get(i);
        const char * type = "cpu";
        switch (ggml_backend_dev_type(device)) {
            case GGML_BACKEND_DEVICE_TYPE_GPU:   type = "gpu"; break;
            case GGML_BACKEND_DEVICE_TYPE_IGPU:  type = "igpu"; break;
            case GGML_BACKEND_DEVICE_TYPE_ACCEL: type = "accel"; break;
            default:                             break;
        }
        size_t free = 0, total = 0;
        ggml_backend_dev_memory(device, &free, &total);
        py::dict entry;
        entry["name"] = ggml_backend_dev_name(device);
        entry["description"] = ggml_backend_dev_description(device);
        entry["type"] = type;
        entry["memory_total"] = total;
        out.append(entry);
    }
    return out;
}

void register_model(py::module_ & module) {
    module.def("devices", &devices, "llama.cpp's compute devices: name, description, type, memory_total.");
    module.def("quantize", &quantize, py::arg("source"), py::arg("target"), py::arg("type"), py::arg("n_threads") = 0,
               py::call_guard<py::gil_scoped_release>(),
               "Quantizes a GGUF with llama.cpp's quantize API (for the benchmarks' random-weight models).");
    py::class_<led::Model>(module, "ModelHandle", "A GGUF model loaded by llama.cpp (use led_cpp.Model).")
        .def(py::init(&load), py::arg("path"), py::arg("n_ctx"), py::arg("n_gpu_layers"), py::arg("n_threads"),
             py::arg("verbose"), py::arg("kv_type") = "f16", py::arg("flash_attention") = -1, py::arg("n_batch") = 512,
             py::arg("led_projection") = led::Projection::automatic,
             "Loads a GGUF file (checked first by led_cpp.gguf_check in Python). n_threads 0: every core; "
             "kv_type 'f16' or 'f32'; flash_attention -1 auto, 0 off, 1 on.")
        .def_property_readonly("n_layer", &led::Model::n_layer, "Transformer layers.")
        .def_property_readonly("n_embd", &led::Model::n_embd, "Width of the hidden state.")
        .def_property_readonly("n_vocab", &led::Model::n_vocab, "Tokens in the vocabulary.")
        .def_property_readonly(
            "n_ctx", [](const led::Model & model) { return model.options().n_ctx; },
            "Context size of a run (shared by the samples decoded together).")
        .def_property_readonly(
            "n_threads", [](const led::Model & model) { return model.options().n_threads; },
            "CPU threads llama.cpp decodes with.")
        .def_property_readonly("architecture", &led::Model::architecture, "general.architecture of the GGUF.")
        .def_property_readonly("chat_template", &led::Model::chat_template,
                               "The GGUF's chat template ('' when absent).")
        .def_property_readonly(
            "bos_token_id", [](const led::Model & m) { return special(m, llama_vocab_bos); },
            "Beginning-of-sequence token id (-1 when none).")
        .def_property_readonly(
            "eos_token_id", [](const led::Model & m) { return special(m, llama_vocab_eos); },
            "End-of-sequence token id (-1 when none).")
        .def_property_readonly(
            "eot_token_id", [](const led::Model & m) { return special(m, llama_vocab_eot); },
            "End-of-turn token id (-1 when none).")
        .def_property_readonly(
            "add_bos", [](const led::Model & m) { return llama_vocab_get_add_bos(m.vocab()); },
            "Whether tokenize(add_special=True) puts the BOS token first.")
        .def_property_readonly(
            "add_eos", [](const led::Model & m) { return llama_vocab_get_add_eos(m.vocab()); },
            "Whether tokenize(add_special=True) puts the EOS token last.")
        .def("metadata", &led::Model::metadata, py::arg("key"), "A GGUF metadata value as text ('' when absent).")
        .def("token_text", &led::Model::token_text, py::arg("token"), "The vocabulary entry of a token.")
        .def("is_end_of_generation", &led::Model::is_end_of_generation, py::arg("token"),
             "Whether the token ends a generation (EOS, EOT and the like).")
        .def("tokenize", &led::Model::tokenize, py::arg("text"), py::arg("add_special"), py::arg("parse_special"),
             py::call_guard<py::gil_scoped_release>(),
             "Token ids of the text; add_special adds BOS/EOS as the model asks, parse_special reads special "
             "tokens written in the text.")
        .def(
            "detokenize",
            [](const led::Model & model, const std::vector<llama_token> & tokens) {
                std::string text;
                {
                    py::gil_scoped_release release;
                    text = model.detokenize(tokens);
                }
                return py::bytes(text);
            },
            py::arg("tokens"), "The bytes the tokens stand for (decode as UTF-8 with errors='replace').")
        .def(
            "token_piece",
            [](const led::Model & model, llama_token token) { return py::bytes(model.token_piece(token)); },
            py::arg("token"), "The bytes a token stands for in generated text.")
        .def(
            "depth_logits",
            [](led::Model & model, const std::vector<llama_token> & tokens, int d, bool ln,
               led::LayerCounting layer_counting) {
                std::vector<float> values =
                    run_interruptible([&] { return led::depth_logits(model, tokens, d, ln, layer_counting); });
                const int64_t n_vocab = model.n_vocab();
                py::array_t<float> out({static_cast<int64_t>(d), n_vocab});
                std::copy(values.begin(), values.end(), out.mutable_data());
                return out;
            },
            py::arg("tokens"), py::arg("d"), py::arg("ln"), py::arg("layer_counting"),
            "Per-depth logits [d, n_vocab] at the last token, through LED's in-graph capture and projection.")
        .def(
            "raw_decode",
            [](led::Model & model, int n_prompt, int n_generate, int n_sequences) {
                led::RawDecodeTimings timings =
                    run_interruptible([&] { return led::raw_decode(model, n_prompt, n_generate, n_sequences); });
                py::dict out;
                out["prompt_seconds"] = timings.prompt_seconds;
                out["decode_seconds"] = timings.decode_seconds;
                out["prompt_tokens"] = timings.prompt_tokens;
                out["decode_tokens"] = timings.decode_tokens;
                return out;
            },
            py::arg("n_prompt"), py::arg("n_generate"), py::arg("n_sequences"),
            "llama.cpp's own decode with no sampler (like llama-batched-bench): the benchmarks' baseline. "
            "Returns a dict: prompt_seconds, decode_seconds, prompt_tokens, decode_tokens.")
        .def(
            "chain_decode",
            [](led::Model & model, const std::vector<llama_token> & prompt, int n_generate, int n_sequences, int top_k,
               float top_p, float temperature, uint32_t seed, bool backend) {
                led::ChainSettings settings;
                settings.top_k = top_k;
                settings.top_p = top_p;
                settings.temperature = temperature;
                settings.seed = seed;
                settings.backend = backend;
                led::ChainDecodeResult result = run_interruptible(
                    [&] { return led::chain_decode(model, prompt, n_generate, n_sequences, settings); });
                py::dict out;
                out["prompt_seconds"] = result.timings.prompt_seconds;
                out["decode_seconds"] = result.timings.decode_seconds;
                out["prompt_tokens"] = result.timings.prompt_tokens;
                out["decode_tokens"] = result.timings.decode_tokens;
                out["tokens"] = result.tokens;
                return out;
            },
            py::arg("prompt"), py::arg("n_generate"), py::arg("n_sequences") = 1, py::arg("top_k") = 20,
            py::arg("top_p") = 0.95f, py::arg("temperature") = 0.6f, py::arg("seed") = 0, py::arg("backend") = false,
            "llama.cpp's own sampler chain (top-k, top-p, temperature, dist) on the host or as backend "
            "samplers: the benchmarks' baseline for sampled decoding. Benchmarks only. Returns a dict: the "
            "raw_decode timings and tokens (per sequence).");
}
