// How the commands show sweep rows (search/sweep.h): a progress line per row on stderr, and the
// CSV table of mixq sweep.
#pragma once
#include <string>

#include "search/sweep.h"

namespace mixq::cli {

inline constexpr const char* kSweepCsvHeader =
    "method,budget,avg_bits,weight_kb,predicted,measured,test_top1,solver,seconds\n";

// The row as a line of the CSV table (with its newline).
std::string sweep_csv_line(const SweepRow& row);

// Writes the row's progress line to stderr.
void print_sweep_row(const SweepRow& row);

}  // namespace mixq::cli
