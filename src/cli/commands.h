// Each subcommand lives in its own file and registers itself on the root app.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>

namespace mixq::cli {

// Subcommands set this to the work to do once parsing succeeded.
using Action = std::function<int()>;

void add_inspect(CLI::App& app, Action& action);
void add_eval(CLI::App& app, Action& action);
void add_calibrate(CLI::App& app, Action& action);
void add_quantize(CLI::App& app, Action& action);
void add_sensitivity(CLI::App& app, Action& action);
void add_allocate(CLI::App& app, Action& action);
void add_sweep(CLI::App& app, Action& action);
void add_hw(CLI::App& app, Action& action);
void add_report(CLI::App& app, Action& action);
void add_train(CLI::App& app, Action& action);
void add_finetune(CLI::App& app, Action& action);

// Options shared by commands that run networks.
void set_threads(int threads);
// True when stderr is a terminal (progress is shown only then).
bool stderr_is_tty();
// The command line of this run, for reports ("mixq quantize ...").
const std::string& command_line();

}  // namespace mixq::cli
