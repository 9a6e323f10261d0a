// mixq inspect MODEL: per-layer type, shapes, parameters, MACs and weight bytes.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/validators.h"
#include "onnx/import.h"
#include "runtime/summary.h"

namespace mixq::cli {
namespace {

struct InspectArgs {
  std::string model;
  bool json = false;
};

std::string shapes_str(const std::vector<Shape>& shapes) {
  std::string s;
  for (const auto& sh : shapes) s += (s.empty() ? "" : " ") + shape_str(sh);
  return s;
}

int run_inspect(const InspectArgs& a) {
  Graph g = load_onnx(a.model);
  ModelSummary s = summarize(g);
  if (a.json) {
    nlohmann::json j;
    j["model"] = a.model;
    j["opset"] = g.opset;
    j["params"] = s.params;
    j["weight_bytes"] = s.weight_bytes;
    j["macs_per_sample"] = s.macs;
    j["unsupported_ops"] = s.unsupported;
    for (const auto& n : s.nodes)
      j["layers"].push_back({{"name", n.name},
                             {"op", n.op_type},
                             {"inputs", n.input_shapes},
                             {"output", n.output_shape},
                             {"params", n.params},
                             {"weight_bytes", n.weight_bytes},
                             {"macs", n.macs},
                             {"supported", n.supported}});
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("model  {}  (opset {}, {} nodes)\n", a.model, g.opset, g.nodes.size());
  for (int v : g.inputs)
    std::cout << fmt::format("input  {} {} {}\n", g.values[v].name, dtype_name(g.values[v].dtype),
                             shape_str(g.values[v].shape));
  for (int v : g.outputs)
    std::cout << fmt::format("output {} {} {}\n", g.values[v].name, dtype_name(g.values[v].dtype),
                             shape_str(g.values[v].shape));
  std::cout << fmt::format("\n{:<4} {:<20} {:<34} {:<22} {:<16} {:>9} {:>11} {:>13}\n", "#", "op",
                           "name", "input", "output", "params", "weight B", "MACs");
  for (size_t i = 0; i < s.nodes.size(); ++i) {
    const auto& n = s.nodes[i];
    std::string name = n.name.size() > 33 ? "…" + n.name.substr(n.name.size() - 32) : n.name;
    std::cout << fmt::format("{:<4} {:<20} {:<34} {:<22} {:<16} {:>9} {:>11} {:>13}{}\n", i,
                             n.op_type, name, shapes_str(n.input_shapes), shape_str(n.output_shape),
                             n.params, n.weight_bytes, n.macs, n.supported ? "" : "  UNSUPPORTED");
  }
  std::cout << fmt::format("\ntotal  params {}  weight bytes {}  MACs/sample {}{}\n", s.params,
                           s.weight_bytes, s.macs, s.shapes_known ? "" : " (shapes unknown)");
  if (!s.unsupported.empty()) {
    std::string list;
    for (const auto& op : s.unsupported) list += (list.empty() ? "" : ", ") + op;
    std::cout << "unsupported ops: " << list << "\n";
  }
  return 0;
}

}  // namespace

void add_inspect(CLI::App& app, Action& action) {
  auto args = std::make_shared<InspectArgs>();
  auto* cmd = app.add_subcommand("inspect", "Show layers, shapes, parameters, MACs, op support");
  cmd->add_option("model", args->model, "ONNX model file")->required()->type_name(kFileType);
  cmd->add_flag("--json", args->json, "Print JSON instead of a table");
  cmd->callback([args, &action] { action = [args] { return run_inspect(*args); }; });
}

}  // namespace mixq::cli
