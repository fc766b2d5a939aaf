// File descriptors in shoal_native, shared by its translation units: an owning fd that closes
// itself, and the bound on retrying a syscall a signal interrupted. Header-only: both are a few
// lines, and inline.
#pragma once

#include <unistd.h>

namespace shoal {

// Retries of a syscall interrupted by a signal (EINTR) before giving up: a bound, not a tuning
// knob; tmpfs reads and writes are not interruptible in practice.
constexpr int kEintrRetriesMax = 1000;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }
  // Keeps the fd open past this object (a lock that must live until the process exits).
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

}  // namespace shoal
