// Catch2's main for the unit tests (no broker, no archive); tests/README.md maps each failure mode to its file.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
