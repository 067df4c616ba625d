// Deterministic pseudo-randomness. Every generated value is a pure function of
// (seed, series, event type, timestamp) through these mixers, so the archive
// stores nothing and two runs serve the same bytes.
#pragma once

#include <cstdint>
#include <string_view>

namespace gapless::test::esmond {

// splitmix64's finaliser: a bijection with good avalanche.
constexpr uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

constexpr uint64_t mix(uint64_t a, uint64_t b) { return mix(mix(a) ^ b); }

template <typename... Rest>
constexpr uint64_t mix(uint64_t a, uint64_t b, Rest... rest) {
  return mix(mix(a, b), static_cast<uint64_t>(rest)...);
}

// FNV-1a, to turn names (event types, salts) into mixer input.
constexpr uint64_t name_hash(std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  return h;
}

// A uniform double in [0, 1).
constexpr double unit(uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }

}  // namespace gapless::test::esmond
