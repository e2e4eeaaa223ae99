#include "utf8.h"

#include <cstdint>

namespace led {

namespace {

// Expected length of a sequence from its lead byte; 0 for a byte that cannot lead one.
size_t sequence_length(unsigned char lead) {
    if (lead < 0x80) return 1;
    if (lead >= 0xC2 && lead <= 0xDF) return 2;
    if (lead >= 0xE0 && lead <= 0xEF) return 3;
    if (lead >= 0xF0 && lead <= 0xF4) return 4;
    return 0;
}

bool is_continuation(unsigned char byte) { return (byte & 0xC0) == 0x80; }

// Length of a valid sequence at bytes[i], 0 if invalid, or SIZE_MAX if valid so far but cut short.
size_t valid_sequence(std::string_view bytes, size_t i) {
    const auto lead = static_cast<unsigned char>(bytes[i]);
    const size_t length = sequence_length(lead);
    if (length == 0) return 0;
    for (size_t j = 1; j < length; ++j) {
        if (i + j >= bytes.size()) return SIZE_MAX;
        const auto byte = static_cast<unsigned char>(bytes[i + j]);
        if (!is_continuation(byte)) return 0;
        // Overlong encodings, surrogates and code points past U+10FFFF.
        if (j == 1 && ((lead == 0xE0 && byte < 0xA0) || (lead == 0xED && byte > 0x9F) ||
                       (lead == 0xF0 && byte < 0x90) || (lead == 0xF4 && byte > 0x8F))) {
            return 0;
        }
    }
    return length;
}

}  // namespace

size_t complete_utf8_prefix(std::string_view bytes) {
    size_t i = 0;
    while (i < bytes.size()) {
        const size_t length = valid_sequence(bytes, i);
        if (length == SIZE_MAX) return i;
        i += length == 0 ? 1 : length;
    }
    return i;
}

std::string sanitize_utf8(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size());
    size_t i = 0;
    while (i < bytes.size()) {
        const size_t length = valid_sequence(bytes, i);
        if (length == 0 || length == SIZE_MAX) {
            out += "\xEF\xBF\xBD";
            ++i;
            continue;
        }
        out.append(bytes.substr(i, length));
        i += length;
    }
    return out;
}

}  // namespace led
