#include "support/measured_net.h"

#include "quant/calibrate.h"
#include "support/tiny_nets.h"

namespace mixq::test {

MeasuredNet::MeasuredNet()
    : g(conv_chain_net(5)),
      space(make_search_space(g, parse_candidates("w2,w4,w8", "t"), false, 8)) {
  ObserveOptions oo;
  oo.samples = 32;
  ActivationStats stats = observe_activations(g, data, oo);
  SensitivityOptions so;
  so.samples = 32;
  so.chunk = 32;
  sens = measure_sensitivity(g, space, stats, data, so);
}

}  // namespace mixq::test
