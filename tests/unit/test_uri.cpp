// Proves broker URIs are read in every accepted spelling, and a bad one is refused with an error saying what is wrong.
#include <catch2/catch.hpp>

#include "core/error.hpp"
#include "stomp/uri.hpp"

using gapless::stomp::BrokerUri;

TEST_CASE("broker URIs name scheme, host and port", "[stomp][uri]") {
  auto uri = BrokerUri::parse("stomp://broker.example.org:61613");
  CHECK_FALSE(uri.tls);
  CHECK(uri.host == "broker.example.org");
  CHECK(uri.port == 61613);
  CHECK(uri.str() == "stomp://broker.example.org:61613");

  uri = BrokerUri::parse("stomp+ssl://10.0.0.7:1234");
  CHECK(uri.tls);
  CHECK(uri.host == "10.0.0.7");
  CHECK(uri.port == 1234);
  CHECK(uri.str() == "stomp+ssl://10.0.0.7:1234");
}

TEST_CASE("stompclt's tcp:// and ssl:// spellings are accepted", "[stomp][uri]") {
  auto plain = BrokerUri::parse("tcp://mq:61613");
  CHECK_FALSE(plain.tls);
  CHECK(plain.str() == "stomp://mq:61613");
  auto tls = BrokerUri::parse("ssl://mq:61612");
  CHECK(tls.tls);
  CHECK(tls.str() == "stomp+ssl://mq:61612");
  CHECK(BrokerUri::parse("STOMP+SSL://mq:1").tls);
}

TEST_CASE("the port defaults per scheme", "[stomp][uri]") {
  CHECK(BrokerUri::parse("stomp://mq").port == 61613);
  CHECK(BrokerUri::parse("tcp://mq").port == 61613);
  CHECK(BrokerUri::parse("stomp+ssl://mq").port == 61612);
  CHECK(BrokerUri::parse("ssl://mq/").port == 61612);
  CHECK(BrokerUri::parse("stomp://[::1]").port == 61613);
}

TEST_CASE("IPv6 hosts are written in brackets", "[stomp][uri]") {
  auto uri = BrokerUri::parse("stomp://[::1]:61613");
  CHECK(uri.host == "::1");
  CHECK(uri.port == 61613);
  CHECK(uri.str() == "stomp://[::1]:61613");
  CHECK(BrokerUri::parse("stomp+ssl://[2001:db8::5]").host == "2001:db8::5");
  CHECK(BrokerUri::parse("stomp://[fe80::1%eth0]:7").host == "fe80::1%eth0");
}

TEST_CASE("bad broker URIs are rejected with the URI in the message", "[stomp][uri]") {
  const char* bad[] = {
      "",
      "broker:61613",
      "http://broker:80",
      "stomp://",
      "stomp://:61613",
      "stomp://broker:",
      "stomp://broker:0",
      "stomp://broker:65536",
      "stomp://broker:-1",
      "stomp://broker:+5",
      "stomp://broker:61613x",
      "stomp://broker:61613/queue",
      "stomp://user@broker:61613",
      "stomp://bro ker:61613",
      "stomp://::1:61613",
      "stomp://[::1:61613",
      "stomp://[not-v6]:61613",
      "stomp://[::1]61613",
      "stomp://[::1]:",
  };
  for (const char* text : bad) {
    INFO(text);
    try {
      BrokerUri::parse(text);
      FAIL("accepted");
    } catch (const gapless::Error& e) {
      CHECK_THAT(e.what(), Catch::Contains("\"" + std::string(text) + "\""));
    }
  }
}

TEST_CASE("broker URI errors say what is wrong", "[stomp][uri]") {
  CHECK_THROWS_WITH(BrokerUri::parse("amqp://mq"), Catch::Contains("unknown scheme \"amqp\""));
  CHECK_THROWS_WITH(BrokerUri::parse("stomp://mq:99999"), Catch::Contains("from 1 to 65535"));
  CHECK_THROWS_WITH(BrokerUri::parse("stomp://::1:61613"), Catch::Contains("brackets"));
}
