// mixq's public API: mixed-precision quantization of an ONNX model under budgets, step by step as
// the `mixq quantize` command runs it.
//
//   Model model = Model::load("model.onnx");
//   Data calib = Data::open("folder:train"), test = Data::open("folder:test");
//   Calibration cal = calibrate(model, calib);
//   Sensitivities s = measure_sensitivities(model, cal, calib);
//   Allocation a = allocate(s, "3bits");
//   QuantizedModel q = apply(model, cal, a);
//   q.export_qdq("model_qdq.onnx");
//   Accuracy acc = evaluate(q, test);
//
// Every call throws mixq::Error (mixq/error.h) naming the file, node or option at fault. The
// value types share their state: copies are cheap and refer to the same model or measurement.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mixq/error.h"

namespace mixq::api {

std::string version();
// The embedded default model (a Fashion-MNIST CNN trained by mixq) in the installed data folder.
std::string default_model_path();

// One line of progress of a long call.
using Progress = std::function<void(const std::string& line)>;

// A layer whose weights mixq quantizes (Conv, Gemm, MatMul with constant weights).
struct LayerInfo {
  std::string name, op_type;
  int64_t rows = 0;     // output channels
  int64_t weights = 0;  // weight elements
};

class Model {
 public:
  static Model load(const std::string& path);
  // A serialized ONNX ModelProto; `name` stands for the model in messages.
  static Model from_bytes(const std::string& bytes, const std::string& name = "model bytes");
  std::string source() const;
  std::vector<std::string> inputs() const;
  std::vector<std::string> outputs() const;
  std::vector<LayerInfo> layers() const;  // graph order

  struct Impl;
  std::shared_ptr<const Impl> impl;
};

// A float32 array, row-major, first dimension over samples.
struct Array {
  std::vector<int64_t> shape;
  std::vector<float> values;
};

class Data {
 public:
  // A data spec as the command line takes it: fmnist:train, folder:DIR, idx:IMAGES,LABELS,
  // npy:FILE[,LABELS], npz:FILE.
  static Data open(const std::string& spec);
  // Arrays fed as they are, keyed by model input name (empty names: the inputs in order);
  // labels: one class index per sample, or none.
  static Data from_arrays(std::vector<std::pair<std::string, Array>> inputs,
                          std::vector<int64_t> labels = {}, const std::string& name = "arrays");
  size_t size() const;
  bool labelled() const;
  std::string description() const;

  struct Impl;
  std::shared_ptr<const Impl> impl;
};

struct CalibrateOptions {
  int activation_bits = 8;  // 0: activations stay float
  size_t samples = 512;     // a seeded random subset of the data
  uint64_t seed = 0;
};

// Activation ranges of every quantized layer's input, from the float model.
class Calibration {
 public:
  int activation_bits() const;
  size_t samples() const;

  struct Impl;
  std::shared_ptr<const Impl> impl;
};

Calibration calibrate(const Model& model, const Data& data, const CalibrateOptions& options = {});

struct SensitivityOptions {
  // Weight candidates per layer: wN (fixed point), pN / spN (power-of-two, SP2), wN-msqR (mixed
  // fixed and SP2 rows).
  std::vector<std::string> candidates{"w2", "w4", "w8"};
  size_t samples = 256;
  uint64_t seed = 0;
  std::string loss;        // "ce", "kl", "mse"; empty: cross-entropy with labels, else KL / MSE
  std::string checkpoint;  // file that makes an interrupted measurement resumable; empty: none
  Progress progress;
};

// CLADO's measurements: the loss increase of each layer at each candidate alone, and of every
// pair of layers together (the cross-layer matrix Omega).
class Sensitivities {
 public:
  std::vector<std::string> layers() const;
  std::vector<std::string> candidates() const;
  double base_loss() const;
  std::vector<double> single() const;  // [layer][candidate], row-major
  std::vector<double> omega() const;   // [(layer, candidate)][(layer, candidate)], row-major

  struct Impl;
  std::shared_ptr<const Impl> impl;
};

Sensitivities measure_sensitivities(const Model& model, const Calibration& calibration,
                                    const Data& data, const SensitivityOptions& options = {});

struct LayerChoice {
  std::string layer, candidate;  // candidate "float": kept float
  double bits = 0;               // average bits per weight of the layer (32: float)
};

// How much of one budget an allocation uses.
struct BudgetUse {
  std::string budget;          // as given: "3bits", "1.5MB", "0.6ms@XC7Z020", ...
  double used = 0, limit = 0;  // in the budget's unit
};

class Allocation {
 public:
  std::string method() const;
  // The searched layers and the layers the options fixed, in graph order.
  std::vector<LayerChoice> layers() const;
  std::vector<BudgetUse> budgets() const;
  double predicted_loss_increase() const;

  struct Impl;
  std::shared_ptr<const Impl> impl;
};

// budgets: comma-separated, all met ("3bits,0.6ms@XC7Z020"); method: clado, diagonal, greedy,
// uniform. A bits budget is the average over the searched layers (Sensitivities::layers()); a
// size, BOPs or latency budget covers the whole model, the layers kept at 8 bits included.
Allocation allocate(const Sensitivities& sensitivities, const std::string& budgets,
                    const std::string& method = "clado");

// Per-layer control (the command line's --keep-float and --pin). Each regex is ECMAScript and is
// searched in the layer name ("conv1" also finds "block.conv1"; "^conv1$" is one name); one
// that finds no layer, or a layer both kept float and pinned or pinned twice differently, is an
// Error. Fixed layers are not searched; a bits budget averages over the searched layers left
// free, the other budgets count the fixed layers at what they are fixed to (docs/layer-control.md).
struct AllocateOptions {
  std::string method = "clado";
  std::vector<std::string> keep_float;  // layers left float: weights and input
  std::vector<std::string> pins;        // "REGEX=CANDIDATE", one of the measured candidates
};
Allocation allocate(const Sensitivities& sensitivities, const std::string& budgets,
                    const AllocateOptions& options);

// One row of a quantized model's per-layer table.
struct QuantizedLayer {
  std::string name, op_type;
  std::string schemes;      // the weight schemes of its rows: "fixed", "fixed+sp2"; "float"
  double weight_bits = 32;  // average over its rows (32: float weights)
  int activation_bits = 0;  // of its data input (0: float)
  int64_t weights = 0;      // weight elements
};

class QuantizedModel {
 public:
  double average_weight_bits() const;  // over every quantized layer, the ones kept at 8 bits too
  std::vector<QuantizedLayer> layers() const;  // every quantized layer, graph order
  double weight_bytes() const;
  std::string config_json() const;  // the per-layer config, as `mixq quantize` writes it
  void save_config(const std::string& path) const;
  void export_qdq(const std::string& path) const;     // ONNX with QuantizeLinear/DequantizeLinear
  void export_packed(const std::string& path) const;  // mixq's packed integer format

  struct Impl;
  std::shared_ptr<const Impl> impl;
};

QuantizedModel apply(const Model& model, const Calibration& calibration,
                     const Allocation& allocation);

struct Accuracy {
  size_t samples = 0;
  bool labelled = false;  // top1, top5 and loss are measured
  double top1 = 0, top5 = 0, loss = 0;
};

// limit: at most this many samples (0: all).
Accuracy evaluate(const Model& model, const Data& data, size_t limit = 0);
Accuracy evaluate(const QuantizedModel& model, const Data& data, size_t limit = 0);

}  // namespace mixq::api
