// A Kernel is one node's compiled operator. Each ONNX op type has an ordered list of
// implementations (fast ones first, the plain reference last), in the style of oneDNN's
// implementation lists: the first whose maker accepts the node is used.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "tensor/tensor.h"

namespace mixq {

enum class Impl { fast, reference };

class Kernel {
 public:
  virtual ~Kernel() = default;
  // in[i] is nullptr for an omitted optional input; out[i] is nullptr for an omitted output.
  // Kernels size their outputs with ensure() and may reuse their storage across calls.
  virtual void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) = 0;

  // Training. Given the inputs and outputs of the last forward() and the gradients of the loss
  // with respect to the outputs (gout[i] nullptr: no gradient flows into output i), writes the
  // gradients of the inputs into gin[i] (sized with ensure(); overwritten, not accumulated;
  // gin[i] nullptr: not needed). A kernel may keep state from its last forward for this
  // (batch statistics, dropout masks). The default throws Error: no backward for this op.
  virtual void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& out,
                        const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin);
  // True when backward() is implemented.
  virtual bool has_backward() const { return false; }
  // Training mode: BatchNormalization uses batch statistics, Dropout drops. Off by default.
  virtual void set_training(bool training) { (void)training; }
  // Node label for messages (set by the registry).
  std::string label;
};

// Returns nullptr when this implementation does not handle the node (dtype, attributes, ...);
// throws Error(node.label(), cause) when the node is invalid for every implementation.
using KernelMaker = std::unique_ptr<Kernel> (*)(const Node& node, const Graph& graph);

struct OpImpl {
  std::string name;  // e.g. "dnnl", "ref"
  KernelMaker make;
};

// Registry key of a node's operator: "Conv" for the default ONNX domain, "mixq.FakeQuant" for
// mixq's internal operators.
std::string op_key(const Node& node);

class Registry {
 public:
  static const Registry& get();

  // The reference implementation goes last in the list whatever the order of registration.
  void add(const std::string& op_type, const std::string& impl_name, KernelMaker make,
           bool reference);
  bool supports(const std::string& op_type) const;
  std::vector<std::string> op_types() const;
  // Builds the kernel for a node; with Impl::reference only the reference implementation.
  // Sets *chosen to the implementation's name when given.
  std::unique_ptr<Kernel> make(const Node& node, const Graph& graph, Impl impl,
                               std::string* chosen = nullptr) const;

 private:
  struct Entry {
    std::vector<OpImpl> fast;
    std::vector<OpImpl> reference;
  };
  std::vector<std::pair<std::string, Entry>> entries_;
  const Entry* find(const std::string& op_type) const;
};

// Each op family registers its implementations here (one function per source file).
void register_elementwise_ops(Registry& r);
void register_unary_ops(Registry& r);
void register_activation_ops(Registry& r);
void register_shape_ops(Registry& r);
void register_reduce_ops(Registry& r);
void register_conv_ops(Registry& r);
void register_qconv_ops(Registry& r);
void register_gemm_ops(Registry& r);
void register_pool_ops(Registry& r);
void register_norm_ops(Registry& r);
void register_quant_ops(Registry& r);
void register_resize_ops(Registry& r);
void register_group_norm_ops(Registry& r);
void register_index_ops(Registry& r);
void register_math_ops(Registry& r);
void register_einsum_ops(Registry& r);

// Convenience for kernels whose whole state is a function of the node.
template <class K>
std::unique_ptr<Kernel> make_kernel(const Node& node, const Graph& graph) {
  return std::make_unique<K>(node, graph);
}

}  // namespace mixq
