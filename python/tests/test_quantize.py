"""The whole pipeline on the default model with numpy calibration data: calibrate, measure,
allocate under a budget, apply, export, and evaluate what was exported."""
import json

import numpy as np
import pytest

import mixq


@pytest.fixture(scope="module")
def measured(model, train):
    x, y = train
    calibration = mixq.calibrate(model, x, samples=128)
    lines = []
    sens = mixq.measure_sensitivities(
        model, calibration, mixq.Data(x, labels=y), candidates="w2,w4,w8", samples=64,
        progress=lines.append)
    return calibration, sens, lines


def test_sensitivities_are_numpy_arrays(model, measured):
    calibration, sens, lines = measured
    assert calibration.activation_bits == 8 and calibration.samples == 128
    assert lines and all(isinstance(line, str) for line in lines)
    L, C = len(sens.layers), len(sens.candidates)
    assert sens.candidates == ["w2", "w4", "w8"]
    assert 2 <= L <= len(model.layers)
    single, omega = sens.single(), sens.omega()
    assert single.shape == (L, C) and single.dtype == np.float64
    assert omega.shape == (L * C, L * C)
    # Omega's diagonal is the single-layer perturbation; Omega is symmetric.
    np.testing.assert_allclose(np.diag(omega), single.ravel(), atol=1e-9)
    np.testing.assert_array_equal(omega, omega.T)
    assert np.isfinite(sens.base_loss)


def test_quantizes_under_a_budget_and_exports_what_it_measured(model, measured, test, tmp_path):
    calibration, sens, _ = measured
    with pytest.raises(mixq.Error, match="1bits"):
        mixq.allocate(sens, "1bits")
    allocation = mixq.allocate(sens, "4bits")
    assert allocation.method == "clado"
    (use,) = allocation.budgets()
    assert use["budget"] == "4bits" and use["limit"] == 4.0 and use["used"] <= 4.0 + 1e-9
    choices = {c["layer"]: c for c in allocation.layers()}
    assert list(choices) == sens.layers
    assert all(c["candidate"] in sens.candidates for c in choices.values())

    q = mixq.apply(model, calibration, allocation)
    table = q.layers()
    assert [row["name"] for row in table] == [layer["name"] for layer in model.layers]
    for row in table:
        expected = choices[row["name"]]["bits"] if row["name"] in choices else 8
        assert row["weight_bits"] == pytest.approx(expected)
        assert row["activation_bits"] == 8 and row["schemes"] == "fixed"
    weights = np.array([row["weights"] for row in table])
    bits = np.array([row["weight_bits"] for row in table])
    assert q.bits == pytest.approx((weights * bits).sum() / weights.sum())
    assert q.bytes > 0
    assert [layer["name"] for layer in q.config()["layers"]] == [r["name"] for r in table]

    q.export_qdq(tmp_path / "q.onnx")
    q.export_packed(str(tmp_path / "q.mixq"))
    q.save_config(tmp_path / "q.json")
    assert json.loads((tmp_path / "q.json").read_text()) == json.loads(q.config_json())
    assert (tmp_path / "q.mixq").stat().st_size > 0

    x, y = test
    data = mixq.Data(x, labels=y)
    fp = mixq.evaluate(model, data)
    quantized = mixq.evaluate(q, data)
    exported = mixq.evaluate(mixq.Model.load(tmp_path / "q.onnx"), data)
    assert quantized["samples"] == 500
    assert fp["top1"] > 0.8
    assert quantized["top1"] > fp["top1"] - 0.1
    # The exported QDQ graph computes what the quantized model measured.
    assert exported["top1"] == pytest.approx(quantized["top1"], abs=0.01)


def test_a_raising_progress_callback_stops_the_measurement(model, measured, train):
    calibration, _, _ = measured
    x, _ = train

    class Stop(Exception):
        pass

    def progress(line):
        raise Stop(line)

    with pytest.raises(Stop):
        mixq.measure_sensitivities(model, calibration, x, candidates=["w2", "w8"], samples=16,
                                   progress=progress)
    # The module keeps working afterwards.
    assert mixq.evaluate(model, x[:8])["samples"] == 8


def test_values_from_another_model_do_not_mix(measured, model_path):
    calibration, sens, _ = measured
    other = mixq.Model.load(model_path)
    with pytest.raises(mixq.Error, match="allocation"):
        mixq.apply(other, calibration, mixq.allocate(sens, "4bits"))


def test_allocate_keeps_float_and_pins(model, measured):
    _, sens, _ = measured
    first, last = sens.layers[0], model.layers[-1]["name"]
    allocation = mixq.allocate(sens, "3bits", pins=[f"^{first}$=w8"], keep_float=[f"^{last}$"])
    choices = {c["layer"]: c["candidate"] for c in allocation.layers()}
    assert choices[first] == "w8" and choices[last] == "float"
    (use,) = allocation.budgets()
    assert use["used"] <= 3.0 + 1e-9
    with pytest.raises(mixq.Error, match="pins 'nosuch=w4': matches no quantizable layer"):
        mixq.allocate(sens, "3bits", pins=["nosuch=w4"])
