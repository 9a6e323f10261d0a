#include "models/models.h"

#include <cmath>

#include "base/error.h"
#include "models/builder.h"

namespace mixq {
namespace {

Graph lenet(const ModelSpec& s) {
  const int64_t w = s.base_width > 0 ? s.base_width : 6;
  const int64_t w2 = (w * 8 + 1) / 3;
  GraphBuilder b(s.channels, s.height, s.width, s.seed);
  int x = b.relu(b.conv(b.input(), w, 5, 1, 2, true, "conv1"), "relu1");
  x = b.maxpool(x, 2, 2, "pool1");
  x = b.relu(b.conv(x, w2, 5, 1, 0, true, "conv2"), "relu2");
  x = b.maxpool(x, 2, 2, "pool2");
  x = b.flatten(x, "flatten");
  x = b.relu(b.gemm(x, 120, "fc1"), "relu3");
  x = b.relu(b.gemm(x, 84, "fc2"), "relu4");
  return b.finish(b.gemm(x, s.classes, "fc3"));
}

Graph vgg4(const ModelSpec& s) {
  const int64_t w = s.base_width > 0 ? s.base_width : 32;
  GraphBuilder b(s.channels, s.height, s.width, s.seed);
  int x = b.conv_bn(b.input(), w, 3, 1, 1, true, "conv1");
  x = b.conv_bn(x, w, 3, 1, 1, true, "conv2");
  x = b.maxpool(x, 2, 2, "pool1");
  x = b.conv_bn(x, 2 * w, 3, 1, 1, true, "conv3");
  x = b.conv_bn(x, 2 * w, 3, 1, 1, true, "conv4");
  x = b.maxpool(x, 2, 2, "pool2");
  return b.finish(b.gemm(b.flatten(x, "flatten"), s.classes, "fc"));
}

Graph resnet(const ModelSpec& s, int64_t depth) {
  const int64_t blocks = (depth - 2) / 6;
  const int64_t w = s.base_width > 0 ? s.base_width : 16;
  GraphBuilder b(s.channels, s.height, s.width, s.seed);
  int x = b.conv_bn(b.input(), w, 3, 1, 1, true, "conv1");
  int64_t channels = w;
  for (int64_t stage = 0; stage < 3; ++stage) {
    const int64_t out = w << stage;
    for (int64_t k = 0; k < blocks; ++k) {
      const std::string name = "stage" + std::to_string(stage + 1) + ".block" + std::to_string(k);
      const int64_t stride = (stage > 0 && k == 0) ? 2 : 1;
      int y = b.conv_bn(x, out, 3, stride, 1, true, name + ".conv1");
      y = b.conv_bn(y, out, 3, 1, 1, false, name + ".conv2");
      int shortcut = x;
      if (stride != 1 || channels != out)
        shortcut = b.conv_bn(x, out, 1, stride, 0, false, name + ".shortcut");
      x = b.relu(b.add(y, shortcut, name + ".add"), name + ".relu");
      channels = out;
    }
  }
  x = b.flatten(b.global_avgpool(x, "pool"), "flatten");
  return b.finish(b.gemm(x, s.classes, "fc"));
}

}  // namespace

std::vector<std::string> model_names() {
  return {"lenet", "vgg4", "resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56"};
}

int64_t check_arch_name(const std::string& arch) {
  if (arch == "lenet" || arch == "vgg4") return 0;
  if (arch.rfind("resnet", 0) == 0 && arch.size() > 6 && arch.size() < 10 &&
      arch.find_first_not_of("0123456789", 6) == std::string::npos) {
    const int64_t depth = std::stoll(arch.substr(6));
    check(depth >= 8 && (depth - 2) % 6 == 0, "--arch",
          "ResNet depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, ...), got " + arch);
    return depth;
  }
  std::string names;
  for (const auto& n : model_names()) names += (names.empty() ? "" : ", ") + n;
  throw Error("--arch", "unknown architecture '" + arch + "' (" + names + ")");
}

Graph build_model(const std::string& arch, const ModelSpec& spec) {
  const int64_t depth = check_arch_name(arch);
  check(spec.classes >= 1, "--arch", "needs at least one class");
  check(spec.base_width >= 0 && spec.base_width <= 4096, "--width", "out of range");
  try {
    if (arch == "lenet") return lenet(spec);
    if (arch == "vgg4") return vgg4(spec);
    return resnet(spec, depth);
  } catch (const Error& e) {
    if (e.where() == "--arch") throw;
    throw Error("--arch", arch + " does not fit this data: " + e.what());
  }
}

}  // namespace mixq
