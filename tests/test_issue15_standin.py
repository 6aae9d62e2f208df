"""issue 15: the stand-in CUDA device (corrnet._standin) against NumPy's own results, and its
CuPy-like refusals (implicit host conversion, host arrays in kernels, two devices mixed)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from corrnet import _standin

IMPLICIT = "Implicit conversion to a NumPy array is not allowed. Please use `.get()`"


def on(array, index=0):
    return _standin.from_host(np.asarray(array), index)


@pytest.mark.parametrize("convert", [np.asarray, np.array, lambda x: np.add(np.ones(2), x.T)],
                         ids=["asarray", "array", "host-ufunc"])
def test_implicit_conversion_to_the_host_is_refused(convert):
    x = on([1.0, 2.0])
    with pytest.raises(TypeError) as info:
        convert(x)
    assert IMPLICIT in str(info.value) or "Unsupported type" in str(info.value)


def test_explicit_copies_and_scalars():
    x = on([[1.0, 2.0], [3.0, 4.0]])
    host = x.get()
    assert type(host) is np.ndarray and host.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    host[0, 0] = 9  # a copy
    assert x.get()[0, 0] == 1.0
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]] and x[1, 1].item() == 4.0
    assert float(x[0, 1]) == 2.0 and int(x[1, 0]) == 3 and bool(x[0, 0])
    with pytest.raises(TypeError, match="only length-1 arrays"):
        float(x)
    with pytest.raises(AttributeError):
        x.__array_interface__  # noqa: B018 (no way to the host memory)
    assert _standin.asnumpy(x).shape == (2, 2)


def test_results_stay_on_the_device_as_cupys():
    x = on(np.arange(6.0).reshape(2, 3), 1)
    for result in (x + 1, np.exp(x), np.sum(x), x.sum(axis=0), x[0], x.T, x @ x.T,
                   np.where(x > 2, x, 0), np.zeros(3, like=x), np.concatenate([x, x])):
        assert isinstance(result, _standin.ndarray) and result.device_index == 1
    assert np.sum(x).shape == ()  # a 0-d array, not a NumPy scalar (as CuPy's reductions)


def test_scalars_mix_host_arrays_and_devices_do_not():
    x = on([1.0, 2.0])
    assert (x + np.float32(1)).get().tolist() == [2.0, 3.0]
    assert (x * np.asarray(2.0)).get().tolist() == [2.0, 4.0]  # a 0-d host array: a scalar
    with pytest.raises(TypeError, match="Unsupported type"):
        x + np.ones(2)
    with pytest.raises(TypeError, match="Unsupported type"):
        np.concatenate([x, np.ones(2)])
    with pytest.raises(ValueError, match="device"):
        x + on([1.0, 2.0], 1)
    with pytest.raises(TypeError, match="Unsupported type"):
        x[:] = np.ones(2)


def test_setitem_and_in_place_ufuncs_write_the_device_array():
    x = on(np.zeros((2, 3)))
    x[0] = on([1.0, 2.0, 3.0])
    x[1, on(np.array([0, 2]))] = 5.0
    x += 1
    np.multiply(x, 2, out=x)
    assert x.get().tolist() == [[4.0, 6.0, 8.0], [12.0, 2.0, 12.0]]


def test_memory_counts_live_arrays():
    before = _standin.bytes_in_use(1)
    x = on(np.zeros(1000), 1)
    assert _standin.bytes_in_use(1) - before == 8000
    del x
    assert _standin.bytes_in_use(1) == before


shapes = hnp.array_shapes(max_dims=3, max_side=4)
floats = hnp.arrays(np.float64, shapes, elements=st.floats(-100, 100))


@settings(max_examples=40, deadline=None)
@given(a=floats, b=st.floats(-10, 10))
def test_matches_numpy(a, b):
    x = on(a)
    np.testing.assert_array_equal((x * b + x).get(), a * b + a)
    np.testing.assert_array_equal(np.maximum(x, 0).get(), np.maximum(a, 0))
    np.testing.assert_array_equal(x.sum(axis=-1, keepdims=True).get(),
                                  a.sum(axis=-1, keepdims=True))
    np.testing.assert_array_equal(np.swapaxes(x, 0, -1).get(), np.swapaxes(a, 0, -1))
    np.testing.assert_array_equal(x.reshape(-1)[::2].get(), a.reshape(-1)[::2])
    np.testing.assert_array_equal(np.matmul(x.reshape(-1, 1), x.reshape(1, -1)).get(),
                                  np.matmul(a.reshape(-1, 1), a.reshape(1, -1)))
    assert x.astype(np.float32).dtype == np.float32 and x.shape == a.shape
