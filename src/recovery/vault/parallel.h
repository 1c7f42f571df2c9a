// ParallelFor: the worker pool of the vault and backup pipelines (hash, compress, encrypt, I/O).
#pragma once

#include <cstddef>
#include <functional>

#include "core/status.h"

namespace stratus::recovery::vault {

// Hardware threads of this host (at least 1).
int DefaultThreads();

// Runs fn(i, worker) for every i in [0, n) on `threads` threads (worker in [0, threads), so a
// caller can give each worker its own connection or buffer). Items are handed out in increasing
// order. After the first error no new items start; that error is returned once all workers stop.
// threads <= 0 means DefaultThreads(). Runs inline when threads == 1 or n <= 1.
Status ParallelFor(size_t n, int threads, const std::function<Status(size_t i, int worker)>& fn);

}  // namespace stratus::recovery::vault
