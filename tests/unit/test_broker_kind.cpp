// Proves a stomp sink picks RabbitMQ's or ActiveMQ's delivery rules as its setting or the broker's CONNECTED says, and reads RabbitMQ's refusals right.
//   build/tests/unit/unit-tests '[broker-kind]'
#include <catch2/catch.hpp>

#include "sender/broker_answers.hpp"
#include "sender/broker_kind.hpp"

using namespace gapless::sender;
using namespace std::chrono_literals;

TEST_CASE("broker = auto reads the CONNECTED server header; an unknown server is assumed ActiveMQ, and says so",
          "[broker-kind]") {
  CHECK(choose_broker("auto", "RabbitMQ/3.10.8").kind == BrokerKind::rabbitmq);
  CHECK_FALSE(choose_broker("auto", "RabbitMQ/3.10.8").assumed);
  CHECK(choose_broker("auto", "ActiveMQ/5.17.2").kind == BrokerKind::activemq);
  CHECK_FALSE(choose_broker("auto", "ActiveMQ/5.17.2").assumed);
  CHECK(choose_broker("auto", "ActiveMQ-Artemis/2.31").kind == BrokerKind::activemq);
  CHECK(choose_broker("auto", "ActiveMQ-Artemis/2.31").assumed);
  CHECK(choose_broker("auto", "").assumed);
}

TEST_CASE("an explicit broker setting wins over the server header", "[broker-kind]") {
  CHECK(choose_broker("activemq", "RabbitMQ/3.10.8").kind == BrokerKind::activemq);
  CHECK(choose_broker("rabbitmq", "ActiveMQ/5.17.2").kind == BrokerKind::rabbitmq);
  CHECK_FALSE(choose_broker("rabbitmq", "").assumed);
}

TEST_CASE("RabbitMQ is offered heart-beats in whole seconds, rounded up; ActiveMQ's are unchanged", "[broker-kind]") {
  CHECK(offered_heartbeat(BrokerKind::rabbitmq, 1500ms) == 2000ms);
  CHECK(offered_heartbeat(BrokerKind::rabbitmq, 500ms) == 1000ms);
  CHECK(offered_heartbeat(BrokerKind::rabbitmq, 10000ms) == 10000ms);
  CHECK(offered_heartbeat(BrokerKind::rabbitmq, 0ms) == 0ms);
  CHECK(offered_heartbeat(BrokerKind::activemq, 1500ms) == 1500ms);
}

TEST_CASE("an empty virtual_host is / for a sink set to RabbitMQ; a refused vhost is read from RabbitMQ's words",
          "[broker-kind]") {
  CHECK(default_virtual_host("rabbitmq") == std::optional<std::string>("/"));
  CHECK_FALSE(default_virtual_host("auto"));
  CHECK_FALSE(default_virtual_host("activemq"));
  CHECK(refused_virtual_host("stomp://127.0.0.1:25613: refused CONNECT: Bad CONNECT (Virtual host '127.0.0.1' "
                             "access denied)") == std::optional<std::string>("127.0.0.1"));
  CHECK_FALSE(refused_virtual_host("refused CONNECT: Bad CONNECT (Access refused for user 'guest')"));
}

TEST_CASE("RabbitMQ's refusals: ACCESS_REFUSED parks the destination it names, 'Processing error' names nothing",
          "[broker-kind]") {
  CHECK(classify("access_refused") == Refusal::destination);
  CHECK(classify("access_refused (ACCESS_REFUSED - access to topic 'perfsonar.raw.x' in exchange 'amq.topic' in "
                 "vhost '/' refused for user 'writer')") == Refusal::destination);
  CHECK(classify("Unknown destination ('/bogus/x' is not a valid destination. Valid destination types are: ...)") ==
        Refusal::destination);
  CHECK(classify("Processing error") == Refusal::follow_on);
  CHECK(classify("User not authorized to write to: topic://a") == Refusal::destination);
  CHECK(classify("Usage Manager Memory Limit reached") == Refusal::flow_control);
  CHECK(classify("frame too large") == Refusal::message);

  const std::string words = "ACCESS_REFUSED - access to topic 'perfsonar.raw.x' in exchange 'amq.topic' in vhost '/'";
  CHECK(words_name(words, "/topic/perfsonar.raw.x"));
  CHECK_FALSE(words_name(words, "/topic/perfsonar.raw.xy"));
  CHECK_FALSE(words_name(words, "/topic/perfsonar.raw"));
  CHECK(words_name("'/bogus/x' is not a valid destination", "/bogus/x"));
  CHECK(words_name("access to exchange 'osg' in vhost '/' refused", "/exchange/osg/perfsonar.raw.x"));
}
