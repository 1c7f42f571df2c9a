// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network
// Load Balancer", NSDI 2016, section 3.4): a lookup table of `size` slots, each naming one
// backend. A new flow's backend is the slot its hash lands in, so the kernel's datapath needs
// one map lookup (lb_datapath.h), and when a backend comes or goes the table changes little:
// most slots of the backends that stay keep their backend (bench/network: flows moved).
//
// Each backend fills slots in the order of its own permutation of the table (an offset and a
// skip from two hashes of its key), the backends taking turns, until every slot is taken: every
// backend gets size/N slots, give or take one. The table depends only on the set of keys and the
// size (not on their order, the process or the machine), so a restarted daemon makes the same one
// and finds nothing to change.
//
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace stratus::network {

// The table size the load balancers use: a prime, so every skip walks every slot. One backend
// of 3, 10 or 50 coming or going moves at most 1.2% of the other backends' slots at this size
// (maglev_test.cc); at 4093 it was up to 2.5% with 50 backends.
inline constexpr uint32_t kMaglevTableSize = 16381;

// The table for `keys` (distinct; any order): for each slot, the index in `keys` of its backend.
// Empty when `keys` is empty. `size` must be a prime above keys.size() (a smaller or composite
// size still gives a table, less even).
std::vector<uint32_t> MaglevTable(const std::vector<std::string>& keys,
                                  uint32_t size = kMaglevTableSize);

// A 64-bit hash of `text` that is the same in every process and on every machine (the first
// half of its SHA-256): for names that must survive a restart.
uint64_t StableHash(const std::string& text);

// Of the slots of table `a` whose backend is still in `b` (by key), the share that `b` gives to
// another backend that was already in `a`: the flows a change of the backend set moves between
// backends that stay (those a new backend takes are its share, not moved).
double MaglevMovedShare(const std::vector<std::string>& keys_a, const std::vector<uint32_t>& a,
                        const std::vector<std::string>& keys_b, const std::vector<uint32_t>& b);

}  // namespace stratus::network
