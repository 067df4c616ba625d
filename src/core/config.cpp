#include "core/config.hpp"

#include <fstream>
#include <set>
#include <sstream>

#include <toml.hpp>

#include "core/error.hpp"

namespace gapless {

namespace {

// Reads one TOML table key by key. Every key read is remembered so that
// finish() can reject the ones nobody asked for: a misspelt key must be an
// error, not a silent default.
class TableReader {
 public:
  TableReader(const toml::value& table, std::string path) : path_(std::move(path)) {
    if (!table.is_table()) throw Error(path_ + ": expected a table");
    table_ = &table.as_table();
  }

  std::string key_path(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  const toml::value* find(std::string_view key) {
    known_.insert(std::string(key));
    auto it = table_->find(std::string(key));
    return it == table_->end() ? nullptr : &it->second;
  }

  void read(std::string_view key, std::string& out) {
    if (const toml::value* value = find(key)) {
      if (!value->is_string()) throw type_error(key, "a string");
      out = value->as_string().str;
    }
  }

  void read(std::string_view key, int& out) {
    int64_t wide = out;
    read(key, wide);
    if (wide < 1 || wide > 1'000'000) throw Error(key_path(key) + ": must be between 1 and 1000000");
    out = static_cast<int>(wide);
  }

  void read(std::string_view key, int64_t& out) {
    if (const toml::value* value = find(key)) {
      if (!value->is_integer()) throw type_error(key, "an integer");
      out = value->as_integer();
    }
  }

  void read(std::string_view key, Milliseconds& out) {
    if (const toml::value* value = find(key)) {
      if (value->is_integer()) {
        if (value->as_integer() < 0) throw Error(key_path(key) + ": must not be negative");
        out = std::chrono::seconds(value->as_integer());
      } else if (value->is_string()) {
        out = parse_duration(value->as_string().str, key_path(key));
      } else {
        throw type_error(key, "a duration such as \"30s\" or a number of seconds");
      }
    }
  }

  void read(std::string_view key, std::vector<std::string>& out) {
    if (const toml::value* value = find(key)) {
      if (!value->is_array()) throw type_error(key, "an array of strings");
      out.clear();
      for (const toml::value& item : value->as_array()) {
        if (!item.is_string()) throw type_error(key, "an array of strings");
        out.push_back(item.as_string().str);
      }
    }
  }

  void finish() const {
    for (const auto& [key, value] : *table_)
      if (!known_.count(key)) throw Error(key_path(key) + ": unknown key");
  }

 private:
  Error type_error(std::string_view key, std::string_view expected) const {
    return Error(key_path(key) + ": expected " + std::string(expected));
  }

  const toml::table* table_ = nullptr;
  std::string path_;
  std::set<std::string> known_;
};

std::string read_first_line(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) throw Error(what + ": cannot read \"" + path + "\"");
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

SinkConfig read_sink(const toml::value& value, const std::string& path) {
  TableReader reader(value, path);
  SinkConfig sink;
  reader.read("name", sink.name);
  reader.read("protocol", sink.protocol);
  reader.read("brokers", sink.brokers);
  reader.read("login", sink.login);
  reader.read("passcode", sink.passcode);
  reader.read("passcode_file", sink.passcode_file);
  reader.read("ca_file", sink.ca_file);
  reader.read("cert_file", sink.cert_file);
  reader.read("key_file", sink.key_file);
  reader.read("virtual_host", sink.virtual_host);
  reader.read("transaction_size", sink.transaction_size);
  reader.read("window", sink.window);
  reader.read("max_message_size", sink.max_message_size);
  reader.read("receipt_timeout", sink.receipt_timeout);
  reader.read("heartbeat", sink.heartbeat);
  reader.read("connect_timeout", sink.connect_timeout);
  reader.read("reconnect_min", sink.reconnect_min);
  reader.read("reconnect_max", sink.reconnect_max);
  reader.read("failback_interval", sink.failback_interval);
  reader.read("park_retry_interval", sink.park_retry_interval);
  reader.read("park_retry_max", sink.park_retry_max);
  reader.read("shutdown_timeout", sink.shutdown_timeout);
  reader.finish();

  if (sink.name.empty()) throw Error(reader.key_path("name") + ": required");
  if (sink.protocol != "stomp")
    throw Error(reader.key_path("protocol") + ": unknown protocol \"" + sink.protocol + "\" (supported: stomp)");
  if (sink.brokers.empty()) throw Error(reader.key_path("brokers") + ": at least one broker URI is required");
  if (!sink.passcode.empty() && !sink.passcode_file.empty())
    throw Error(path + ": passcode and passcode_file are exclusive");
  if (!sink.passcode_file.empty())
    sink.passcode = read_first_line(sink.passcode_file, reader.key_path("passcode_file"));
  if (sink.cert_file.empty() != sink.key_file.empty())
    throw Error(path + ": cert_file and key_file go together");
  if (sink.max_message_size < 1) throw Error(reader.key_path("max_message_size") + ": must be positive");
  if (sink.reconnect_min > sink.reconnect_max)
    throw Error(reader.key_path("reconnect_min") + ": larger than reconnect_max");
  if (sink.park_retry_interval > sink.park_retry_max)
    throw Error(reader.key_path("park_retry_interval") + ": larger than park_retry_max");
  return sink;
}

}  // namespace

const SinkConfig* Config::find_sink(std::string_view name) const {
  for (const SinkConfig& sink : sinks)
    if (sink.name == name) return &sink;
  return nullptr;
}

Config default_config() {
  Config config;
  SinkConfig sink;
  sink.name = "local";
  sink.brokers = {"stomp://127.0.0.1:61613"};
  sink.login = "collector";
  sink.passcode = "collector-secret";
  config.sinks.push_back(sink);
  return config;
}

Config parse_config(std::string_view toml_text, std::string_view origin) {
  toml::value root;
  try {
    std::istringstream stream{std::string(toml_text)};
    root = toml::parse(stream, std::string(origin));
  } catch (const std::exception& e) {
    throw Error(std::string(origin) + ": not valid TOML: " + e.what());
  }

  Config config;
  config.origin = std::string(origin);
  try {
    TableReader top(root, "");
    top.read("log_level", config.log_level);
    if (const toml::value* journal = top.find("journal")) {
      TableReader reader(*journal, "journal");
      reader.read("path", config.journal.path);
      reader.finish();
      if (config.journal.path.empty()) throw Error("journal.path: must not be empty");
    }
    if (const toml::value* sinks = top.find("sink")) {
      if (!sinks->is_array()) throw Error("sink: expected an array of tables ([[sink]])");
      const auto& array = sinks->as_array();
      for (size_t i = 0; i < array.size(); ++i)
        config.sinks.push_back(read_sink(array[i], "sink[" + std::to_string(i) + "]"));
    }
    top.finish();
  } catch (const Error& e) {
    throw Error(std::string(origin) + ": " + e.what());
  }

  std::set<std::string> names;
  for (const SinkConfig& sink : config.sinks)
    if (!names.insert(sink.name).second)
      throw Error(std::string(origin) + ": sink name \"" + sink.name + "\" is used twice");
  if (config.sinks.empty()) throw Error(std::string(origin) + ": no [[sink]] configured");
  return config;
}

Config load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("config " + path + ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path);
}

}  // namespace gapless
