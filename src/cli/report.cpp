// mixq report [--quant Q.json] [--omega F.omega] [--sweep sweep.json] [--hw hw.json] -o R.html:
// one self-contained HTML file with the allocation, the Omega heatmap, the accuracy-against-size
// curves and the FPGA figures, from the files the other commands write.
#include <fmt/format.h>

#include <iostream>

#include "base/error.h"
#include "base/file_io.h"
#include "cli/commands.h"
#include "cli/validators.h"
#include "report/report.h"

namespace mixq::cli {
namespace {

struct ReportArgs {
  std::string quant, omega, sweep, hw, out, title = "mixq report", model;
};

nlohmann::json read_json(const std::string& path) {
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path, std::string("not valid JSON: ") + e.what());
  }
}

int run_report(const ReportArgs& a) {
  check(!a.quant.empty() || !a.omega.empty() || !a.sweep.empty() || !a.hw.empty(), "report",
        "nothing to show: give at least one of --quant, --omega, --sweep, --hw");
  check_output_file(a.out, "-o");
  check_no_overwrite(a.out,
                     {{a.quant, "--quant config"},
                      {a.omega, "--omega sensitivity file"},
                      {a.sweep, "--sweep results"},
                      {a.hw, "--hw figures"}},
                     "-o");
  ReportInputs in;
  in.title = a.title;
  in.model = a.model;
  QuantConfig cfg;
  SensitivityData d;
  if (!a.quant.empty()) in.config = &(cfg = load_quant_config(a.quant));
  if (!a.omega.empty()) {
    d = load_sensitivity(a.omega);
    check(d.complete(), a.omega, "measurement not complete (resume it)");
    in.omega = &d;
    if (in.model.empty()) in.model = d.header.value("model", "");
  }
  if (!a.sweep.empty()) {
    in.sweep = read_json(a.sweep);
    check(in.sweep.is_object() && in.sweep.contains("rows"), a.sweep,
          "not a mixq sweep --json file (no rows)");
  }
  if (!a.hw.empty()) {
    in.hw = read_json(a.hw);
    check(in.hw.is_object() && in.hw.contains("total") && in.hw.contains("layers"), a.hw,
          "not a mixq hw --json file");
  }
  write_file_atomic(a.out, render_report(in));
  std::cout << "wrote " << a.out << "\n";
  return 0;
}

}  // namespace

void add_report(CLI::App& app, Action& action) {
  auto a = std::make_shared<ReportArgs>();
  auto* cmd = app.add_subcommand("report", "Write the HTML report of an allocation");
  cmd->add_option("--quant", a->quant, "Quantization config (mixq allocate / quantize)")
      ->type_name(kFileType);
  cmd->add_option("--omega", a->omega, "Sensitivity file (mixq sensitivity)")->type_name(kFileType);
  cmd->add_option("--sweep", a->sweep, "Sweep results (mixq sweep --json)")->type_name(kFileType);
  cmd->add_option("--hw", a->hw, "FPGA figures (mixq hw --json)")->type_name(kFileType);
  cmd->add_option("--model", a->model, "Model name shown in the summary")->type_name(kFreeTextType);
  cmd->add_option("--title", a->title, "Report title")->type_name(kFreeTextType);
  cmd->add_option("-o,--output", a->out, "HTML file to write")->required()->type_name(kFileType);
  cmd->callback([a, &action] { action = [a] { return run_report(*a); }; });
}

}  // namespace mixq::cli
