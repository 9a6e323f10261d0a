#include "qat/project.h"

#include "base/error.h"

namespace mixq {

Tensor project_rows(const Tensor& w, std::vector<RowQuant>& rows, int row_axis, bool refit) {
  if (refit) choose_row_scales(w, rows, ScaleMethod::mse, row_axis);
  return fake_quantize_weight(w, rows, row_axis);
}

void admm_zu_step(const Tensor& w, Tensor& z, Tensor& u, std::vector<RowQuant>& rows,
                  int row_axis) {
  check(w.shape() == z.shape() && w.shape() == u.shape(), "admm",
        "W, Z and U differ in shape: " + shape_str(w.shape()) + ", " + shape_str(z.shape()) + ", " +
            shape_str(u.shape()));
  const int64_t n = w.numel();
  Tensor wu(DType::f32, w.shape());
  const float* pw = w.data<float>();
  const float* pu = u.data<float>();
  float* s = wu.data<float>();
  for (int64_t i = 0; i < n; ++i) s[i] = pw[i] + pu[i];
  Tensor nz = project_rows(wu, rows, row_axis, true);
  Tensor nu(DType::f32, w.shape());
  const float* pz = nz.data<float>();
  float* r = nu.data<float>();
  for (int64_t i = 0; i < n; ++i) r[i] = pu[i] + pw[i] - pz[i];
  z = std::move(nz);
  u = std::move(nu);
}

Tensor admm_penalty_grad(const Tensor& g, const Tensor& w, const Tensor& z, const Tensor& u,
                         double rho) {
  check(
      w.shape() == z.shape() && w.shape() == u.shape() && (!g.defined() || g.shape() == w.shape()),
      "admm", "gradient, W, Z and U differ in shape");
  Tensor out(DType::f32, w.shape());
  const int64_t n = w.numel();
  const float* pw = w.data<float>();
  const float* pz = z.data<float>();
  const float* pu = u.data<float>();
  const float* pg = g.defined() ? g.data<float>() : nullptr;
  float* r = out.data<float>();
  const float k = static_cast<float>(rho);
  for (int64_t i = 0; i < n; ++i) r[i] = (pg ? pg[i] : 0.0f) + k * (pw[i] - pz[i] + pu[i]);
  return out;
}

}  // namespace mixq
