// Checks every command's flags share, applied while parsing so that a bad value is a usage
// error (exit 2) before any work: no flag is silently ignored, emptied or replaced.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace mixq::cli {

// Type names of options whose values are paths or free text: only emptiness is checked here.
// Every other option taking text has a validator of its syntax.
inline constexpr const char* kFileType = "FILE";
inline constexpr const char* kDirType = "DIR";
inline constexpr const char* kSpecType = "SPEC";      // a data spec: fmnist:test, folder:DIR, ...
inline constexpr const char* kFreeTextType = "NAME";  // titles, labels: anything goes

// Adds to every option of every subcommand that takes a value: not empty, and for numbers
// (FLOAT) finite ("--lr: must be a finite number, got 'nan'"), counts (UINT) not negative.
void add_common_checks(CLI::App& app);

// A validator from a parser that throws Error on bad text (parse_budgets, parse_candidates):
// the Error's cause becomes the usage message.
CLI::Validator parsed_by(std::function<void(const std::string&)> parse, const std::string& name);

// Choices built from the scheme table (quant/scheme.h) and its bit range (kMinBits..kMaxBits),
// so that flags, their help and their checks follow the library's table.
// The schemes' names, `first` (the flag's default) first and the rest in table order; with
// shift_only, the multiplier-free schemes only (the shift rows of MSQ).
std::vector<std::string> scheme_choices(const std::string& first, bool shift_only = false);
// The weight bit-widths kMinBits..kMaxBits, after 0 (float weights) when with_float.
std::vector<int> weight_bits_choices(bool with_float);
// "2..8".
std::string bits_range();
// The items joined by `sep`.
std::string join(const std::vector<std::string>& items, const std::string& sep);

// "--flag": the name of an option as messages give it (its long name, else its short one).
std::string flag_name(const CLI::Option& opt);

}  // namespace mixq::cli
