// IDX files (the MNIST / Fashion-MNIST format), raw or gzip-compressed: a big-endian header
// (0, 0, element type, rank, then rank int32 dimensions) followed by the elements.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace mixq {

// An unsigned-byte IDX array.
struct IdxArray {
  Shape dims;
  std::vector<uint8_t> data;
};

// Reads an unsigned-byte IDX file of the given rank (gzip detected by its magic bytes). Throws
// Error(path, ...) on a bad magic number, element type or rank, zero dimensions, a truncated
// file (naming what is short) or trailing bytes.
IdxArray read_idx(const std::string& path, int rank);
// Same, from the file's bytes already in memory; `where` names them in errors.
IdxArray read_idx_bytes(const std::string& bytes, const std::string& where, int rank);

// Writes an unsigned-byte IDX file (gzip when gz), e.g. to make test data.
void write_idx(const std::string& path, const Shape& dims, const std::vector<uint8_t>& data,
               bool gz);

}  // namespace mixq
