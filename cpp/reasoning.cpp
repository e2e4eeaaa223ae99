#include "reasoning.h"

#include "utf8.h"

#include <algorithm>

namespace led {

namespace {

bool only_whitespace(const std::string & bytes, size_t from) {
    return std::all_of(bytes.begin() + static_cast<std::ptrdiff_t>(std::min(from, bytes.size())), bytes.end(),
                       [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; });
}

}  // namespace

Marker resolve_marker(const Model & model, const std::string & text) {
    Marker marker;
    marker.text = text;
    if (text.empty()) return marker;
    const auto tokens = model.tokenize(text, false, true);
    if (tokens.size() == 1 && model.token_text(tokens[0]) == text) marker.token = tokens[0];
    return marker;
}

MarkerMatch match_marker(const Marker & marker, llama_token token, const std::string & bytes, size_t before) {
    MarkerMatch match;
    if (marker.empty()) return match;
    if (marker.token >= 0) {
        // One token: only that token counts (the same characters written piecewise do not).
        if (token == marker.token) {
            match.found = true;
            match.begin = before;
            match.end = bytes.size();
        }
        return match;
    }
    const size_t from = before >= marker.text.size() ? before - marker.text.size() + 1 : 0;
    const size_t at = bytes.find(marker.text, from);
    if (at != std::string::npos) {
        match.found = true;
        match.begin = at;
        match.end = at + marker.text.size();
    }
    return match;
}

bool prompt_leaves_reasoning_open(const Model & model, const Marker & start, const Marker & end,
                                  const std::vector<llama_token> & prompt) {
    if (end.empty()) return true;
    std::string bytes;
    bool start_before_end = start.empty();  // without a start marker, the end marker alone closes
    bool start_open = false;
    bool closed = false;
    size_t end_at = 0;
    for (llama_token token : prompt) {
        const size_t before = bytes.size();
        bytes += model.token_piece(token);
        if (match_marker(start, token, bytes, before).found) {
            start_open = true;
            closed = false;
        }
        const MarkerMatch match = match_marker(end, token, bytes, before);
        if (match.found) {
            closed = start_open || start_before_end;
            start_open = false;
            end_at = match.end;
        }
    }
    // A pair closed at the very end (an empty think block, reasoning switched off): outside.
    return !(closed && only_whitespace(bytes, end_at));
}

ReasoningTracker::ReasoningTracker(const Marker * start, const Marker * end, bool inside)
    : start_(start), end_(end), started_inside_(inside), inside_(inside) {}

void ReasoningTracker::feed(llama_token token, const std::string & bytes, size_t before) {
    if (!inside_ || end_ == nullptr || end_->empty()) return;
    if (!start_seen_ && start_ != nullptr) {
        const MarkerMatch match = match_marker(*start_, token, bytes, before);
        if (match.found) {
            start_seen_ = true;
            reasoning_begin_ = match.end;
        }
    }
    const MarkerMatch match = match_marker(*end_, token, bytes, before);
    if (match.found && match.begin >= reasoning_begin_) {
        inside_ = false;
        reasoning_end_ = match.begin;
        answer_begin_ = match.end;
    }
}

size_t ReasoningTracker::answer_begin() const {
    if (!started_inside_ || end_ == nullptr || end_->empty()) return 0;
    return inside_ ? std::string::npos : answer_begin_;
}

std::string ReasoningTracker::reasoning(const std::string & bytes) const {
    if (!started_inside_ || end_ == nullptr || end_->empty()) return {};
    const size_t stop = inside_ ? bytes.size() : std::min(reasoning_end_, bytes.size());
    const size_t begin = std::min(reasoning_begin_, stop);
    return sanitize_utf8(std::string_view(bytes).substr(begin, stop - begin));
}

std::string ReasoningTracker::answer(const std::string & bytes) const {
    if (!started_inside_ || end_ == nullptr || end_->empty()) return sanitize_utf8(bytes);
    if (inside_) return {};
    const size_t begin = std::min(answer_begin_, bytes.size());
    return sanitize_utf8(std::string_view(bytes).substr(begin));
}

}  // namespace led
