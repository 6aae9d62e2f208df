"""`corrnet.dask.apply`: tiled network inference over a Dask array (issue 16, item 2).

The oracle is the network on the whole image, untiled (``net(whole_image)`` in memory),
within float32 rounding: random small networks (stacks of convolutions of every kernel,
stride, dilation, groups and padding, pooling, activations, BatchNorm in eval mode with
random running statistics, upsampling, transposed convolutions, a U-Net-like block with a
concatenating skip),
random image sizes and chunkings. Refusals name the layer; bad chunks, ranks and dtypes
name the argument. One run under a distributed LocalCluster with two worker processes.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import corrnet
from corrnet import nn

da = pytest.importorskip("dask.array")
import dask  # noqa: E402

import corrnet.dask as cdask  # noqa: E402

SETTINGS = settings(max_examples=50, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# -- random networks --------------------------------------------------------------------------


def _conv(draw, channels):
    kernel = draw(st.sampled_from([1, 2, 3, 5]))
    dilation = draw(st.sampled_from([1, 1, 2]))
    stride = draw(st.sampled_from([1, 1, 2]))
    reach = dilation * (kernel - 1)
    padding = draw(st.sampled_from([reach // 2, 0, min(reach, 2)]))
    out = draw(st.sampled_from([2, 3, 4]))
    groups = draw(st.sampled_from([1, 2])) if channels % 2 == 0 and out % 2 == 0 else 1
    return nn.Conv2d(channels, out, kernel, stride=stride, padding=padding, dilation=dilation,
                     groups=groups, padding_mode=draw(st.sampled_from(["zeros", "zeros",
                                                                       "reflect"]))
                     if padding and stride == 1 else "zeros"), out, stride


def _batch_norm(draw, channels):
    layer = nn.BatchNorm2d(channels)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    layer.running_mean.data = corrnet.tensor(rng.normal(size=channels).astype(np.float32))
    layer.running_var.data = corrnet.tensor(rng.uniform(0.5, 2, channels).astype(np.float32))
    layer.weight.data = corrnet.tensor(rng.normal(size=channels).astype(np.float32))
    return layer


@st.composite
def stacks(draw, channels=2):
    """(layers, input channels): up to three strided layers, so every jump divides 8."""
    layers, strided = [], 0
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["conv", "conv", "pool", "act", "bn", "up", "convT"]))
        if kind == "conv":
            layer, channels, stride = _conv(draw, channels)
            if stride > 1 and strided >= 3:
                continue
            strided += stride > 1
        elif kind == "pool" and strided < 3:
            kernel = draw(st.integers(2, 3))
            stride = draw(st.sampled_from([1, 2]))
            padding = draw(st.integers(0, kernel // 2))
            ceil = draw(st.booleans())
            layer = (nn.MaxPool2d(kernel, stride, padding, ceil_mode=ceil) if draw(st.booleans())
                     else nn.AvgPool2d(kernel, stride, padding, ceil_mode=ceil,
                                       count_include_pad=draw(st.booleans())))
            strided += stride > 1
        elif kind == "convT":
            kernel, stride = draw(st.integers(1, 4)), draw(st.sampled_from([1, 2]))
            padding = draw(st.integers(0, (kernel - 1) // 2))
            layer = nn.ConvTranspose2d(channels, 2, kernel, stride=stride, padding=padding,
                                       output_padding=draw(st.integers(0, stride - 1)))
            channels = 2
        elif kind == "act":
            layer = draw(st.sampled_from([nn.ReLU, nn.Sigmoid, nn.Tanh, nn.LeakyReLU]))()
        elif kind == "bn":
            layer = _batch_norm(draw, channels)
        elif kind == "up":
            mode = draw(st.sampled_from(["nearest", "nearest", "bilinear", "bicubic"]))
            factor = draw(st.sampled_from([2, 3])) if mode == "nearest" else 2
            layer = nn.Upsample(scale_factor=factor, mode=mode)
        else:
            continue
        layers.append(layer)
    return layers, channels


class _UNet(nn.Module):
    """A U-Net-like block: `inner` runs at half resolution between a max pool and an
    upsampling, joined to the skip by concatenation."""

    def __init__(self, channels, inner, inner_channels, mode):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(channels, 3, 3, padding=1), nn.ReLU())
        self.down = nn.MaxPool2d(2)
        self.inner = nn.Sequential(nn.Conv2d(3, inner_channels[0], 3, padding=1), *inner)
        self.up = nn.Upsample(scale_factor=2, mode=mode)
        self.dec = nn.Conv2d(3 + inner_channels[1], 2, 3, padding=1)

    def forward(self, x):
        skip = self.enc(x)
        return self.dec(corrnet.cat([skip, self.up(self.inner(self.down(skip)))], 1))


@st.composite
def networks(draw):
    """(network, input channels): a plain stack, or a U-Net block around a stride-free
    stack (so that the skip and the upsampled branch have the same size)."""
    corrnet.manual_seed(draw(st.integers(0, 2**16)))
    if draw(st.booleans()):
        layers, _ = draw(stacks(channels=2))
        return nn.Sequential(*layers).eval(), 2
    inner = []
    width = draw(st.sampled_from([2, 4]))
    for _ in range(draw(st.integers(0, 2))):
        kernel = draw(st.sampled_from([1, 3, 5]))
        dilation = draw(st.sampled_from([1, 2]))
        inner += [nn.Conv2d(width, width, kernel, padding=dilation * (kernel - 1) // 2,
                            dilation=dilation), _batch_norm(draw, width), nn.ReLU()]
    mode = draw(st.sampled_from(["nearest", "bilinear"]))
    return _UNet(1, inner, (width, width), mode).eval(), 1


def _whole(net, image: np.ndarray) -> np.ndarray:
    with corrnet.no_grad():
        return net(corrnet.from_numpy(np.ascontiguousarray(image))).numpy()


def _close(tiled, whole):
    assert tiled.shape == whole.shape
    scale = max(1.0, float(np.abs(whole).max(initial=0)))
    np.testing.assert_allclose(tiled, whole, rtol=1e-4, atol=2e-5 * scale)


@st.composite
def short_then_padding(draw):
    """A layer that leaves out trailing outputs a larger input would have (a transposed
    convolution without output_padding: 2n - 1 outputs of n at stride 2; an unpadded
    convolution), then one that pads or clamps at the end of its input (a linear or cubic
    upsample, a padded convolution or pool): inside a chunk the second must not read the
    first's left-out outputs as padding (found: a 1x1 stride-2 transposed convolution, then a
    bicubic upsample)."""
    corrnet.manual_seed(draw(st.integers(0, 2**16)))
    if draw(st.booleans()):
        stride = draw(st.sampled_from([2, 3]))
        first = nn.ConvTranspose2d(2, 2, draw(st.integers(1, 4)), stride=stride)
    else:
        first = nn.Conv2d(2, 2, draw(st.integers(2, 3)))
    kind = draw(st.sampled_from(["bilinear", "bicubic", "conv", "avg", "max"]))
    if kind in ("bilinear", "bicubic"):
        second = nn.Upsample(scale_factor=2, mode=kind)
    elif kind == "conv":
        kernel = draw(st.sampled_from([3, 5]))
        second = nn.Conv2d(2, 2, kernel, padding=kernel // 2)
    elif kind == "avg":
        second = nn.AvgPool2d(3, 1, 1, count_include_pad=draw(st.booleans()))
    else:
        second = nn.MaxPool2d(3, 1, 1)
    return nn.Sequential(first, second).eval()


@SETTINGS
@given(net=short_then_padding(), height=st.integers(6, 40), width=st.integers(6, 40),
       chunk_h=st.integers(3, 20), chunk_w=st.integers(3, 20), seed=st.integers(0, 2**16))
def test_left_out_outputs_before_padding_equal_the_whole_image(net, height, width, chunk_h,
                                                               chunk_w, seed):
    image = np.random.default_rng(seed).standard_normal((2, height, width)).astype(np.float32)
    whole = _whole(net, image[None])[0]
    array = da.from_array(image, chunks=(2, chunk_h, chunk_w))
    _close(cdask.apply(net, array).compute(scheduler="synchronous"), whole)


@SETTINGS
@given(net=networks(), height=st.integers(8, 70), width=st.integers(8, 70),
       chunk_h=st.integers(3, 40), chunk_w=st.integers(3, 40), batch=st.sampled_from([0, 1, 3]),
       explicit=st.sampled_from([None, 1, 2, 3]), seed=st.integers(0, 2**16))
def test_random_networks_equal_the_whole_image(net, height, width, chunk_h, chunk_w, batch,
                                               explicit, seed):
    net, channels = net
    if isinstance(net, _UNet):  # the skip and the upsampled branch must meet
        height, width = height // 2 * 2, width // 2 * 2
    image = np.random.default_rng(seed).standard_normal(
        (max(batch, 1), channels, height, width)).astype(np.float32)
    try:
        whole = _whole(net, image)
    except (RuntimeError, ValueError):
        assume(False)  # the network does not fit this image at all
    assume(whole.shape[2] > 0 and whole.shape[3] > 0)
    array = da.from_array(image if batch else image[0],
                          chunks=((2,) if batch else ()) + (channels, chunk_h, chunk_w))
    chunks = None if explicit is None else (8 * explicit, 8 * (4 - explicit))
    tiled = cdask.apply(net, array, chunks=chunks)
    assert tiled.shape == (whole if batch else whole[0]).shape
    result = tiled.compute(scheduler="synchronous")
    _close(result, whole if batch else whole[0])


# -- fixed networks -----------------------------------------------------------------------------


def _unet(mode="nearest"):
    corrnet.manual_seed(0)
    inner = [nn.Conv2d(4, 4, 3, padding=2, dilation=2), nn.ReLU(), nn.MaxPool2d(2),
             nn.Conv2d(4, 4, 3, padding=1), nn.Upsample(scale_factor=2, mode=mode)]
    return _UNet(1, inner, (4, 4), mode).eval()


def test_unet_threaded_chunks_and_halo():
    net = _unet("bilinear")
    image = np.random.default_rng(1).standard_normal((1, 96, 72)).astype(np.float32)
    tiled = cdask.apply(net, da.from_array(image, chunks=(1, 16, 24)))
    # alignment 4 (two poolings): the chunks kept; output chunks = input chunks (jump 1)
    assert tiled.chunks == ((2,), (16,) * 6, (24,) * 3)
    _close(tiled.compute(scheduler="threads"), _whole(net, image[None])[0])
    # chunks smaller than the halo: a region spans several input blocks on each side
    small = cdask.apply(net, da.from_array(image, chunks=(1, 4, 8)), chunks=(4, (8,) * 9))
    assert small.chunks[1:] == ((4,) * 24, (8,) * 9)
    _close(small.compute(scheduler="threads"), _whole(net, image[None])[0])


def test_strided_output_chunks_and_borders():
    """Output chunks = input chunks / the output jump; the network's padding (or its lack)
    changes only the first and last blocks."""
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.Conv2d(2, 1, 3, stride=2,
                                                                        padding=1)).eval()
    image = np.random.default_rng(2).standard_normal((1, 50, 43)).astype(np.float32)
    tiled = cdask.apply(net, da.from_array(image), chunks=(16, 8))
    whole = _whole(net, image[None])[0]
    # 50 rows in blocks of 16: outputs 0-4, 4-8, 8-12; the last 2 rows own no output (the
    # unpadded first convolution drops them)
    assert tiled.chunks[1] == (4, 4, 4, 0) and sum(tiled.chunks[2]) == whole.shape[2]
    _close(tiled.compute(), whole)


def test_a_region_reaches_far_enough_for_its_last_outputs():
    """A stride-2 transposed convolution of a 1x1 kernel: output 2i + 1 reads nothing, yet a
    region of n pixels makes only 2n - 1 outputs, so each chunk's halo reaches one grid step
    further than the receptive field asks (found by the random networks above)."""
    corrnet.manual_seed(0)
    net = nn.Sequential(nn.ConvTranspose2d(2, 2, 1, stride=2), nn.Conv2d(2, 1, 3)).eval()
    image = np.random.default_rng(5).standard_normal((2, 8, 10)).astype(np.float32)
    tiled = cdask.apply(net, da.from_array(image, chunks=(2, 3, 3)))
    _close(tiled.compute(), _whole(net, image[None])[0])


def test_integer_images_and_dtype():
    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.AvgPool2d(2)).eval()
    image = np.random.default_rng(3).integers(0, 4096, (1, 32, 32)).astype(np.uint16)
    tiled = cdask.apply(net, da.from_array(image, chunks=(1, 8, 8)))
    assert tiled.dtype == np.float32
    _close(tiled.compute(), _whole(net, image[None].astype(np.float32))[0])
    double = cdask.apply(net, da.from_array(image, chunks=(1, 8, 8)), dtype=corrnet.float64)
    assert double.dtype == np.float64
    expected = _whole(net.double(), image[None].astype(np.float64))[0]
    np.testing.assert_allclose(double.compute(), expected, rtol=1e-12)


def test_weights_travel_in_one_key():
    """Without a distributed Client, one graph key holds the network (its state dict and
    skeleton); every block task refers to that key and is small."""
    net = nn.Sequential(nn.Conv2d(1, 64, 5, padding=2), nn.ReLU(),
                        nn.Conv2d(64, 64, 5, padding=2)).eval()
    weights = sum(p.numel() for p in net.parameters()) * 4
    tiled = cdask.apply(net, da.zeros((1, 64, 64), chunks=(1, 16, 16), dtype=np.float32))
    layer = dict(tiled.dask.layers[tiled.name])
    holders = [key for key, value in layer.items()
               if isinstance(value, cdask.shipping.ShippedNetwork)]
    assert len(holders) == 1
    tasks = [value for key, value in layer.items() if key not in holders]
    assert len(tasks) == 16 and all(task[1] == holders[0] for task in tasks)
    assert max(len(pickle.dumps(task)) for task in tasks) < weights / 20
    assert len(pickle.dumps(layer[holders[0]])) > weights


def test_progress_bar(capsys):
    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1)).eval()
    tiled = cdask.apply(net, da.zeros((1, 32, 32), chunks=(1, 16, 8), dtype=np.float32),
                        progress=True)
    tiled.compute(scheduler="threads")
    err = capsys.readouterr().err
    assert "corrnet.dask.apply" in err and "8/8" in err


def test_a_network_built_by_the_user_on_a_distributed_cluster():
    distributed = pytest.importorskip("distributed")
    net = _unet("nearest")
    image = np.random.default_rng(4).standard_normal((2, 1, 40, 36)).astype(np.float32)
    with dask.config.set({"distributed.worker.daemon": False}), distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
            worker_dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        tiled = cdask.apply(net, da.from_array(image, chunks=(1, 1, 16, 12)), progress=True)
        # the network was scattered to both workers once: the tasks refer to its future
        layer = dict(tiled.dask.layers[tiled.name])
        futures = {task[1] for task in layer.values()}
        assert len(futures) == 1 and isinstance(next(iter(futures)), distributed.Future)
        (holders,) = client.who_has(list(futures)).values()
        assert len(holders) == 2
        result = tiled.compute()
    _close(result, _whole(net, image))


# -- refusals and bad input ---------------------------------------------------------------------


@pytest.mark.parametrize("layer, name, words", [
    (nn.Linear(8, 8), "2", "Linear"),
    (nn.Flatten(), "2", "Flatten"),
    (nn.AdaptiveAvgPool2d(1), "2", "AdaptiveAvgPool2d"),
    (nn.AdaptiveMaxPool2d((4, 4)), "2", "AdaptiveMaxPool2d"),
    (nn.GroupNorm(1, 4), "2", "GroupNorm"),
    (nn.Upsample(size=(8, 8)), "2", "size="),
    (nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), "2", "aligns corners"),
    (nn.Upsample(scale_factor=1.5), "2", "integer factors"),
    (nn.Upsample(scale_factor=3, mode="bilinear"), "2", "power-of-two"),
    (nn.PixelShuffle(2), "2", "cannot bound"),
])
def test_non_local_layers_are_refused_by_name(layer, name, words):
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), layer).eval()
    with pytest.raises(ValueError, match=f"layer '{name}'") as info:
        cdask.apply(net, da.zeros((1, 16, 16), dtype=np.float32))
    assert words in str(info.value)


def test_training_mode_and_functional_ops_are_refused():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    with pytest.raises(ValueError, match=r"layer '1' \(BatchNorm2d\).*net.eval\(\)"):
        cdask.apply(net, da.zeros((1, 16, 16), dtype=np.float32))

    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x):
            return corrnet.nn.functional.max_pool2d(self.conv(x), 3, 1, 1)

    with pytest.raises(ValueError, match="output.*MaxPool2DWithIndicesBackward0"):
        cdask.apply(Functional().eval(), da.zeros((1, 16, 16), dtype=np.float32))


def test_bad_input_names_the_argument():
    net = nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.MaxPool2d(2), nn.MaxPool2d(2)).eval()
    image = da.zeros((2, 32, 32), dtype=np.float32, chunks=(2, 8, 8))
    with pytest.raises(ValueError, match=r"chunks=\(2, 8\).*alignment 4"):
        cdask.apply(net, image, chunks=(2, 8))
    with pytest.raises(ValueError, match=r"chunks=6.*multiple of the network's alignment 4"):
        cdask.apply(net, image, chunks=6)
    with pytest.raises(ValueError, match=r"along width, an int or a tuple of block sizes"):
        cdask.apply(net, image, chunks=(8, 16.0))
    with pytest.raises(ValueError, match=r"chunks must be None, an int or a pair"):
        cdask.apply(net, image, chunks=(8, 8, 8))
    with pytest.raises(ValueError, match=r"block sizes along width.*summing to .* 32"):
        cdask.apply(net, image, chunks=(8, (16, 8)))
    with pytest.raises(ValueError, match=r"images must be one image .*shape \(32, 32\)"):
        cdask.apply(net, image[0])
    with pytest.raises(TypeError, match="images must hold real numbers.*complex"):
        cdask.apply(net, image.astype(np.complex64))
    with pytest.raises(TypeError, match="images must be a dask array"):
        cdask.apply(net, [[1.0]])
    with pytest.raises(TypeError, match="net must be a corrnet.nn.Module"):
        cdask.apply(lambda x: x, image)
    with pytest.raises(ValueError, match=r"images of shape \(3, 32, 32\).*'0' \(Conv2d\)"):
        cdask.apply(net, da.zeros((3, 32, 32), dtype=np.float32))
    with pytest.raises(TypeError, match="dtype must be a floating point dtype"):
        cdask.apply(net, image, dtype=corrnet.int32)
    # an image smaller than an unpadded network's receptive field: the whole image fails too
    valid = nn.Sequential(nn.Conv2d(1, 1, 5), nn.Conv2d(1, 1, 5)).eval()
    with pytest.raises(ValueError, match=r"images of shape \(1, 6, 30\).*'1' \(Conv2d\)"):
        cdask.apply(valid, da.zeros((1, 6, 30), dtype=np.float32))
    # -1: the whole axis in one chunk
    whole_rows = cdask.apply(net, image, chunks=(-1, 8))
    assert whole_rows.chunks[1:] == ((8,), (2, 2, 2, 2))


def test_an_image_the_network_cannot_take_whole_is_refused():
    """A U-Net whose pooling does not divide the image: the whole image fails too."""
    net = _unet()
    with pytest.raises(ValueError, match=r"fails on an input of shape.*alignment \(4, 4\)"):
        cdask.apply(net, da.zeros((1, 202, 200), dtype=np.float32))
    with pytest.raises(ValueError, match=r"fails on images of shape \(1, 42, 40\).*cat\(\)"):
        cdask.apply(net, da.zeros((1, 42, 40), dtype=np.float32))


def test_docstring_example():
    import doctest

    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    globs = {"corrnet": corrnet, "nn": nn, "np": np}
    tests = [t for t in finder.find(cdask.tiling, "corrnet.dask.tiling", globs=globs)
             if t.examples]
    assert tests
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_dask_is_optional(monkeypatch):
    """`import corrnet` never imports Dask (`import corrnet.dask` does: its filters are dask
    functions); `apply` without Dask names the extra."""
    import subprocess
    import sys

    code = ("import sys, corrnet; "
            "assert not any(name == 'dask' or name.startswith('dask.') for name in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.array", None)
    with pytest.raises(ImportError, match=r"pip install corrnet\[dask\]"):
        cdask.apply(nn.Conv2d(1, 1, 3), np.zeros((1, 8, 8), np.float32))
