// Catch2's main for the esmond client and collector tests, run against the test archive over HTTP.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
