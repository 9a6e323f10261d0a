// The packed format (.mixq) for edge and FPGA toolchains: per quantized layer, every row's
// scheme, bit-width and scale, the weights bit-packed at their row's width, the bias and the
// activation quantizer at the layer's input. Layout (docs/packed-format.md), little-endian:
//
//   "MIXQPACK"  u32 version  u32 0  u64 header bytes  header (JSON)  zero padding to 64
//   data: per layer, at the offsets the header gives (64-byte aligned):
//     schemes u8[rows]  bits u8[rows]  scales f32[rows]  bias f32[rows] (if any)
//     codes: row after row, each starting on a byte; element i of a row at bit i * bits,
//            least significant bit first; a code is sign (top bit) | field (bits - 1 bits),
//            the field as scheme.h level_field defines it
//   u64 FNV-1a hash of every byte before it
//
// The network's topology stays in the ONNX model; the layer names match its nodes.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "quant/config.h"

namespace mixq {

struct PackedLayer {
  std::string name, op_type;
  Shape weight_shape;
  int row_axis = 0;
  std::vector<RowQuant> rows;
  std::vector<uint8_t> codes;                       // bit-packed as above
  std::vector<float> bias;                          // empty when the layer has none
  nlohmann::json attrs = nlohmann::json::object();  // Conv geometry (strides, pads, group, ...)
  std::optional<ActQuant> input;
};

struct PackedModel {
  static constexpr uint32_t kVersion = 1;
  std::string model;  // the ONNX file it came from (informative)
  std::vector<PackedLayer> layers;
};

// Packs every layer the config quantizes (layers left in float are not included).
PackedModel pack_model(const Graph& g, const QuantConfig& cfg, const std::string& where = "config");
// The dequantized weight of a packed layer (equal to fake_quantize_weight of the original).
Tensor unpack_weight(const PackedLayer& l);
// Bytes the packed codes of these rows take (row_elements values per row).
size_t packed_code_bytes(const std::vector<RowQuant>& rows, int64_t row_elements);

std::string serialize_packed(const PackedModel& m);
// Throws Error naming `where` for a bad magic, version, hash, header or size.
PackedModel parse_packed(const std::string& bytes, const std::string& where);
void save_packed(const PackedModel& m, const std::string& path);  // atomic
PackedModel load_packed(const std::string& path);

}  // namespace mixq
