// The memory a run may use. Sizes declared by files (tensor shapes, IDX headers, image headers,
// packed layers) and the buffers a run plans are checked against it before anything is
// allocated, so an absurd or hostile size ends in a one-line error instead of an allocation
// failure or the kernel's OOM killer.
#pragma once
#include <cstdint>
#include <string>

namespace mixq {

// Bytes of physical memory, lowered to the cgroup limit when the process runs under one.
uint64_t machine_memory();
// The limit in force: set_mem_limit's, else machine_memory().
uint64_t mem_limit();
void set_mem_limit(uint64_t bytes);

// Throws Error(where, "<what> needs X, over the memory limit Y (--mem-limit)") when `bytes`
// (a double, so products of declared dimensions cannot overflow) exceeds the limit.
void check_memory(double bytes, const std::string& where, const std::string& what);

// Tensor memory in use: tensor storage reserves its bytes before allocating and releases them
// when freed. try_reserve_memory is false, reserving nothing, when the total would pass the
// limit; over_limit_text then says why.
bool try_reserve_memory(uint64_t bytes);
void release_memory(uint64_t bytes);
uint64_t memory_in_use();
std::string over_limit_text(double bytes);

// "512M", "8G", "1.5GB", "2GiB", "64K", "1T" (powers of 1024); refuses missing units.
uint64_t parse_mem_size(const std::string& text, const std::string& where);
// "1.5 GB", "320 MB", "12 KB" for messages.
std::string format_bytes(double bytes);

}  // namespace mixq
