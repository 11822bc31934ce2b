// The paced (open-loop) load of figure 7: GETs of random keys at the master,
// due at a fixed rate, on one thread with asynchronous connections. One
// thread matters: the client shares the machine's cores with the server, and
// a thread per connection (the blocking client's way) adds scheduling delays
// of its own to the tail it is meant to measure.
#pragma once

#include <cstdint>
#include <string>

namespace kalavara::bench {

struct PacedOptions {
  std::string host;
  std::uint16_t port = 0;
  unsigned connections = 16;
  double rate = 1000;      // GETs per second in all
  double duration = 10;    // seconds
  std::uint64_t keys = 1;  // drawn from key_prefix000000000 .. key_prefix{keys-1}
  std::string key_prefix;
  unsigned expect = 302;       // the status every answer must have
  bool check_location = true;  // a 302 must point at the key
};

struct PacedResult {
  std::uint64_t ops = 0;
  std::uint64_t errors = 0;
  double seconds = 0;
  std::uint32_t p50_us = 0;
  std::uint32_t p99_us = 0;
};

// Request i is due at start + i / rate and goes on connection i % connections;
// its latency counts from when it was due, so a connection still waiting for
// an earlier answer shows up in the tail instead of slowing the load down.
// Every request is bounded by 5 s. Wrong answers are counted as errors and
// the first few printed to stderr.
PacedResult run_paced_redirects(const PacedOptions& options);

}  // namespace kalavara::bench
