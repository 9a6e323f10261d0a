// Walks a dataset in batches: optionally only a subset (the first N samples, or a seeded random
// N for calibration sets) and optionally in a seeded shuffled order. Random choices use our own
// generator so the same seed gives the same samples on every platform and standard library.
#pragma once
#include <cstdint>
#include <vector>

#include "data/dataset.h"

namespace mixq {

struct IterOptions {
  size_t batch_size = 64;
  bool shuffle = false;        // new order per epoch, from (seed, epoch)
  size_t limit = 0;            // use at most this many samples; 0 = all
  bool random_subset = false;  // with limit: a seeded random subset instead of the first N
  uint64_t seed = 0;
};

class BatchIterator {
 public:
  BatchIterator(const Dataset& dataset, const IterOptions& options);

  // Fills the next batch; false when the epoch is done. The last batch may be smaller.
  bool next(Batch& batch);
  // Restarts; with shuffle, the order is drawn anew from (seed, epoch).
  void start_epoch(uint64_t epoch);

  size_t num_samples() const { return subset_.size(); }
  size_t num_batches() const;
  // Dataset indices of this epoch, in visiting order.
  const std::vector<size_t>& order() const { return order_; }

 private:
  const Dataset& dataset_;
  IterOptions options_;
  std::vector<size_t> subset_;  // the chosen samples, ascending
  std::vector<size_t> order_;
  size_t pos_ = 0;
};

// Deterministic helpers (splitmix64-seeded xoshiro256**; unbiased bounded draws).
// A random subset of k of the indices 0..n-1, ascending.
std::vector<size_t> random_subset(size_t n, size_t k, uint64_t seed);
// Fisher-Yates shuffle in place.
void seeded_shuffle(std::vector<size_t>& v, uint64_t seed);

}  // namespace mixq
