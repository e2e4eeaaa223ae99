// The option enums as Python spells them. One table per enum names each value once: it registers
// the Python enum (bind_options.cpp) and is the one parser of a name (parse_choice), so every
// entry point refuses an unknown name the same way, with a ValueError listing the allowed ones.
#pragma once

#include "led_graph.h"
#include "led_math.h"
#include "led_sampler.h"

#include <array>
#include <stdexcept>
#include <string>

namespace led_bind {

template <typename Enum> struct Choice {
    const char * name;
    Enum value;
    const char * doc;
};

template <typename Enum> struct Choices;  // per enum: the option it is the value of, and its names

template <> struct Choices<led::DepthRule> {
    static constexpr const char * option = "depth_rule";
    static constexpr std::array<Choice<led::DepthRule>, 3> all{{
        {"max_entropy", led::DepthRule::max_entropy,
         "The depth whose posterior has maximal entropy (the paper's rule)."},
        {"random", led::DepthRule::random, "A depth drawn uniformly (the referee's ablation)."},
        {"fixed", led::DepthRule::fixed, "Always the depth fixed_depth."},
    }};
};

template <> struct Choices<led::LayerCounting> {
    static constexpr const char * option = "layer_counting";
    static constexpr std::array<Choice<led::LayerCounting>, 2> all{{
        {"paper", led::LayerCounting::paper, "Depth j is the output of layer n_layer - 1 - j (LED_SPEC)."},
        {"reference", led::LayerCounting::reference,
         "Depth j is the stream entering layer n_layer - 1 - j: the layer set of the authors' code."},
    }};
};

template <> struct Choices<led::Projection> {
    static constexpr const char * option = "led_projection";
    static constexpr std::array<Choice<led::Projection>, 3> all{{
        {"auto", led::Projection::automatic, "every_step when the model's output lives on a GPU, else on_explore."},
        {"every_step", led::Projection::every_step,
         "The depths are projected in the model graph for every output row (cheap on a GPU)."},
        {"on_explore", led::Projection::on_explore,
         "A second graph projects the depths only for the steps that explore (cheaper on a CPU)."},
    }};
};

// "('a', 'b', 'c')": the allowed names as Python prints a tuple of them.
template <typename Enum> std::string choice_names() {
    std::string names = "(";
    for (const auto & choice : Choices<Enum>::all) {
        if (names.size() > 1) names += ", ";
        names += std::string("'") + choice.name + "'";
    }
    return names + ")";
}

// The value named `name`; std::invalid_argument (ValueError in Python) naming the option and the
// allowed names otherwise. Never a default.
template <typename Enum> Enum parse_choice(const std::string & name) {
    for (const auto & choice : Choices<Enum>::all) {
        if (name == choice.name) return choice.value;
    }
    throw std::invalid_argument(std::string(Choices<Enum>::option) + " must be one of " + choice_names<Enum>() +
                                ", not '" + name + "'");
}

}  // namespace led_bind
