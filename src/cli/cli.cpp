#include "cli/cli.h"

#include <omp.h>
#include <unistd.h>

#include <iostream>
#include <new>

#include "base/error.h"
#include "base/memory.h"
#include "cli/commands.h"
#include "cli/validators.h"
#include "dist/world.h"

namespace mixq {
namespace cli {

void set_threads(int threads) {
  if (threads > 0) omp_set_num_threads(threads);
}

bool stderr_is_tty() {
  return isatty(STDERR_FILENO) != 0;
}

namespace {
std::string g_command_line;
}

const std::string& command_line() {
  return g_command_line;
}

}  // namespace cli

int cli_main(int argc, char** argv) {
  CLI::App app{"mixq: mixed-precision, mixed-scheme quantization of ONNX models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "mixq 0.1.0");
  // One memory limit for every command, given before or after the command's name.
  app.fallthrough();
  app.add_option_function<std::string>(
         "--mem-limit",
         [](const std::string& text) {
           try {
             set_mem_limit(parse_mem_size(text, "--mem-limit"));
           } catch (const Error& e) {
             throw CLI::ValidationError("--mem-limit", e.cause());
           }
         },
         "Refuse models, data and batches that would need more memory than this (512M, 8G; "
         "default: the machine's memory)")
      ->type_name("SIZE");
  cli::Action action;
  // Reports quote the command that made them; arguments with spaces are quoted.
  for (int i = 0; i < argc; ++i) {
    const std::string arg = i == 0 ? "mixq" : argv[i];
    cli::g_command_line +=
        (i ? " " : "") + (arg.find(' ') == std::string::npos ? arg : "'" + arg + "'");
  }
  cli::add_inspect(app, action);
  cli::add_eval(app, action);
  cli::add_calibrate(app, action);
  cli::add_quantize(app, action);
  cli::add_sensitivity(app, action);
  cli::add_allocate(app, action);
  cli::add_sweep(app, action);
  cli::add_hw(app, action);
  cli::add_report(app, action);
  cli::add_train(app, action);
  cli::add_finetune(app, action);
  cli::add_common_checks(app);
  std::string names;
  bool known = false;
  for (const auto* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    names += (names.empty() ? "" : ", ") + sub->get_name();
    known = known || (argc > 1 && sub->get_name() == argv[1]);
  }
  if (argc > 1 && argv[1][0] != '-' && !known) {
    std::cerr << "mixq: error: unknown command '" << argv[1] << "' (commands: " << names << ")\n";
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "mixq: error: " << e.what() << " (see mixq --help)\n";
    return 2;
  }
  // Only the sensitivity measurement shards its work; other commands would just run N times.
  if (dist::launched_by_mpi() && std::string(argv[1]) != "sensitivity") {
    std::cerr << "mixq: error: " << argv[1]
              << " does not run under mpirun (only sensitivity is distributed)\n";
    return 2;
  }
  int status = 1;
  try {
    return action ? action() : 0;
  } catch (const Error& e) {
    std::cerr << "mixq: error: " << e.what() << "\n";
    // A flag found wrong only once the run started is still bad usage (README: exit 2).
    if (e.where().rfind('-', 0) == 0) status = 2;
  } catch (const std::bad_alloc&) {
    std::cerr << "mixq: error: out of memory\n";
  } catch (const std::exception& e) {
    std::cerr << "mixq: error: " << e.what() << "\n";
  }
  // A rank that fails alone would leave the others waiting for it.
  if (dist::launched_by_mpi()) dist::World::get().abort(status);
  return status;
}

}  // namespace mixq
