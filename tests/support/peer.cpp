#include "support/peer.h"

#include <filesystem>
#include <fstream>

#include "support/onnx_builder.h"
#include "support/paths.h"

namespace mixq::test {

std::string peer_missing() {
  if (run_command("command -v node").status != 0) return "node is not installed";
  if (!exists(repo_path("bench/peer/node_modules/onnxruntime-node/package.json")))
    return "bench/peer/node_modules/onnxruntime-node is absent (run scripts/install-peer.sh)";
  return "";
}

void write_peer_inputs(const Dataset& data, size_t n, const std::string& dir) {
  Batch b = data.get_batch(0, std::min(n, data.size()));
  std::ofstream img(dir + "/images.f32", std::ios::binary);
  img.write(static_cast<const char*>(b.inputs[0].raw()),
            static_cast<std::streamsize>(b.inputs[0].nbytes()));
  std::ofstream lab(dir + "/labels.i64", std::ios::binary);
  lab.write(reinterpret_cast<const char*>(b.labels.data()),
            static_cast<std::streamsize>(b.labels.size() * sizeof(int64_t)));
}

nlohmann::json run_peer_eval(const std::string& model, const std::string& dir, const Shape& chw,
                             bool keep_qdq) {
  std::string cmd = std::string(keep_qdq ? "ORT_NO_QDQ=1 " : "") + "node " +
                    repo_path("bench/peer/ort_eval.js") + " " + model + " " + dir + "/images.f32 " +
                    dir + "/labels.i64 " + std::to_string(chw[0]) + " " + std::to_string(chw[1]) +
                    " " + std::to_string(chw[2]) + " 2";
  CommandResult r = run_command(cmd);
  if (r.status != 0) throw std::runtime_error("peer failed: " + r.err);
  return nlohmann::json::parse(r.out);
}

namespace {

std::map<std::string, Tensor> parse_peer_outputs(const std::string& cmd) {
  CommandResult r = run_command(cmd);
  if (r.status != 0) throw std::runtime_error("peer failed: " + r.err);
  std::map<std::string, Tensor> outs;
  const nlohmann::json all = nlohmann::json::parse(r.out);
  for (const auto& [name, j] : all.items()) {
    const auto values = j["data"].get<std::vector<double>>();
    Tensor t(DType::f32, j["dims"].get<Shape>());
    for (size_t i = 0; i < values.size(); ++i) t.data<float>()[i] = static_cast<float>(values[i]);
    outs.emplace(name, std::move(t));
  }
  return outs;
}

void write_raw(const std::string& path, const Tensor& t) {
  std::ofstream f(path, std::ios::binary);
  f.write(static_cast<const char*>(t.raw()), static_cast<std::streamsize>(t.nbytes()));
}

}  // namespace

std::map<std::string, Tensor> run_peer_outputs(const std::string& model, const Tensor& input) {
  TempDir dir;
  const std::string path = dir.file("input.f32");
  write_raw(path, input);
  // Dimensions appended piece by piece: GCC 12 warns falsely (-Wrestrict) on " " + temporary.
  std::string cmd = "node " + repo_path("bench/peer/ort_outputs.js") + " " + model + " " + path;
  for (int64_t d : input.shape()) {
    cmd += ' ';
    cmd += std::to_string(d);
  }
  return parse_peer_outputs(cmd);
}

std::map<std::string, Tensor> run_peer_outputs(const std::string& model,
                                               const std::map<std::string, Tensor>& inputs,
                                               bool keep_qdq) {
  TempDir dir;
  std::string cmd = std::string(keep_qdq ? "ORT_NO_QDQ=1 " : "") + "node " +
                    repo_path("bench/peer/ort_outputs.js") + " " + model;
  int k = 0;
  for (const auto& [name, t] : inputs) {
    const std::string path = dir.file("input" + std::to_string(k++));
    write_raw(path, t);
    std::string dims;
    for (int64_t d : t.shape()) {
      if (!dims.empty()) dims += ',';
      dims += std::to_string(d);
    }
    // Appended piece by piece (GCC 12's false -Wrestrict on " " + temporary).
    cmd += " '";
    cmd += name;
    cmd += t.dtype() == DType::i64 ? "=int64:" : "=float32:";
    cmd += path;
    cmd += ':';
    cmd += dims;
    cmd += '\'';
  }
  return parse_peer_outputs(cmd);
}

}  // namespace mixq::test
