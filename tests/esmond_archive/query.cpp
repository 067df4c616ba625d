#include "query.hpp"

#include <cctype>
#include <charconv>
#include <iterator>

namespace gapless::test::esmond {

std::optional<std::string> last_value(const Params& params, const std::string& name) {
  auto [first, last] = params.equal_range(name);
  if (first == last) return std::nullopt;
  return std::prev(last)->second;
}

std::optional<int64_t> parse_python_int(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  if (!text.empty() && text.front() == '+') {
    text.remove_prefix(1);
    if (!text.empty() && text.front() == '-') return std::nullopt;
  }
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

namespace {

// api_v2.py valid_time.
int64_t valid_time(const std::string& text) {
  auto value = parse_python_int(text);
  if (!value) throw BadRequest("Time parameter must be an integer");
  return *value;
}

// DRF _positive_int: negative (or, when strict, zero) is a ValueError, which
// the paginator answers with its default.
std::optional<int64_t> positive_int(const std::optional<std::string>& text, bool strict) {
  if (!text) return std::nullopt;
  auto value = parse_python_int(*text);
  if (!value || *value < 0 || (strict && *value == 0)) return std::nullopt;
  return value;
}

}  // namespace

TimeFilter parse_time_filter(const Params& params, int64_t now) {
  const auto time = last_value(params, "time");
  const auto start = last_value(params, "time-start");
  const auto end = last_value(params, "time-end");
  const auto range = last_value(params, "time-range");
  TimeFilter f;
  f.end = now;
  f.has_filters = true;
  if (time) {
    f.begin = valid_time(*time);
    f.end = f.begin;
  } else if (start && end) {
    f.begin = valid_time(*start);
    f.end = valid_time(*end);
  } else if (start && range) {
    f.begin = valid_time(*start);
    f.end = f.begin + valid_time(*range);
  } else if (end && range) {
    f.end = valid_time(*end);
    f.begin = *f.end - valid_time(*range);
  } else if (start) {
    f.begin = valid_time(*start);
    f.end.reset();
  } else if (end) {
    f.end = valid_time(*end);
  } else if (range) {
    f.begin = now - valid_time(*range);
    f.end.reset();
  } else {
    f.has_filters = false;
    f.end.reset();
  }
  if (f.end && *f.end < f.begin) throw BadRequest("Requested start time must be less than end time");
  return f;
}

Page parse_page(const Params& params) {
  Page page;
  if (auto limit = positive_int(last_value(params, "limit"), true)) {
    page.limit = *limit;
    page.limit_sent = true;
  }
  page.offset = positive_int(last_value(params, "offset"), false).value_or(0);
  return page;
}

std::string form_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '_' || c == '.' || c == '-' || c == '~') {
      out += static_cast<char>(c);
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string url_with(const std::string& absolute_path, const Params& params,
                     const std::map<std::string, std::optional<std::string>>& changes) {
  std::map<std::string, std::vector<std::string>> query;  // sorted by name, like DRF
  for (const auto& [name, value] : params) query[name].push_back(value);
  for (const auto& [name, value] : changes) {
    if (value)
      query[name] = {*value};
    else
      query.erase(name);
  }
  std::string url = absolute_path;
  char separator = '?';
  for (const auto& [name, values] : query) {
    for (const std::string& value : values) {
      url += separator;
      url += form_encode(name) + "=" + form_encode(value);
      separator = '&';
    }
  }
  return url;
}

Links page_links(const std::string& absolute_path, const Params& params, const Page& page, int64_t count) {
  Links links;
  const std::string limit = std::to_string(page.limit);
  if (page.offset + page.limit < count)
    links.next = url_with(absolute_path, params, {{"limit", limit}, {"offset", std::to_string(page.offset + page.limit)}});
  if (page.offset > 0) {
    if (page.offset - page.limit <= 0)
      links.previous = url_with(absolute_path, params, {{"limit", limit}, {"offset", std::nullopt}});
    else
      links.previous =
          url_with(absolute_path, params, {{"limit", limit}, {"offset", std::to_string(page.offset - page.limit)}});
  }
  return links;
}

std::string link_header(const Links& links) {
  std::string header;
  if (!links.next.empty()) header = "<" + links.next + ">; rel=\"next\"";
  if (!links.previous.empty()) {
    if (!header.empty()) header += ", ";
    header += "<" + links.previous + ">; rel=\"prev\"";
  }
  return header;
}

}  // namespace gapless::test::esmond
