#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "base/error.h"
#include "data/batch_iterator.h"
#include "data/model_inputs.h"
#include "eval/evaluate.h"
#include "runtime/finite.h"
#include "runtime/loss.h"

namespace mixq {
namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

Trainer::Trainer(Graph graph, TrainOptions options)
    : graph_(std::move(graph)), o_(options), model_hash_(graph_.content_hash()) {
  check(graph_.inputs.size() == 1, graph_.source,
        "training needs a model with exactly one runtime input, this one has " +
            std::to_string(graph_.inputs.size()));
  check(!graph_.outputs.empty(), graph_.source, "model has no output");
  check(o_.epochs >= 1, "--epochs", "must be at least 1");
  check(o_.batch_size >= 1, "--batch", "must be at least 1");
  input_ = graph_.inputs[0];
  output_ = graph_.outputs[0];
  const int producer = graph_.values[output_].producer;
  if (producer >= 0) {
    const std::string& op = graph_.nodes[producer].op_type;
    check(op != "Softmax" && op != "LogSoftmax", graph_.nodes[producer].label(),
          "the model ends in " + op + "; training needs the logits before it");
  }
  trainables_ = find_trainables(graph_);
  check(!trainables_.params.empty(), graph_.source, "model has no trainable parameters");
  std::vector<int> wrt;
  std::vector<ParamKind> kinds;
  for (const Param& p : trainables_.params) {
    wrt.push_back(p.value);
    kinds.push_back(p.kind);
  }
  // Training runs the graph as written: no inference fusions, no layout changes. Before opset 14
  // a BatchNormalization with statistics outputs is an ONNX training node, which only the
  // reference kernel runs; from 14 the mode is an attribute (absent here, so the fast kernel
  // takes the node and set_training switches it). Opset 14 changed no other operator's meaning,
  // so the executor's copy of an opset-13 graph is lifted; graph_ (and the export) keep 13.
  Graph run_graph = graph_;
  if (run_graph.opset == 13) run_graph.opset = 14;
  ex_ = std::make_unique<Executor>(run_graph, Impl::fast, /*optimize=*/false);
  for (size_t i = 0; i < graph_.nodes.size(); ++i) ex_->kernel(i).set_training(true);
  backprop_ = std::make_unique<Backprop>(*ex_, wrt);
  const auto& needs = backprop_->needs_grad();
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    bool flows = false;
    for (int v : graph_.nodes[i].inputs) flows = flows || (v >= 0 && needs[v]);
    if (flows && !ex_->kernel(i).has_backward())
      throw Error(graph_.nodes[i].label(), "has no backward (implementation '" + ex_->impl_name(i) +
                                               "'); this model cannot be trained yet");
  }
  opt_ = std::make_unique<Optimizer>(o_.optimizer, kinds);
  env_ = ex_->environment();
}

Trainer::~Trainer() = default;

const Tensor& Trainer::value(const std::string& name) const {
  const int v = graph_.find_value(name);
  check(v >= 0 && env_[v].defined(), "trainer", "no value named '" + name + "'");
  return env_[v];
}

Graph Trainer::inference_graph(bool fold_bn) const {
  return mixq::inference_graph(graph_, env_, fold_bn);
}

double Trainer::train_step(const Batch& batch, double lr) {
  if (o_.hooks.before_forward) o_.hooks.before_forward(env_, step_);
  env_[input_] = data_ ? model_inputs(batch, graph_, *data_).at(0) : batch.inputs.at(0);
  ex_->run_range(env_);
  Tensor grad;
  const Tensor& logits = env_[output_];
  if (data_ && logits.rank() >= 2 && logits.dim(0) > 0)
    check_labels(*data_, batch.labels, logits.numel() / logits.dim(0), graph_.source);
  const LossResult r = softmax_cross_entropy(logits, batch.labels, &grad, graph_.source);
  if (!std::isfinite(r.loss)) {
    // Name the node where the forward pass first went non-finite, when it did.
    const NonFinite f = first_non_finite(graph_, env_);
    throw Error(f.found ? f.where : "training",
                (f.found ? f.kind + " first appears in its output '" + f.value + "'; " : "") +
                    "the loss is not finite at step " + std::to_string(step_) +
                    " (diverged: lower --lr, or check the data)");
  }
  genv_.assign(graph_.values.size(), Tensor());
  genv_[output_] = std::move(grad);
  backprop_->run(env_, genv_);
  if (o_.hooks.before_update) o_.hooks.before_update(env_, genv_, step_);
  std::vector<Tensor*> params;
  std::vector<const Tensor*> grads;
  for (const Param& p : trainables_.params) {
    params.push_back(&env_[p.value]);
    grads.push_back(&genv_[p.value]);
  }
  opt_->step(params, grads, lr);
  // The training-mode forward wrote updated running statistics; they feed the next forward.
  for (const BnStats& s : trainables_.bn) {
    env_[s.mean_in] = env_[s.mean_out].clone();
    env_[s.var_in] = env_[s.var_out].clone();
  }
  genv_.clear();
  ++step_;
  if (o_.hooks.after_update) o_.hooks.after_update(env_, step_);
  loss_sum_ += r.loss * static_cast<double>(batch.labels.size());
  correct_ += static_cast<int64_t>(r.correct);
  seen_ += static_cast<int64_t>(batch.labels.size());
  return r.loss;
}

nlohmann::json Trainer::run_identity(size_t samples) const {
  return {{"seed", o_.seed},
          {"batch_size", o_.batch_size},
          {"samples", samples},
          {"epochs", o_.epochs},
          {"optimizer", optimizer_name(o_.optimizer.kind)},
          {"parameters", count_parameters(graph_)},
          {"model_hash", model_hash_},
          {"data_hash", data_hash_}};
}

Checkpoint Trainer::make_checkpoint(double elapsed_seconds) const {
  Checkpoint c;
  c.meta["format"] = "mixq-train";
  c.meta["version"] = 2;  // 2: model_hash and data_hash in "run"
  c.meta["run"] = run_identity(samples_);
  c.meta["position"] = {{"epoch", epoch_}, {"batch", batch_}, {"step", step_}};
  c.meta["epoch_sums"] = {{"loss_sum", loss_sum_}, {"correct", correct_}, {"seen", seen_}};
  c.meta["elapsed_seconds"] = elapsed_seconds;
  c.meta["schedule"] = {{"kind", schedule_name(o_.schedule.kind)}, {"lr", o_.schedule.lr}};
  for (size_t i = 0; i < trainables_.params.size(); ++i) {
    const std::string& name = graph_.values[trainables_.params[i].value].name;
    c.add("param:" + name, env_[trainables_.params[i].value]);
    for (auto& [suffix, t] : opt_->state(i))
      if (t->defined()) c.add("opt:" + name + ":" + suffix, *t);
  }
  for (const BnStats& s : trainables_.bn) {
    c.add("bn:" + graph_.values[s.mean_in].name, env_[s.mean_in]);
    c.add("bn:" + graph_.values[s.var_in].name, env_[s.var_in]);
  }
  c.meta["optimizer_steps"] = opt_->steps();
  if (o_.hooks.save) o_.hooks.save(c);
  return c;
}

void Trainer::restore(const Checkpoint& c, const std::string& where, size_t samples) {
  try {
    check(c.meta.value("format", "") == "mixq-train", where, "is not a mixq training checkpoint");
    check(c.meta.value("version", 0) == 2, where,
          "was written by an older mixq (no content hashes to check it against); remove it to "
          "start again");
    const nlohmann::json want = run_identity(samples);
    const nlohmann::json& have = c.meta.at("run");
    check(have.at("model_hash") == want.at("model_hash"), where,
          "was written for a different model (its content differs); remove it to start again");
    check(have.at("data_hash") == want.at("data_hash"), where,
          "was written for different training data (the samples differ); remove it to start "
          "again");
    for (const char* key : {"seed", "batch_size", "samples", "optimizer", "parameters"})
      check(have.at(key) == want.at(key), where,
            std::string("was written by a different run: ") + key + " " + have.at(key).dump() +
                ", now " + want.at(key).dump());
    auto load = [&](const std::string& name, int v) {
      const Tensor* t = c.find(name);
      check(t && t->dtype() == env_[v].dtype() && t->shape() == env_[v].shape(), where,
            "does not match the model: '" + name + "' " +
                (t ? "has shape " + shape_str(t->shape()) : std::string("is missing")));
      env_[v] = t->clone();
    };
    for (size_t i = 0; i < trainables_.params.size(); ++i) {
      const int v = trainables_.params[i].value;
      const std::string& name = graph_.values[v].name;
      load("param:" + name, v);
      for (auto& [suffix, slot] : opt_->state(i)) {
        const Tensor* t = c.find("opt:" + name + ":" + suffix);
        *slot = t ? t->clone() : Tensor();
        check(!t || t->shape() == env_[v].shape(), where,
              "optimizer state of '" + name + "' does not match");
      }
    }
    for (const BnStats& s : trainables_.bn) {
      load("bn:" + graph_.values[s.mean_in].name, s.mean_in);
      load("bn:" + graph_.values[s.var_in].name, s.var_in);
    }
    const auto& pos = c.meta.at("position");
    epoch_ = pos.at("epoch").get<int64_t>();
    batch_ = pos.at("batch").get<int64_t>();
    step_ = pos.at("step").get<int64_t>();
    const auto& sums = c.meta.at("epoch_sums");
    loss_sum_ = sums.at("loss_sum").get<double>();
    correct_ = sums.at("correct").get<int64_t>();
    seen_ = sums.at("seen").get<int64_t>();
    opt_->set_steps(c.meta.at("optimizer_steps").get<int64_t>());
    elapsed_before_ = c.meta.value("elapsed_seconds", 0.0);
    if (o_.hooks.restore) o_.hooks.restore(c, where);
  } catch (const nlohmann::json::exception& e) {
    throw Error(where, std::string("checkpoint metadata is malformed: ") + e.what());
  }
}

void Trainer::save(double elapsed_seconds) const {
  if (o_.checkpoint.empty()) return;
  save_checkpoint(o_.checkpoint, make_checkpoint(elapsed_seconds));
}

bool Trainer::fit(const Dataset& train, const Dataset* val) {
  check(train.size() > 0, train.description(), "dataset is empty");
  data_ = &train;
  struct Forget {  // train_step outside fit has no data to name
    const Dataset*& data;
    ~Forget() { data = nullptr; }
  } forget{data_};
  IterOptions io;
  io.batch_size = o_.batch_size;
  io.shuffle = true;
  io.limit = o_.limit;
  io.seed = o_.seed;
  BatchIterator it(train, io);
  const size_t samples = it.num_samples();
  samples_ = samples;
  {  // up to 64 samples spread over the set, plus its size: cheap, and any other data differs
    std::vector<size_t> probe;
    const size_t n = train.size(), k = std::min<size_t>(n, 64);
    for (size_t i = 0; i < k; ++i) probe.push_back(i * n / k);
    probe.push_back(n - 1);
    data_hash_ = hash_samples(train, probe);
  }
  const int64_t per_epoch = static_cast<int64_t>((samples + o_.batch_size - 1) / o_.batch_size);
  const LrSchedule schedule(o_.schedule, per_epoch, o_.epochs);
  if (o_.resume) {
    check(!o_.checkpoint.empty(), "--resume", "needs --checkpoint");
    restore(load_checkpoint(o_.checkpoint), o_.checkpoint, samples);
    if (o_.on_message)
      o_.on_message("resumed from " + o_.checkpoint + " at epoch " + std::to_string(epoch_ + 1) +
                    ", batch " + std::to_string(batch_) + " (step " + std::to_string(step_) + ")");
  }
  require_labels(train, "training");
  try {
    ex_->check_input(0, model_inputs(train.get({0}), graph_, train).at(0));
  } catch (const Error& e) {
    throw Error(train.description(), "does not fit the model: " + std::string(e.what()));
  }
  const auto t_session = Clock::now();
  auto last_save = Clock::now();
  int64_t session_steps = 0, session_images = 0;
  Batch batch;
  std::vector<size_t> idx;
  while (epoch_ < o_.epochs) {
    const auto t_epoch = Clock::now();
    const int64_t epoch_images_before = session_images;
    it.start_epoch(static_cast<uint64_t>(epoch_));
    const std::vector<size_t>& order = it.order();
    while (batch_ < per_epoch) {
      if ((o_.stop && o_.stop->load()) || (o_.max_steps > 0 && session_steps >= o_.max_steps)) {
        save(elapsed_before_ + since(t_session));
        return false;
      }
      const size_t first = static_cast<size_t>(batch_) * o_.batch_size;
      const size_t last = std::min(samples, first + o_.batch_size);
      idx.assign(order.begin() + first, order.begin() + last);
      batch = train.get(idx);
      augment_batch(batch.inputs.at(0), o_.augment, o_.seed, static_cast<uint64_t>(epoch_), first);
      const double lr = schedule.at(step_);
      train_step(batch, lr);
      ++batch_;
      ++session_steps;
      session_images += static_cast<int64_t>(idx.size());
      if (o_.on_batch) {
        BatchProgress p;
        p.epoch = epoch_;
        p.epochs = o_.epochs;
        p.batch = batch_;
        p.batches = per_epoch;
        p.loss = loss_sum_ / std::max<int64_t>(seen_, 1);
        p.accuracy = static_cast<double>(correct_) / std::max<int64_t>(seen_, 1);
        p.lr = lr;
        p.images_per_s = session_images / std::max(since(t_session), 1e-9);
        o_.on_batch(p);
      }
      if (o_.checkpoint_minutes > 0 && batch_ < per_epoch &&
          since(last_save) > 60 * o_.checkpoint_minutes) {
        save(elapsed_before_ + since(t_session));
        last_save = Clock::now();
      }
    }
    EpochSummary s;
    s.epoch = epoch_;
    s.epochs = o_.epochs;
    s.loss = loss_sum_ / std::max<int64_t>(seen_, 1);
    s.accuracy = static_cast<double>(correct_) / std::max<int64_t>(seen_, 1);
    s.lr = schedule.at(std::max<int64_t>(step_ - 1, 0));
    s.images_per_s = (session_images - epoch_images_before) / std::max(since(t_epoch), 1e-9);
    if (val) {
      Executor vex(inference_graph(true), Impl::fast, /*optimize=*/true);
      EvalOptions eo;
      eo.batch_size = o_.val_batch;
      const EvalResult r = evaluate(vex, *val, eo);
      s.val_top1 = r.top1;
      s.val_loss = r.loss;
    }
    s.seconds = since(t_epoch);
    // The epoch is complete: the checkpoint points at the start of the next one.
    ++epoch_;
    batch_ = 0;
    loss_sum_ = 0;
    correct_ = seen_ = 0;
    save(elapsed_before_ + since(t_session));
    last_save = Clock::now();
    if (o_.on_epoch) o_.on_epoch(s);
  }
  return true;
}

}  // namespace mixq
