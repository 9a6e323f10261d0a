"""Loading models and feeding data: paths, bytes, numpy arrays, dicts, iterables; errors."""
import pathlib
import threading
import time

import numpy as np
import pytest

import mixq


def test_module_describes_itself():
    assert mixq.__version__ == mixq.version()
    assert issubclass(mixq.Error, Exception)


def test_model_from_path_and_from_bytes_agree(model, model_path):
    assert model.inputs and model.outputs
    layers = model.layers
    assert len(layers) >= 2
    for layer in layers:
        assert set(layer) == {"name", "op_type", "rows", "weights"}
        assert layer["weights"] % layer["rows"] == 0
    again = mixq.Model.load(pathlib.Path(model_path))
    assert again.layers == layers
    from_bytes = mixq.Model.from_bytes(pathlib.Path(model_path).read_bytes(), "fmnist.onnx")
    assert from_bytes.layers == layers
    assert from_bytes.inputs == model.inputs
    assert "fmnist.onnx" in from_bytes.source


def test_data_from_array_dict_and_iterable_agree(model, test):
    x, y = test
    x, y = x[:64], y[:64]
    name = model.inputs[0]
    by_array = mixq.evaluate(model, mixq.Data(x, labels=y))
    assert by_array["samples"] == 64 and by_array["labelled"]
    by_dict = mixq.evaluate(model, mixq.Data({name: x}, labels=y))
    batches = [({name: x[i : i + 16]}, y[i : i + 16]) for i in range(0, 64, 16)]
    by_batches = mixq.evaluate(model, mixq.Data(iter(batches)))
    # a generator of dicts with labels= for all of them
    by_generator = mixq.evaluate(model, mixq.Data(({name: x[i : i + 8]} for i in range(0, 64, 8)),
                                                  labels=y))
    # float64 and lists are converted to float32
    by_float64 = mixq.evaluate(model, mixq.Data(x.astype(np.float64), labels=list(y)))
    for other in (by_dict, by_batches, by_generator, by_float64):
        assert other == by_array
    # The same images through mixq's own reader of the Debian files.
    spec = mixq.evaluate(model, "fmnist:test", limit=64)
    assert spec["top1"] == pytest.approx(by_array["top1"])


def test_data_describes_itself(test):
    x, y = test
    d = mixq.Data([x[:10], x[10:30]], name="two batches")
    assert len(d) == 30 and not d.labelled
    assert "two batches" in d.description
    assert mixq.Data(x[:5], labels=y[:5]).labelled


def expect_error(fn, *fragments):
    with pytest.raises(mixq.Error) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_errors_name_their_cause(model, tmp_path, test):
    x, y = test
    expect_error(lambda: mixq.Model.load(tmp_path / "missing.onnx"), "missing.onnx")
    expect_error(lambda: mixq.Model.from_bytes(b"not a protobuf", "junk.bin"), "junk.bin")
    expect_error(lambda: mixq.Data("nosuch:thing"), "nosuch")
    expect_error(lambda: mixq.Data({"wrong_name": x[:4]}).__len__() and
                 mixq.evaluate(model, {"wrong_name": x[:4]}), "wrong_name", model.inputs[0])
    expect_error(lambda: mixq.evaluate(model, x[:4, :, :20, :]), "20")
    expect_error(lambda: mixq.Data(np.array(["a", "b"])), "not a numeric array")
    expect_error(lambda: mixq.Data(x[:4], labels=np.zeros(4)), "integer")
    expect_error(lambda: mixq.Data(x[:4], labels=y[:3]), "labels")
    expect_error(lambda: mixq.Data([x[:4], x[:4, :, :10]]), "batch 1")
    expect_error(lambda: mixq.Data([]), "no batches")
    expect_error(lambda: mixq.Data([{"a": x[:2]}, {"b": x[:2]}]), "batch 1", "no array 'a'")
    expect_error(lambda: mixq.Data(3.0), "scalar")


def test_long_calls_let_other_threads_run(model, test):
    x, _ = test
    data = mixq.Data(x)
    span = []

    def work():
        start = time.perf_counter()
        mixq.evaluate(model, data)
        span.extend([start, time.perf_counter()])

    worker = threading.Thread(target=work)
    worker.start()
    stamps = []
    while worker.is_alive():
        stamps.append(time.perf_counter())
        time.sleep(0.001)
    worker.join()
    # With the GIL held through the call, this thread could run once at most, as it returned.
    inside = sum(span[0] < t < span[1] for t in stamps)
    assert inside >= 5, (inside, span[1] - span[0])
