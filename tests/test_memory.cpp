// The memory limit: sizes parse with units, declared sizes past the limit are refused before
// allocating (model initializers, batches, tensors a node asks for), tensor memory in use is
// counted and released, and the command line reports each case in one line naming the file.
#include <gtest/gtest.h>

#include <omp.h>
#include <zlib.h>

#include "base/error.h"
#include "base/memory.h"
#include "data/idx.h"
#include "data/image.h"
#include "onnx/import.h"
#include "pack/packed.h"
#include "runtime/executor.h"
#include "support/cli_check.h"
#include "support/gradcheck.h"
#include "support/onnx_builder.h"
#include "support/paths.h"

using namespace mixq;
using namespace mixq::test;

namespace {

const std::string kMixq = MIXQ_BINARY;
const std::string kFmnist = "/usr/share/datasets/fashion-mnist";

// Sets a limit for one test and restores the machine default after it.
struct ScopedLimit {
  explicit ScopedLimit(uint64_t bytes) { set_mem_limit(bytes); }
  ~ScopedLimit() { set_mem_limit(0); }
};

void put_u32(std::vector<uint8_t>& b, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<uint8_t>(v >> shift));
}

void put_chunk(std::vector<uint8_t>& b, const std::string& type, const std::vector<uint8_t>& data) {
  put_u32(b, static_cast<uint32_t>(data.size()));
  const size_t start = b.size();
  b.insert(b.end(), type.begin(), type.end());
  b.insert(b.end(), data.begin(), data.end());
  put_u32(b,
          static_cast<uint32_t>(crc32(0, b.data() + start, static_cast<uInt>(b.size() - start))));
}

// A PNG file's header chunks (8-bit RGB of the given size) and an empty image data chunk: all
// a decoder reads before it allocates the pixels.
std::vector<uint8_t> png_header(uint32_t w, uint32_t h) {
  std::vector<uint8_t> b = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<uint8_t> ihdr;
  put_u32(ihdr, w);
  put_u32(ihdr, h);
  for (uint8_t v : {8, 2, 0, 0, 0})
    ihdr.push_back(v);  // depth, RGB, compression, filter, interlace
  put_chunk(b, "IHDR", ihdr);
  put_chunk(b, "IDAT", {});
  put_chunk(b, "IEND", {});
  return b;
}

}  // namespace

TEST(Memory, SizesParseWithUnits) {
  EXPECT_EQ(parse_mem_size("512M", "t"), uint64_t{512} << 20);
  EXPECT_EQ(parse_mem_size("8G", "t"), uint64_t{8} << 30);
  EXPECT_EQ(parse_mem_size("8gb", "t"), uint64_t{8} << 30);
  EXPECT_EQ(parse_mem_size("2GiB", "t"), uint64_t{2} << 30);
  EXPECT_EQ(parse_mem_size("1.5T", "t"), uint64_t{3} << 39);
  EXPECT_EQ(parse_mem_size("64K", "t"), uint64_t{64} << 10);
  for (const char* bad : {"8", "G", "-1G", "1Q", "abc", "", " 8G", "8G ", "0.5K", "2000T"})
    EXPECT_THROW(parse_mem_size(bad, "t"), Error) << bad;
}

TEST(Memory, MachineDefaultIsPositive) {
  EXPECT_GT(machine_memory(), uint64_t{1} << 26);
  EXPECT_EQ(mem_limit(), machine_memory());
}

TEST(Memory, TensorsPastTheLimitAreRefusedAndFreedMemoryIsReturned) {
  const uint64_t before = memory_in_use();
  ScopedLimit limit(before + (uint64_t{1} << 20));  // 1 MB beyond what is already held
  {
    Tensor a(DType::f32, {100, 1000});  // 400 KB
    EXPECT_GE(memory_in_use(), before + 400000);
    Tensor b(DType::f32, {100, 1000});
    try {
      Tensor c(DType::f32, {100, 1000});  // would bring the total past 1 MB
      ADD_FAILURE() << "third tensor allocated";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--mem-limit"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("[100,1000]"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(memory_in_use(), before);  // all released, including the refused reservation
  // Dimensions whose product overflows 64 bits are refused, not wrapped to a small size.
  EXPECT_THROW(Tensor(DType::f32, {int64_t{1} << 40, int64_t{1} << 40}), Error);
  Tensor ok(DType::f32, {100, 1000});  // the limit still admits what fits
}

// The smallest limit a run of a batch fits in also fits a smaller batch after it: tensors sized
// for the larger batch are released before the smaller ones are taken (the short last batch of
// a run used to need both at once).
TEST(Memory, ShortLastBatchFitsWhereTheFullBatchDid) {
  OnnxBuilder b;
  b.input("x", {-1, 16, 32, 32}).output("y", {-1, 16, 32, 32});
  b.initializer("w", random_tensor(DType::f32, {16, 16, 3, 3}, 1, 0.2));
  auto& conv = b.node("Conv", {"x", "w"}, {"c"}, "conv");
  OnnxBuilder::attr(conv, "pads", std::vector<int64_t>{1, 1, 1, 1});
  b.node("Sigmoid", {"c"}, {"s"}, "sig");
  b.node("Mul", {"c", "s"}, {"m"}, "mul");
  b.node("Tanh", {"m"}, {"t"}, "tanh");
  b.node("Add", {"t", "c"}, {"y"}, "add");
  const Graph g = load_onnx_bytes(b.bytes(), "chain.onnx");
  // One thread: with several, which thread takes which slice (and so how many slice
  // environments exist) depends on timing, and so does the peak.
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  for (const bool optimize : {false, true}) {
    const Impl impl = optimize ? Impl::fast : Impl::reference;
    auto fits = [&](uint64_t limit, const std::vector<int64_t>& batches) {
      ScopedLimit scoped(limit);
      try {
        Executor ex(g, impl, optimize);
        for (int64_t n : batches) {
          Tensor x = random_tensor(DType::f32, {n, 16, 32, 32}, 7, 1.0);
          ex.run({x});
        }
        return true;
      } catch (const Error&) {
        return false;
      }
    };
    // Binary search for the smallest limit under which one full batch runs.
    uint64_t lo = memory_in_use(), hi = lo + (uint64_t{256} << 20);
    ASSERT_TRUE(fits(hi, {8}));
    while (hi - lo > 4096) {
      const uint64_t mid = lo + (hi - lo) / 2;
      (fits(mid, {8}) ? hi : lo) = mid;
    }
    EXPECT_TRUE(fits(hi, {8, 8, 8})) << (optimize ? "optimized" : "reference");
    EXPECT_TRUE(fits(hi, {8, 8, 5})) << (optimize ? "optimized" : "reference");
    EXPECT_TRUE(fits(hi, {8, 3, 8})) << (optimize ? "optimized" : "reference");
  }
  omp_set_num_threads(threads);
}

TEST(Memory, ModelInitializerDeclaredPastTheLimitIsRefusedBeforeReading) {
  OnnxBuilder b;
  b.input("x", {1, 4}).output("y", {1, 4});
  b.node("Add", {"x", "big"}, {"y"}, "add");
  // Declared as 400 GB with 4 bytes of data: refused for its size, naming the initializer.
  onnx::TensorProto* t = b.model().mutable_graph()->add_initializer();
  t->set_name("big");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(100000);
  t->add_dims(1000000);
  t->set_raw_data("abcd");
  try {
    load_onnx_bytes(b.bytes(), "huge.onnx");
    ADD_FAILURE() << "loaded";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("huge.onnx"), std::string::npos) << m;
    EXPECT_NE(m.find("big"), std::string::npos) << m;
    EXPECT_NE(m.find("memory limit"), std::string::npos) << m;
  }
}

TEST(Memory, ImageHeaderPastTheLimitIsRefusedBeforeDecoding) {
  // 8000 x 8000 is under the decompression-bomb bound but needs ~1.2 GB to decode.
  const std::vector<uint8_t> png = png_header(8000, 8000);
  ASSERT_EQ(decode_image_size(png, "ok.png").width, 8000);
  ScopedLimit limit(uint64_t{1} << 30);
  try {
    decode_image(png, "big.png");
    ADD_FAILURE() << "decoded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("big.png: decoding an image of 8000x8000 pixels needs"),
              std::string::npos)
        << e.what();
  }
}

TEST(Memory, IdxHeaderPastTheLimitIsRefusedBeforeReading) {
  // 100000 x 28 x 28 bytes declared (78 MB), a few present.
  std::string idx = {0, 0, 0x08, 3};
  for (uint32_t d : {100000u, 28u, 28u})
    for (int shift = 24; shift >= 0; shift -= 8) idx.push_back(static_cast<char>(d >> shift));
  idx += std::string(16, '\0');
  ScopedLimit limit(uint64_t{10} << 20);
  try {
    read_idx_bytes(idx, "big-images-idx3-ubyte", 3);
    ADD_FAILURE() << "read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("big-images-idx3-ubyte: the header's array needs 74.8 MB"),
              std::string::npos)
        << e.what();
  }
}

TEST(Memory, PackedLayerPastTheLimitIsRefusedBeforeUnpacking) {
  PackedModel m;
  m.model = "test";
  PackedLayer l;
  l.name = "fc";
  l.op_type = "Gemm";
  l.weight_shape = {2, 300000};
  l.rows.assign(2, RowQuant{Scheme::fixed, 2, 1.0f});
  l.codes.assign(packed_code_bytes(l.rows, 300000), 0);
  m.layers.push_back(l);
  const std::string bytes = serialize_packed(m);
  EXPECT_EQ(parse_packed(bytes, "ok.mixq").layers.size(), 1u);
  ScopedLimit limit(uint64_t{1} << 20);  // the codes (150 KB) fit, the 2.4 MB of floats do not
  try {
    parse_packed(bytes, "big.mixq");
    ADD_FAILURE() << "parsed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("big.mixq: layer 'fc': unpacking its weights needs"),
              std::string::npos)
        << e.what();
  }
}

TEST(Memory, CommandLineRefusesWhatDoesNotFit) {
  const std::string model = repo_path("models/fmnist_default.onnx");
  // The file (378 KB, twice that while parsing) passes a 100 KB limit: refused before reading.
  expect_clean_error(run_command(kMixq + " --mem-limit 100K inspect " + model),
                     "fmnist_default.onnx: reading its 378 KB (parsing holds 2x) needs 756 KB");
  // The option works after the command's name too; bad sizes are usage errors.
  expect_clean_error(run_command(kMixq + " inspect " + model + " --mem-limit 100K"),
                     "over the memory limit of 100 KB");
  expect_clean_error(run_command(kMixq + " inspect " + model + " --mem-limit 8"), "--mem-limit", 2);
  expect_clean_error(run_command(kMixq + " inspect " + model + " --mem-limit 0G"), "--mem-limit",
                     2);
  if (!exists(kFmnist)) GTEST_SKIP() << "missing " << kFmnist << ": data cases skipped";
  // The data file itself, then a batch that alone passes the limit, name the data.
  expect_clean_error(run_command(kMixq + " eval " + model + " --data fmnist:test --mem-limit 2M"),
                     "t10k-images-idx3-ubyte.gz: reading it needs 4.22 MB, over the memory limit");
  expect_clean_error(
      run_command(kMixq + " eval " + model + " --data fmnist:test --batch 4096 --mem-limit 10M"),
      "fmnist:test (10000 images): a batch of 4096 samples needs 12.2 MB");
  // Activations that pass it name the node or model that asked for them.
  expect_clean_error(
      run_command(kMixq + " eval " + model + " --data fmnist:test --batch 4096 --mem-limit 20M"),
      "over the memory limit of 20 MB");
  for (const char* limit : {"14M", "16M", "18M", "20M", "24M"}) {
    const CommandResult r = run_command(kMixq + " eval " + model +
                                        " --data fmnist:test --batch 4096 --mem-limit " + limit);
    if (r.status == 0) continue;
    EXPECT_EQ(r.err.find("mixq: error: tensor:"), std::string::npos) << r.err;
    EXPECT_TRUE(r.err.find(" node '") != std::string::npos ||
                r.err.find("fmnist_default.onnx: evaluating a batch of 4096") !=
                    std::string::npos ||
                r.err.find("fmnist:test (10000 images): a batch of") != std::string::npos)
        << r.err;
  }
}
