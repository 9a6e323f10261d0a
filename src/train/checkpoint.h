// Training checkpoints: one file holding a JSON header (what the run is and where it stands) and
// the raw tensors (parameters, BatchNormalization statistics, optimizer state). Written
// atomically, so a run killed while saving leaves the previous checkpoint intact.
//
// Format, version 1 (all integers little-endian):
//   offset 0   8 bytes   magic "MIXQCKPT"
//          8   u32       format version (1)
//         12   u32       0 (reserved)
//         16   u64       H, length of the header
//         24   H bytes   header, UTF-8 JSON:
//                          {"meta": {...},   free-form run state, see train/trainer.h
//                           "tensors": [{"name", "dtype" ("float32", ...), "shape": [...],
//                                        "offset", "bytes"}, ...]}
//              zeros     up to the next multiple of 64
//              data      the tensors' bytes, row-major, each at its "offset" from the start of
//                        the data (multiples of 64)
//   last 8 bytes u64     FNV-1a 64 hash of every byte before it
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace mixq {

inline constexpr uint32_t kCheckpointVersion = 1;

struct Checkpoint {
  nlohmann::json meta = nlohmann::json::object();
  std::vector<std::pair<std::string, Tensor>> tensors;

  // nullptr when absent.
  const Tensor* find(const std::string& name) const;
  void add(const std::string& name, const Tensor& t) { tensors.emplace_back(name, t); }
};

std::string serialize_checkpoint(const Checkpoint& c);
// Throws Error(where, ...) for a file that is not a checkpoint, of another version, truncated
// or corrupted (hash mismatch).
Checkpoint parse_checkpoint(const std::string& bytes, const std::string& where);

void save_checkpoint(const std::string& path, const Checkpoint& c);
Checkpoint load_checkpoint(const std::string& path);

}  // namespace mixq
