#include "recovery/vault/parallel.h"

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

namespace stratus::recovery::vault {

int DefaultThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

Status ParallelFor(size_t n, int threads, const std::function<Status(size_t, int)>& fn) {
  if (threads <= 0) threads = DefaultThreads();
  if (static_cast<size_t>(threads) > n) threads = static_cast<int>(std::max<size_t>(n, 1));
  if (threads == 1) {
    for (size_t i = 0; i < n; ++i) RETURN_IF_ERROR(fn(i, 0));
    return Status::Ok();
  }
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first;  // guarded by mu
  auto work = [&](int worker) {
    while (!failed.load(std::memory_order_relaxed)) {
      size_t i = next.fetch_add(1);
      if (i >= n) return;
      Status st = fn(i, worker);
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first.ok()) first = st;
        failed = true;
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int w = 1; w < threads; ++w) pool.emplace_back(work, w);
  work(0);
  for (auto& t : pool) t.join();
  return first;
}

}  // namespace stratus::recovery::vault
