#include "base/memory.h"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <fstream>

#include "base/error.h"
#include "base/parse.h"

namespace mixq {
namespace {

std::atomic<uint64_t> g_limit{0};  // 0: not set, use the machine's
std::atomic<uint64_t> g_in_use{0};

// cgroup v2 first, then v1; "max" or absence means no limit.
uint64_t cgroup_limit() {
  for (const char* path :
       {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream f(path);
    std::string text;
    if (f >> text && !text.empty() && std::isdigit(static_cast<unsigned char>(text[0])))
      return std::stoull(text);
  }
  return 0;
}

}  // namespace

uint64_t machine_memory() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  uint64_t bytes = pages > 0 && page > 0
                       ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page)
                       : uint64_t{1} << 34;
  const uint64_t cg = cgroup_limit();
  if (cg > 0 && cg < bytes) bytes = cg;
  return bytes;
}

uint64_t mem_limit() {
  const uint64_t set = g_limit.load(std::memory_order_relaxed);
  if (set) return set;
  static const uint64_t machine = machine_memory();
  return machine;
}

void set_mem_limit(uint64_t bytes) {
  g_limit.store(bytes, std::memory_order_relaxed);
}

std::string format_bytes(double bytes) {
  const char* units[] = {"bytes", "KB", "MB", "GB", "TB", "PB", "EB"};
  int u = 0;
  while (bytes >= 1024 && u < 6) bytes /= 1024, ++u;
  return u == 0 ? fmt::format("{:.0f} bytes", bytes) : fmt::format("{:.3g} {}", bytes, units[u]);
}

void check_memory(double bytes, const std::string& where, const std::string& what) {
  if (bytes <= static_cast<double>(mem_limit())) return;
  throw Error(where, what + " " + over_limit_text(bytes));
}

bool try_reserve_memory(uint64_t bytes) {
  const uint64_t before = g_in_use.fetch_add(bytes, std::memory_order_relaxed);
  if (before + bytes <= mem_limit() && before + bytes >= before) return true;
  g_in_use.fetch_sub(bytes, std::memory_order_relaxed);
  return false;
}

std::string over_limit_text(double bytes) {
  const uint64_t in_use = memory_in_use();
  return "needs " + format_bytes(bytes) +
         (in_use ? " with " + format_bytes(static_cast<double>(in_use)) + " in use" : "") +
         ", over the memory limit of " + format_bytes(static_cast<double>(mem_limit())) +
         " (--mem-limit)";
}

void release_memory(uint64_t bytes) {
  g_in_use.fetch_sub(bytes, std::memory_order_relaxed);
}

uint64_t memory_in_use() {
  return g_in_use.load(std::memory_order_relaxed);
}

uint64_t parse_mem_size(const std::string& text, const std::string& where) {
  size_t unit = text.size();
  while (unit > 0 && std::isalpha(static_cast<unsigned char>(text[unit - 1]))) --unit;
  std::string suffix = text.substr(unit);
  for (char& c : suffix) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (suffix.size() > 1 && suffix.back() == 'B') suffix.pop_back();
  if (suffix.size() > 1 && suffix.back() == 'I') suffix.pop_back();
  const std::string units = "KMGT";
  const size_t u = suffix.size() == 1 ? units.find(suffix[0]) : std::string::npos;
  const auto number = parse_number(text.substr(0, unit));
  check(number && u != std::string::npos, where,
        "'" + text + "' is not a memory size (a number and a unit: 512M, 8G, 1.5T)");
  const double bytes = *number * static_cast<double>(uint64_t{1} << (10 * (u + 1)));
  check(bytes >= 1024 && bytes <= 0x1p50, where, "'" + text + "' is outside 1K to 1024T");
  return static_cast<uint64_t>(bytes);
}

}  // namespace mixq
