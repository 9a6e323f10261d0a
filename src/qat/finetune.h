// Quantization-aware fine-tuning by a fixed recipe (mixq quantize --finetune): STE, SGD with
// momentum 0.9 and weight decay 1e-4, learning rate 0.001 on a cosine schedule, batches of 128 —
// the recipe docs/qat.md measured best.
#pragma once
#include <cstdint>
#include <string>

#include "qat/qat.h"

namespace mixq {

// The recipe's options for `epochs` epochs. The caller adds what belongs to the run: the sample
// limit, seed, augmentation, checkpoint and resume, stop flag and progress callbacks.
QatOptions ste_recipe(int64_t epochs);

// Fine-tunes g under cfg by QatTrainer with options o (ste_recipe's). When training finishes,
// g and cfg become the fine-tuned model and config (cfg's info kept, plus info.finetune {method,
// epochs}) and it returns true; stopped early (the stop flag, max_steps) it returns false and
// leaves them unchanged. `where` names the config in errors.
bool ste_finetune(Graph& g, QuantConfig& cfg, const Dataset& train, const QatOptions& o,
                  const std::string& where = "config");

}  // namespace mixq
