"""Issue 14, item 1: ``corrnet.uint16``, so that 16-bit image files read as torchvision reads
them (``torch.uint16``).

uint16 is a "shell" dtype in PyTorch 2.13: tensors of it are created, converted, indexed,
printed and saved, but it promotes with no other integer (or bool) dtype, and few ops have a
kernel for it. PyTorch is the oracle for everything here (values, dtypes, repr, the errors);
OpenCV and Pillow write the 16-bit files that ``corrnet.io.read_image`` reads back.
corrnet computes some ops PyTorch lacks for uint16 (``x + x``: modular, as ``x * 2`` is in
PyTorch); those are checked against NumPy's uint16 arithmetic.
"""

from __future__ import annotations

import doctest

import cv2
import numpy as np
import pytest
import scipy.ndimage
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

import corrnet
from corrnet import backend, io

from torch_compare import assert_same

SETTINGS = settings(max_examples=30, deadline=None)

OTHER_DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32",
                "float64")
INTEGER_OR_BOOL = ("bool", "uint8", "int8", "int16", "int32", "int64")

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)
pixels16 = shapes.flatmap(lambda shape: hnp.arrays(np.uint16, shape))


def both(array: np.ndarray):
    """The same uint16 values as a corrnet and a torch tensor (each its own copy)."""
    return corrnet.from_numpy(array.copy()), torch.from_numpy(array.copy())


def outcome(fn):
    """('ok', result) or ('error', exception type) of fn()."""
    try:
        return "ok", fn()
    except Exception as err:  # noqa: BLE001 - the type is what is compared
        return "error", type(err)


# ---------------------------------------------------------------------------------------------
# the dtype itself
# ---------------------------------------------------------------------------------------------

def test_the_dtype_as_torch_describes_it():
    assert repr(corrnet.uint16) == repr(torch.uint16) == "torch.uint16"
    assert corrnet.uint16.is_signed is torch.uint16.is_signed is False
    assert corrnet.uint16.is_floating_point is torch.uint16.is_floating_point is False
    assert corrnet.uint16.itemsize == torch.uint16.itemsize == 2
    x = corrnet.zeros(3, dtype=corrnet.uint16)
    assert x.element_size() == torch.zeros(3, dtype=torch.uint16).element_size() == 2
    assert x.type() == torch.zeros(3, dtype=torch.uint16).type() == "torch.UInt16Tensor"
    assert corrnet.ones(2).type("torch.UInt16Tensor").dtype is corrnet.uint16
    assert backend.as_dtype("uint16") is backend.as_dtype(np.uint16) is corrnet.uint16


@SETTINGS
@given(array=pixels16)
def test_from_numpy_as_tensor_tensor_numpy_tolist_and_repr_match_torch(array):
    got, expected = both(array)
    assert_same(got, expected, "from_numpy")
    assert repr(got) == repr(expected)
    assert got.numpy().dtype == np.uint16
    assert got.tolist() == expected.tolist()
    assert_same(corrnet.as_tensor(array), torch.as_tensor(array), "as_tensor")
    assert_same(corrnet.tensor(array), torch.tensor(array), "tensor(ndarray)")
    assert_same(corrnet.tensor(array.tolist(), dtype=corrnet.uint16),
                torch.tensor(array.tolist(), dtype=torch.uint16), "tensor(list, dtype)")
    shared = corrnet.from_numpy(array)  # from_numpy shares memory, as PyTorch's
    if array.size:
        array.flat[0] = 12345
        assert shared.numpy().flat[0] == 12345


def test_creation_functions_match_torch():
    for name, call in [
        ("zeros", lambda t: t.zeros(2, 3, dtype=t.uint16)),
        ("ones", lambda t: t.ones(4, dtype=t.uint16)),
        ("full", lambda t: t.full((2,), 65535, dtype=t.uint16)),
        ("full -1 wraps", lambda t: t.full((2,), -1, dtype=t.uint16)),
        ("zeros_like", lambda t: t.zeros_like(t.ones(2, dtype=t.uint16))),
        ("tensor -1 wraps", lambda t: t.tensor([-1, 2.5], dtype=t.uint16)),
        ("tensor -65535", lambda t: t.tensor([-65535], dtype=t.uint16)),
        ("0-d", lambda t: t.tensor(7, dtype=t.uint16)),
    ]:
        assert_same(call(corrnet), call(torch), name)
    assert corrnet.empty(2, 3, dtype=corrnet.uint16).dtype is corrnet.uint16
    assert repr(corrnet.zeros(0, dtype=corrnet.uint16)) == repr(torch.zeros(0, dtype=torch.uint16))


@pytest.mark.parametrize("values", [[70000], [-65536], [-1.0], [-0.5], [65535.5], [float("nan")]])
def test_values_out_of_range_are_refused_as_torch_refuses_them(values):
    with pytest.raises(RuntimeError, match="cannot be converted to type uint16"):
        torch.tensor(values, dtype=torch.uint16)
    with pytest.raises(RuntimeError, match="cannot be converted to type uint16.*got"):
        corrnet.tensor(values, dtype=corrnet.uint16)


def test_fill_and_setitem_refuse_what_torch_refuses():
    for module in (torch, corrnet):
        x = module.zeros(3, dtype=module.uint16)
        with pytest.raises(RuntimeError, match="uint16_t without overflow"):
            x.fill_(70000)
        with pytest.raises(RuntimeError, match="uint16_t without overflow"):
            x[0] = 65536
    got, expected = corrnet.zeros(3, dtype=corrnet.uint16), torch.zeros(3, dtype=torch.uint16)
    for x, t in ((got, corrnet), (expected, torch)):
        x[0] = -1               # wraps to 65535
        x[1] = 2.7              # truncates
        x[2:] = t.tensor([9])
    assert_same(got, expected, "setitem")


# ---------------------------------------------------------------------------------------------
# conversions both ways
# ---------------------------------------------------------------------------------------------

@SETTINGS
@given(array=pixels16, target=st.sampled_from(OTHER_DTYPES))
def test_conversions_from_uint16_match_torch(array, target):
    got, expected = both(array)
    assert_same(got.to(getattr(corrnet, target)), expected.to(getattr(torch, target)),
                f"uint16 -> {target}")
    for method in ("float", "double", "int", "long", "half", "bool"):
        assert_same(getattr(got, method)(), getattr(expected, method)(), f".{method}()")


@SETTINGS
@given(data=st.data(), source=st.sampled_from(OTHER_DTYPES))
def test_conversions_to_uint16_match_torch(data, source):
    if source == "bool":
        elements = st.booleans()
    elif source.startswith("float"):
        # out-of-range float -> integer casts are undefined in C++ (and in PyTorch)
        elements = st.floats(0, 65535.99 if source != "float16" else 65504, width=16
                             if source == "float16" else 64)
    else:
        info = np.iinfo(source)
        elements = st.integers(int(info.min), int(info.max))  # negatives and > 65535 wrap
    array = data.draw(hnp.arrays(np.dtype(source), hnp.array_shapes(max_dims=2, max_side=6),
                                 elements=elements))
    got = corrnet.from_numpy(array.copy()).to(corrnet.uint16)
    expected = torch.from_numpy(array.copy()).to(torch.uint16)
    assert_same(got, expected, f"{source} -> uint16")
    copied = corrnet.zeros(array.shape, dtype=corrnet.uint16).copy_(corrnet.from_numpy(array))
    assert_same(copied, expected, f"copy_ {source} into uint16")


# ---------------------------------------------------------------------------------------------
# views, indexing, joining
# ---------------------------------------------------------------------------------------------

@SETTINGS
@given(array=hnp.arrays(np.uint16, hnp.array_shapes(min_dims=2, max_dims=3, max_side=5)),
       seed=st.integers(0, 2**16))
def test_views_indexing_and_joining_match_torch(array, seed):
    got, expected = both(array)
    rng = np.random.default_rng(seed)
    order = tuple(int(i) for i in rng.permutation(array.ndim))
    index = int(rng.integers(array.shape[0]))
    picks = [int(i) for i in rng.integers(0, array.shape[0], 3)]
    mask = rng.random(array.shape) < 0.5
    cases = {
        "x[i]": lambda x, t: x[index],
        "x[:, ::2]": lambda x, t: x[:, ::2],
        "x[list]": lambda x, t: x[picks],
        "x[mask]": lambda x, t: x[t.from_numpy(mask.copy())],
        "permute": lambda x, t: x.permute(*order),
        "permute.contiguous": lambda x, t: x.permute(*order).contiguous(),
        "reshape": lambda x, t: x.reshape(-1),
        "view": lambda x, t: x.view(array.shape[0], -1),
        "transpose": lambda x, t: x.transpose(0, 1),
        "unsqueeze": lambda x, t: x.unsqueeze(0),
        "clone": lambda x, t: x.clone(),
        "cat": lambda x, t: t.cat([x, x], dim=1),
        "stack": lambda x, t: t.stack([x, x]),
        "x == v": lambda x, t: x == int(array.flat[0]),
        "x == x": lambda x, t: x == x,
    }
    for name, fn in cases.items():
        assert_same(fn(got, corrnet), fn(expected, torch), name)
    assert corrnet.equal(got, got.clone()) and got[index].dtype is corrnet.uint16
    # (PyTorch 2.13 has no uint16 flip kernel for every layout; NumPy is the oracle here)
    np.testing.assert_array_equal(got.flip(0).numpy(), array[::-1])


def test_cat_of_uint16_with_another_integer_dtype_is_refused_as_torch_refuses_it():
    x = corrnet.zeros(2, dtype=corrnet.uint16)
    with pytest.raises(RuntimeError, match="attempted to promote UInt16 and Int"):
        corrnet.cat([x, x.int()])
    assert_same(corrnet.cat([x, x.float()]),
                torch.cat([torch.zeros(2, dtype=torch.uint16), torch.zeros(2)]), "cat float")


# ---------------------------------------------------------------------------------------------
# type promotion
# ---------------------------------------------------------------------------------------------

TORCH_SHORT = {"bool": "Bool", "uint8": "Byte", "int8": "Char", "int16": "Short",
               "int32": "Int", "int64": "Long"}


@pytest.mark.parametrize("other", OTHER_DTYPES + ("uint16",))
def test_promote_types_matches_torch_in_both_orders(other):
    u, o = corrnet.uint16, getattr(corrnet, other)
    for a, b, ta, tb in ((u, o, torch.uint16, getattr(torch, other)),
                         (o, u, getattr(torch, other), torch.uint16)):
        kind, expected = outcome(lambda: torch.promote_types(ta, tb))  # noqa: B023
        if kind == "ok":
            assert repr(backend.promote_types(a, b)) == repr(expected)
        else:
            assert expected is RuntimeError
            names = [TORCH_SHORT.get(d.name, "UInt16") for d in (a, b)]
            with pytest.raises(RuntimeError, match=(
                    f"Promotion for uint16, uint32, uint64 types is not supported, attempted "
                    f"to promote {names[0]} and {names[1]}")):
                backend.promote_types(a, b)


@pytest.mark.parametrize("other", OTHER_DTYPES)
@pytest.mark.parametrize("zero_dim", ["none", "uint16", "other"])
def test_binary_ops_promote_or_refuse_as_torch(other, zero_dim):
    """uint16 (*) another dtype, either operand possibly zero-dimensional: the same dtype as
    PyTorch, or the same RuntimeError."""
    u = np.arange(6, dtype=np.uint16).reshape(2, 3)
    o = np.ones((2, 3), dtype=other)
    if zero_dim == "uint16":
        u = u[1, 2]
    elif zero_dim == "other":
        o = o[0, 0]

    def multiply(module):
        return module.from_numpy(np.array(u)) * module.from_numpy(np.array(o))

    kind, expected = outcome(lambda: multiply(torch))
    if kind == "ok":
        assert_same(multiply(corrnet), expected, f"uint16 * {other}")
    else:
        assert expected is RuntimeError
        with pytest.raises(RuntimeError, match="Promotion for uint16"):
            multiply(corrnet)


# ---------------------------------------------------------------------------------------------
# ops: PyTorch's results where it has them; no silent wrap where it has none
# ---------------------------------------------------------------------------------------------

@SETTINGS
@given(array=pixels16, scalar=st.integers(-70000, 70000), real=st.floats(-3, 3, width=32))
def test_ops_torch_implements_for_uint16_match_it(array, scalar, real):
    got, expected = both(array)
    cases = {
        "x * int (wraps, as torch)": lambda x: x * scalar,
        "int * x": lambda x: scalar * x,
        "x * x": lambda x: x * x,
        "x * float": lambda x: x * real,
        "x / 2": lambda x: x / 2,
        "x / x": lambda x: x / x,
        "x + float tensor": lambda x: x + x.float(),
        "sum": lambda x: x.sum(),
        "sum(dtype=float64)": lambda x: x.sum(dtype=x.float().double().dtype),
        "prod": lambda x: x.prod(),
        "x == int": lambda x: x == scalar,
        "x != int": lambda x: x != scalar,
        "x & int": lambda x: x & abs(scalar),
        "sqrt": lambda x: x.sqrt(),
        "float().mean()": lambda x: x.float().mean(),
    }
    if array.ndim:
        cases["sum(0, keepdim)"] = lambda x: x.sum(0, keepdim=True)
        cases["cumsum(0)"] = lambda x: x.cumsum(0)
    for name, fn in cases.items():
        assert_same(fn(got), fn(expected), name)


@SETTINGS
@given(array=pixels16, scalar=st.integers(0, 65535))
def test_ops_torch_lacks_for_uint16_compute_as_numpy_uint16(array, scalar):
    """corrnet computes more than PyTorch on uint16 (NumPy can): the result stays uint16 and
    wraps modulo 65536, as ``x * 2`` does in PyTorch; comparisons and max are exact."""
    x = corrnet.from_numpy(array.copy())
    s = np.uint16(scalar)
    with np.errstate(over="ignore"):
        expected = {
            "x + x": (x + x, array + array),
            "x + int": (x + scalar, array + s),
            "x - int": (x - scalar, array - s),
            "x > int": (x > scalar, array > s),
            "x < x": (x < x, array < array),
        }
    for name, (got, want) in expected.items():
        assert got.numpy().dtype == want.dtype, name
        np.testing.assert_array_equal(got.numpy(), want, err_msg=name)
    if array.size:
        assert x.max().item() == array.max() and x.max().dtype is corrnet.uint16


def test_mean_std_and_gradients_refuse_uint16_as_torch():
    x = corrnet.tensor([1, 2], dtype=corrnet.uint16)
    t = torch.tensor([1, 2], dtype=torch.uint16)
    for name in ("mean", "std"):
        assert outcome(getattr(t, name))[1] is RuntimeError
        with pytest.raises(RuntimeError, match="floating point"):
            getattr(x, name)()
    with pytest.raises(RuntimeError, match="only Tensors of floating point dtype"):
        x.requires_grad_()


@pytest.mark.parametrize("op", ["conv2d", "max_pool2d", "avg_pool2d"])
def test_conv_and_pool_refuse_uint16_as_torch(op):
    def call(module):
        x = module.ones(1, 1, 4, 4, dtype=module.uint16)
        if op == "conv2d":
            return module.nn.functional.conv2d(x, module.ones(1, 1, 2, 2, dtype=module.uint16))
        return getattr(module.nn.functional, op)(x, 2)

    with pytest.raises(NotImplementedError, match="UInt16"):
        call(torch)
    with pytest.raises(NotImplementedError, match=f"{op}: not implemented for input of dtype "
                                                  r"torch.uint16 \(shape \(1, 1, 4, 4\)\)"):
        call(corrnet)


def test_corr2d_of_uint16_refuses_integer_sums_and_filters_in_float():
    X = corrnet.tensor([[60000, 1, 2], [3, 4, 5]], dtype=corrnet.uint16)
    for op in (corrnet.corr2d, corrnet.convolve2d):
        with pytest.raises(NotImplementedError, match=f"{op.__name__}: .*uint16.*X.float"):
            op(X, corrnet.tensor([[2, 1]], dtype=corrnet.uint16))
        with pytest.raises(RuntimeError, match="promote UInt16 and Long"):   # as torch would
            op(X, corrnet.tensor([[1, -1]]))
    got = corrnet.corr2d(X, corrnet.tensor([[1., -1.]]))                     # float32 kernel
    assert got.dtype is corrnet.float32
    np.testing.assert_array_equal(got.numpy(), [[59999, -1], [-1, -1]])


def test_promote_types_docstring_example_runs():
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(backend.promote_types, "promote_types", globs=vars(backend)):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


# ---------------------------------------------------------------------------------------------
# saving, state dicts
# ---------------------------------------------------------------------------------------------

def test_save_load_and_state_dict_keep_uint16(tmp_path):
    values = np.array([[0, 1, 65535], [40000, 2, 3]], dtype=np.uint16)
    x = corrnet.from_numpy(values.copy())
    corrnet.save({"image": x, "rows": [x[0], x[1]]}, tmp_path / "x.pt")
    back = corrnet.load(tmp_path / "x.pt")
    for got, want in ((back["image"], values), (back["rows"][1], values[1])):
        assert got.dtype is corrnet.uint16
        np.testing.assert_array_equal(got.numpy(), want)

    module = corrnet.nn.Linear(2, 2)
    module.register_buffer("lookup", x)
    corrnet.save(module.state_dict(), tmp_path / "state.pt")
    fresh = corrnet.nn.Linear(2, 2)
    fresh.register_buffer("lookup", corrnet.zeros(2, 3, dtype=corrnet.uint16))
    fresh.load_state_dict(corrnet.load(tmp_path / "state.pt"))
    assert fresh.lookup.dtype is corrnet.uint16
    np.testing.assert_array_equal(fresh.lookup.numpy(), values)


# ---------------------------------------------------------------------------------------------
# 16-bit image files
# ---------------------------------------------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(pixels=hnp.arrays(np.uint16, st.tuples(st.integers(1, 9), st.integers(1, 9))),
       suffix=st.sampled_from([".png", ".tif"]))
def test_16_bit_files_from_opencv_and_pillow_read_as_uint16_exactly(tmp_path_factory, pixels,
                                                                    suffix):
    folder = tmp_path_factory.mktemp("deep")
    by_opencv, by_pillow = folder / f"cv{suffix}", folder / f"pil{suffix}"
    assert cv2.imwrite(str(by_opencv), pixels)                  # a 16-bit PNG / TIFF
    Image.fromarray(pixels).save(by_pillow)                     # mode I;16
    for path in (by_opencv, by_pillow):
        got = io.read_image(path)
        assert got.dtype is corrnet.uint16 and tuple(got.shape) == (1, *pixels.shape)
        np.testing.assert_array_equal(got.numpy()[0], pixels)
        # and written back with 16 bits: OpenCV reads the same values
        io.write_image(got, folder / f"back{suffix}")
        back = cv2.imread(str(folder / f"back{suffix}"), cv2.IMREAD_UNCHANGED)
        assert back.dtype == np.uint16
        np.testing.assert_array_equal(back, pixels)


def test_int32_holding_0_to_65535_is_still_written_with_16_bits(tmp_path):
    values = np.array([[[0, 300, 65535]]], dtype=np.int32)
    io.write_png(corrnet.from_numpy(values), tmp_path / "i.png")
    back = cv2.imread(str(tmp_path / "i.png"), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, values[0])
    with pytest.raises(ValueError, match="0..65535.*70000.*to\\(corrnet.uint16\\)"):
        io.write_png(corrnet.from_numpy(values + 70000), tmp_path / "j.png")


def test_a_16_bit_image_filters_as_scipy_in_float32(tmp_path):
    rng = np.random.default_rng(14)
    pixels = rng.integers(0, 65536, (12, 10)).astype(np.uint16)
    assert cv2.imwrite(str(tmp_path / "deep.png"), pixels)
    image = io.read_image(tmp_path / "deep.png")
    got = corrnet.filters.gaussian(image, 1.5)
    assert got.dtype is corrnet.float32        # 0..65535 are exact in float32
    # corrnet's boundary 'symm' (the default) is scipy.ndimage's 'reflect'
    expected = scipy.ndimage.gaussian_filter(pixels.astype(np.float64), 1.5, mode="reflect")
    np.testing.assert_allclose(got.numpy()[0], expected, rtol=1e-4, atol=1e-2)


def test_save_image_refuses_pixels_it_would_saturate_as_torchvision_refuses_them(tmp_path):
    deep = corrnet.full((1, 4, 4), 40000, dtype=corrnet.uint16)
    with pytest.raises(RuntimeError):   # torchvision's save_image: grid.mul(255).add_(0.5)
        torch.full((1, 4, 4), 200, dtype=torch.uint8).mul(255).add_(0.5)
    for image, hint in ((deep, "/ 65535"), (deep.int().to(corrnet.uint8), "/ 255")):
        with pytest.raises(ValueError, match=f"floats in \\[0, 1\\].*{image.dtype.name}.*"
                                             f"write_png.*float\\(\\) {hint}"):
            corrnet.utils.save_image(image, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_a_16_bit_pair_identifies_its_kernel_with_the_clipped_pixels_left_out(tmp_path):
    """read_image's uint16 tells identify_kernel the range (0..65535) that saturation clips
    to; the pair is made with scipy.ndimage, so the kernel is known independently."""
    rng = np.random.default_rng(16)
    before = rng.integers(0, 65536, (40, 36)).astype(np.uint16)
    kernel = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]])        # Sobel x, whole numbers
    response = scipy.ndimage.correlate(before.astype(np.int64), kernel, mode="reflect")
    after = np.clip(response // 4 + 30000, 0, 65535).astype(np.uint16)  # many pixels clipped
    assert (after == 0).any() and (after == 65535).any()
    exact = (response % 4 == 0)  # (// 4 rounds down elsewhere: keep the fit exact)
    after[~exact] = 0            # leave those out too, as clipped
    cv2.imwrite(str(tmp_path / "before.png"), before)
    cv2.imwrite(str(tmp_path / "after.png"), after)
    X, Y = io.read_image(tmp_path / "before.png"), io.read_image(tmp_path / "after.png")
    assert X.dtype is Y.dtype is corrnet.uint16
    fit = corrnet.identify_kernel(X[0], Y[0], (3, 3))
    assert fit.identifiable
    np.testing.assert_allclose(fit.kernel, kernel / 4, atol=1e-9)
    assert abs(fit.bias - 30000) < 1e-6
