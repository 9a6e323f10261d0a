// NumPy arrays: .npy files (format versions 1-3: magic, a little-endian header length, a Python
// dict literal {'descr', 'fortran_order', 'shape'}, then the elements) and .npz archives (a zip
// of .npy members, stored or deflated, read with libzip). Arrays become tensors in C order.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace mixq {

// Parses .npy bytes. Element types: float32/64, int8/16/32/64, uint8, bool, either byte order.
// Error(where, ...) on a bad magic or header, an unsupported type (float16, unsigned wider than
// a byte, structured, objects), a shape whose size does not match the bytes, or a size past the
// memory limit (checked before allocating).
Tensor parse_npy(const std::string& bytes, const std::string& where);
Tensor read_npy(const std::string& path);

// The arrays of an .npz archive, in archive order, named without the ".npy" suffix. Error naming
// the archive (and the member) for a bad zip, a member that is not .npy, or duplicate names.
std::vector<std::pair<std::string, Tensor>> read_npz(const std::string& path);
std::vector<std::pair<std::string, Tensor>> parse_npz(const std::string& bytes,
                                                      const std::string& where);

// Writes a C-order version 1.0 .npy (for tests and exported results).
std::string npy_bytes(const Tensor& t);
// An .npz archive of these arrays (members NAME.npy), deflated or stored.
std::string npz_bytes(const std::vector<std::pair<std::string, Tensor>>& arrays, bool compress);

}  // namespace mixq
