// Plain TCP sockets on 127.0.0.1 for the tests' stand-in peers and raw
// clients, which need bytes on a socket and nothing of an HTTP library.
// Header-only: shared by the HTTP and the integration test binaries.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

namespace kalavara::test {

struct LoopbackListener {
  int fd = -1;  // -1 when the socket could not be set up
  std::uint16_t port = 0;
};

// A socket listening on 127.0.0.1, on a port the kernel picked.
inline LoopbackListener listen_on_loopback(int backlog) {
  LoopbackListener listener;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return listener;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(fd, backlog) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    return listener;
  }
  listener.fd = fd;
  listener.port = ntohs(address.sin_port);
  return listener;
}

// A blocking socket connected to 127.0.0.1:port, or -1.
inline int connect_to_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace kalavara::test
