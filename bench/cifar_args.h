// The arguments the ResNet-20 / CIFAR-10 tables share: [MODEL] [DATA_ROOT] [LIMIT], defaulting to
// the ../shared paths and all test images, with the model's input normalisation.
#pragma once
#include <memory>
#include <string>

#include "data/dataset.h"

namespace mixq::bench {

struct CifarArgs {
  std::string model;
  std::unique_ptr<Dataset> train, test;
  size_t limit = 0;  // test images (0: all)
};

inline CifarArgs cifar_args(int argc, char** argv) {
  CifarArgs a;
  a.model = argc > 1 ? argv[1] : "../shared/models/cifar10_resnet20.onnx";
  const std::string root = argc > 2 ? argv[2] : "../shared/data/cifar10";
  a.limit = argc > 3 ? std::stoul(argv[3]) : 0;
  DataOptions o;
  o.mean = {0.485f, 0.456f, 0.406f};
  o.std = {0.229f, 0.224f, 0.225f};
  a.train = open_dataset("folder:" + root + "/train", o);
  a.test = open_dataset("folder:" + root + "/test", o);
  return a;
}

}  // namespace mixq::bench
