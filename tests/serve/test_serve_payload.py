"""Request parsing of the served model: every fault is a RequestError naming the field."""

import json

import numpy as np
import pytest

from mlpentest.serve._payload import RequestError, parse_json, predict_request, v2_request


def _refused(doc, shape=(2,), max_batch=4):
    with pytest.raises(RequestError) as info:
        predict_request(doc, input_shape=shape, max_batch=max_batch)
    return info.value


def test_a_batch_round_trips_exactly():
    X = np.random.RandomState(0).rand(50, 784)
    doc = parse_json(json.dumps({"inputs": X.tolist()}).encode())
    M, output = predict_request(doc, input_shape=(784,), max_batch=64)
    assert output is None and M.dtype == np.float64
    np.testing.assert_array_equal(M, X)


def test_image_shaped_samples_are_flattened():
    X = np.arange(8.0).reshape(2, 2, 2)
    M, _ = predict_request({"inputs": X.tolist()}, input_shape=(2, 2), max_batch=4)
    np.testing.assert_array_equal(M, X.reshape(2, 4))


@pytest.mark.parametrize(
    "doc, code, field",
    [
        ({"inputs": [[1, True]]}, "invalid_value", "inputs[0][1]"),
        ({"inputs": [[1, None]]}, "invalid_value", "inputs[0][1]"),
        ({"inputs": [[1, {"a": 1}]]}, "invalid_value", "inputs[0][1]"),
        ({"inputs": [[1, float("nan")]]}, "non_finite", "inputs[0][1]"),
        ({"inputs": [[1, 2], [float("-inf"), 2]]}, "non_finite", "inputs[1][0]"),
        ({"inputs": [[1, 2], [3]]}, "wrong_shape", "inputs[1]"),
        ({"inputs": [[1, 2], 3]}, "wrong_shape", "inputs[1]"),
        ({"inputs": [[[1, 2]]]}, "wrong_shape", "inputs[0]"),
        ({"inputs": []}, "empty_batch", "inputs"),
        ({"inputs": [[1, 2]] * 5}, "batch_too_large", "inputs"),
        ({"inputs": "1,2"}, "invalid_field", "inputs"),
        ({}, "missing_field", "inputs"),
        ({"inputs": [[1, 2]], "outputs": 1}, "unknown_field", "outputs"),
    ],
)
def test_faults_name_the_field(doc, code, field):
    error = _refused(doc)
    assert (error.code, error.field) == (code, field)
    assert error.status in (413, 422) and error.body()["field"] == field


@pytest.mark.parametrize("body", [b"", b"{", b"\xff", b"[" * 100_000 + b"]" * 100_000])
def test_unreadable_bodies_are_400(body):
    with pytest.raises(RequestError) as info:
        parse_json(body)
    assert info.value.status == 400


def test_v2_flat_and_nested_data():
    tensor = {"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3, 4]}
    X, rid, outputs = v2_request({"id": "a", "inputs": [tensor]}, input_shape=(2,), max_batch=4)
    np.testing.assert_array_equal(X, [[1, 2], [3, 4]])
    assert (rid, outputs) == ("a", None)
    X, _, outputs = v2_request(
        {"inputs": [dict(tensor, data=[[1, 2], [3, 4]])], "outputs": [{"name": "labels"}]},
        input_shape=(2,),
        max_batch=4,
    )
    assert outputs == ["labels"] and X.shape == (2, 2)
    with pytest.raises(RequestError, match="finite") as info:
        v2_request({"inputs": [dict(tensor, data=[1, 2, 3, float("nan")])]}, input_shape=(2,), max_batch=4)
    assert info.value.field == "inputs[0].data[3]"
    with pytest.raises(RequestError) as info:
        v2_request({"inputs": [tensor, tensor]}, input_shape=(2,), max_batch=4)
    assert info.value.field == "inputs"
