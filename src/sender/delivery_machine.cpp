#include "sender/delivery_machine.hpp"

#include <iterator>

namespace gapless::sender {

namespace {

template <typename T>
void append(std::vector<T>& to, std::vector<T>&& from) {
  to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
}

}  // namespace

void Decisions::merge(Decisions&& other) {
  append(commit, std::move(other.commit));
  append(abort, std::move(other.abort));
  append(delivered, std::move(other.delivered));
  append(released, std::move(other.released));
  append(park_messages, std::move(other.park_messages));
  append(park_destinations, std::move(other.park_destinations));
  pause_claims = pause_claims || other.pause_claims;
  if (!reconnect) reconnect = std::move(other.reconnect);
  reconnect_at_once = reconnect_at_once || other.reconnect_at_once;
}

}  // namespace gapless::sender
