// Projection onto a layer's quantized weight set and the ADMM updates around it (MSQ training,
// ../shared/docs/ALGORITHMS.md section 2). Rows are output channels (quant/quantizer.h); each row
// has its own scheme, bit-width and scale.
#pragma once
#include <vector>

#include "quant/quantizer.h"
#include "tensor/tensor.h"

namespace mixq {

// Proj_Q(w): every row's scale refit by the MSE chooser on w (when refit), then every value moved
// to the nearest level of its row's scheme and bits at that scale. Returns a new tensor.
Tensor project_rows(const Tensor& w, std::vector<RowQuant>& rows, int row_axis, bool refit = true);

// ADMM Z- and U-steps for one layer: Z = Proj_Q(W + U) (scales refit on W + U), U = U + W - Z.
// z and u are replaced by new tensors; rows receive the refit scales.
void admm_zu_step(const Tensor& w, Tensor& z, Tensor& u, std::vector<RowQuant>& rows, int row_axis);

// The W-step gradient: g + rho (W - Z + U), as a new tensor (g undefined counts as zero).
Tensor admm_penalty_grad(const Tensor& g, const Tensor& w, const Tensor& z, const Tensor& u,
                         double rho);

}  // namespace mixq
