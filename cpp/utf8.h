// UTF-8 helpers for streaming text that arrives a token's bytes at a time.
#pragma once

#include <string>
#include <string_view>

namespace led {

// Length of the longest prefix that does not end inside an unfinished multi-byte character.
size_t complete_utf8_prefix(std::string_view bytes);

// The bytes with every invalid sequence replaced by U+FFFD, so Python can always decode them.
std::string sanitize_utf8(std::string_view bytes);

}  // namespace led
