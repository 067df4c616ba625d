// Catch2's main for the integration tests; run a group with its tag, e.g.
//   build/tests/integration/integration-tests '[harness]'
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
