// Built-in architectures, defined as graph builders in training form (see models/builder.h):
//   lenet        LeNet-5 style: conv5x5(w)-relu-maxpool, conv5x5(8w/3)-relu-maxpool, fc 120, fc 84,
//                fc classes; no BatchNormalization (default w = 6)
//   vgg4         VGG style: [conv3x3-BN-relu] x2 at w, maxpool, x2 at 2w, maxpool, fc classes
//                (default w = 32)
//   resnetD      CIFAR ResNet of depth D = 6n + 2 (resnet8, resnet14, resnet20, resnet32, ...):
//                conv3x3(w)-BN-relu, three stages of n basic blocks at w, 2w, 4w channels (stride
//                2 at stages 2 and 3; the shortcut then is a 1x1 conv + BN, He et al.'s option
//                B), global average pooling, fc classes (default w = 16)
// Any input size the layers fit, 1 or 3 (or more) channels, any class count.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace mixq {

struct ModelSpec {
  int64_t channels = 1, height = 28, width = 28;
  int64_t classes = 10;
  int64_t base_width = 0;  // w above; 0 = the architecture's default
  uint64_t seed = 0;       // initialisation
};

// Names accepted by build_model (resnet: the usual depths; any 6n+2 is accepted).
std::vector<std::string> model_names();
// Throws Error("--arch", ...) for an unknown name or a spec it cannot build.
Graph build_model(const std::string& arch, const ModelSpec& spec);
// Throws Error("--arch", ...) unless build_model knows the name; returns a ResNet's depth, else 0.
int64_t check_arch_name(const std::string& arch);

}  // namespace mixq
