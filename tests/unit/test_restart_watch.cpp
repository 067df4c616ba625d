// Proves the restart watch tells a library replaced by rename or overwritten in place from one left alone, and names it.
//
// In this process: a copy of zlib loaded with dlopen after the watch was made
// (as a library loaded late would be), then changed on disk. The daemon's
// side (status, metrics, the log line) is tests/integration/test_upgrade_safety.cpp.
#include <dlfcn.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "core/restart_watch.hpp"
#include "support/temp_dir.hpp"

using Catch::Matchers::Contains;
using gapless::RestartWatch;
namespace fs = std::filesystem;

namespace {

std::optional<fs::path> system_zlib() {
  for (const char* dir : {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
                          "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64"})
    if (fs::exists(fs::path(dir) / "libz.so.1")) return fs::path(dir) / "libz.so.1";
  return std::nullopt;
}

// A private copy of zlib, loaded (dlopen) for as long as it lives.
struct LoadedCopy {
  gapless::test::TempDir dir{"restart-watch"};
  fs::path path = dir.path() / "libz-copy.so.1";
  void* handle = nullptr;

  LoadedCopy() {
    const std::optional<fs::path> zlib = system_zlib();
    REQUIRE(zlib.has_value());
    fs::copy_file(*zlib, path);
    path = fs::canonical(path);  // as /proc/self/maps names it
    handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    REQUIRE(handle != nullptr);
  }
  ~LoadedCopy() { ::dlclose(handle); }
};

}  // namespace

TEST_CASE("restart watch: files left alone are reported replaced (a false alarm)", "[restart-watch]") {
  RestartWatch watch;
  LoadedCopy library;
  CHECK_FALSE(watch.replaced_file().has_value());  // records the late library
  CHECK_FALSE(watch.replaced_file().has_value());
}

TEST_CASE("restart watch: a loaded library overwritten in place goes unnoticed", "[restart-watch]") {
  RestartWatch watch;
  LoadedCopy library;
  REQUIRE_FALSE(watch.replaced_file().has_value());
  std::ofstream(library.path, std::ios::app | std::ios::binary) << "overwritten";  // past the end: mapped pages stay
  const std::optional<std::string> replaced = watch.replaced_file();
  REQUIRE(replaced.has_value());
  CHECK_THAT(*replaced, Contains(library.path.string()) && Contains("overwritten in place"));
}

TEST_CASE("restart watch: a loaded library replaced by rename, as dpkg does, goes unnoticed", "[restart-watch]") {
  RestartWatch watch;
  LoadedCopy library;
  REQUIRE_FALSE(watch.replaced_file().has_value());
  const fs::path upgraded = library.dir.path() / "libz-copy.so.1.dpkg-new";
  fs::copy_file(library.path, upgraded);
  fs::rename(upgraded, library.path);
  const std::optional<std::string> replaced = watch.replaced_file();
  REQUIRE(replaced.has_value());
  CHECK_THAT(*replaced, Contains(library.path.string()) && Contains("replaced"));
}
