"""Issue 14, item 4: pictures of what a network learned (`corrnet.show`, ``corrnet show``) and
checkpoints that name their network (`corrnet.models.from_checkpoint`).

What is drawn is checked, not only that a PNG appears: the kernel grid's panels against the
first layer's weights, the feature maps against the same network in PyTorch, and each output
unit's receptive field against the support of that unit's gradient with respect to the input
(computed in PyTorch, float64: the input pixels the unit depends on)."""

from __future__ import annotations

import numpy as np
import pytest
import torch as tt
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import corrnet as ct
from corrnet import cli, models, nn, show
from corrnet.serialization import LoadError
from corrnet.train import History, load_checkpoint, save_checkpoint

# -- checkpoints that name their network -------------------------------------------------------


def _checkpoint(path, net, network=None, epochs=1):
    history = History()
    from corrnet.train import Epoch

    history.epochs = [Epoch(e, 1.0 / e, 0.5, 0.4, 10, 0.1) for e in range(1, epochs + 1)]
    save_checkpoint(path, net, ct.optim.SGD(net.parameters(), lr=0.1), epochs, history,
                    network=network)


def test_from_checkpoint_rebuilds_the_network_with_its_weights(tmp_path):
    ct.manual_seed(1)
    net = models.MODELS["lenet-relu"]()
    path = tmp_path / "checkpoint.npz"
    _checkpoint(path, net, models.describe("lenet-relu", (1, 1, 32, 32), num_classes=10), 3)
    rebuilt, info = models.from_checkpoint(path)
    assert (info.model, info.kwargs, info.input_size, info.epoch) == (
        "lenet-relu", {"num_classes": 10}, (1, 1, 32, 32), 3)
    assert len(info.history.epochs) == 3 and not rebuilt.training
    for (name, mine), (_, theirs) in zip(net.state_dict().items(),
                                         rebuilt.state_dict().items(), strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy(), err_msg=name)
    # resuming training (train.load_checkpoint) reads the new entry as before
    assert load_checkpoint(path, models.MODELS["lenet-relu"]())[0] == 3


def test_old_checkpoints_need_the_model_flag(tmp_path):
    net = models.lenet()
    path = tmp_path / "old.npz"
    _checkpoint(path, net)  # no "network" entry: as corrnet wrote them before
    with pytest.raises(LoadError, match="does not name its network.*--model NAME"):
        models.from_checkpoint(path)
    rebuilt, info = models.from_checkpoint(path, model="lenet")
    assert info.input_size == (1, 1, 28, 28)
    np.testing.assert_array_equal(rebuilt[0].weight.detach().numpy(),
                                  net[0].weight.detach().numpy())
    with pytest.raises(LoadError, match="do not fit a lenet-bn"):
        models.from_checkpoint(path, model="lenet-bn")
    assert cli.main(["show", "kernels", str(path)]) == 2
    assert cli.main(["show", "kernels", str(path), "--model", "lenet",
                     "--out", str(tmp_path / "k.png")]) == 0


def test_checkpoint_network_entry_is_checked(tmp_path):
    net = models.lenet()
    path = tmp_path / "c.npz"
    _checkpoint(path, net, models.describe("lenet"))
    with pytest.raises(LoadError, match="holds a lenet, not a nin"):
        models.from_checkpoint(path, model="nin")
    for bad, match in [({"name": "lenet6", "kwargs": {}, "input_size": [1, 1, 28, 28]},
                        "not one of this corrnet's models"),
                       ({"name": "lenet", "kwargs": {}, "input_size": [1, 28, 28]},
                        "not 4 positive ints"),
                       ({"name": "lenet"}, "not a dict with")]:
        _checkpoint(path, net, bad)
        with pytest.raises(LoadError, match=match):
            models.from_checkpoint(path)
    ct.save({"weights": ct.ones(2)}, path)
    with pytest.raises(LoadError, match="not a corrnet training checkpoint"):
        models.from_checkpoint(path)


# -- kernels --------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(c_out=st.integers(1, 9), c_in=st.integers(1, 4), kh=st.integers(1, 5),
       kw=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_kernel_mosaic_panels_are_the_weights(c_out, c_in, kh, kw, seed):
    weight = np.random.default_rng(seed).normal(size=(c_out, c_in, kh, kw))
    mosaic = show.kernel_mosaic(weight)
    if c_in in (1, 3):  # one panel per output channel, in a near-square grid, row by row
        columns = int(np.ceil(np.sqrt(c_out)))
        places = [(divmod(o, columns), o, slice(None)) for o in range(c_out)]
    else:  # row = output channel, column = input channel
        places = [((o, i), o, i) for o in range(c_out) for i in range(c_in)]
    covered = np.zeros(mosaic.shape[:2], bool)
    for (r, c), o, i in places:
        panel = mosaic[r * (kh + 1):r * (kh + 1) + kh, c * (kw + 1):c * (kw + 1) + kw]
        expected = weight[o, i] if c_in not in (1, 3) else weight[o].transpose(1, 2, 0)
        np.testing.assert_array_equal(panel, expected.reshape(panel.shape))
        covered[r * (kh + 1):r * (kh + 1) + kh, c * (kw + 1):c * (kw + 1) + kw] = True
    assert np.isnan(mosaic[~covered]).all()  # everything else is a gap


def test_kernels_figure_draws_the_first_layer_weights_centred_at_zero(tmp_path):
    ct.manual_seed(0)
    net = models.alexnet()
    figure = show.kernels(net)
    drawn = figure.axes[0].images[0]
    weight = net[0].weight.detach().numpy()  # (96, 1, 11, 11)
    np.testing.assert_array_equal(np.ma.filled(drawn.get_array(), np.nan),
                                  show.kernel_mosaic(weight))
    low, high = drawn.get_clim()
    assert low == -high == -np.abs(weight).max()  # diverging, centred at 0
    assert drawn.get_cmap().name == "RdBu_r" and len(figure.axes) == 2  # with a colour bar
    show.save(figure, tmp_path / "k.png")
    with Image.open(tmp_path / "k.png") as png:
        assert png.format == "PNG"
        assert png.size == tuple(round(v * 100) for v in figure.get_size_inches())
    rgb = nn.Sequential(nn.Conv2d(3, 4, 3))
    figure = show.kernels(rgb)
    assert figure.axes[0].images[0].get_array().shape == (7, 7, 3)  # 2x2 RGB panels


# -- feature maps -----------------------------------------------------------------------------


def _torch_lenet(net):
    twin = tt.nn.Sequential(
        tt.nn.Conv2d(1, 6, 5, padding=2), tt.nn.Sigmoid(), tt.nn.AvgPool2d(2, 2),
        tt.nn.Conv2d(6, 16, 5), tt.nn.Sigmoid(), tt.nn.AvgPool2d(2, 2), tt.nn.Flatten(),
        tt.nn.Linear(400, 120), tt.nn.Sigmoid(), tt.nn.Linear(120, 84), tt.nn.Sigmoid(),
        tt.nn.Linear(84, 10)).double()
    twin.load_state_dict({k: tt.from_numpy(v.numpy().astype(np.float64))
                          for k, v in net.state_dict().items()})
    return twin


@pytest.mark.parametrize("layer, index", [("0", 0), ("2", 2), ("4", 4), (-8, 4)])
def test_feature_maps_match_pytorch(layer, index):
    ct.manual_seed(2)
    net = models.lenet()
    x = np.random.default_rng(3).random((1, 1, 28, 28), dtype=np.float32)
    row, maps = show.feature_maps(net, ct.from_numpy(x), layer)
    expected = _torch_lenet(net)[:index + 1](tt.from_numpy(x.astype(np.float64)))[0]
    assert row.name == str(index)
    np.testing.assert_allclose(maps, expected.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_feature_maps_refuse_layers_without_maps_and_unknown_names():
    net = models.lenet()
    x = ct.zeros(1, 1, 28, 28)
    with pytest.raises(show.ShowError, match=r"layer 7 \(7 Linear\) outputs \[1, 120\].*"
                                             r"layers with feature maps: 0: 0 Conv2d"):
        show.feature_maps(net, x, 7)
    with pytest.raises(show.ShowError, match=r"no layer 'conv9'.*0: 0 Conv2d"):
        show.feature_maps(net, x, "conv9")
    with pytest.raises(show.ShowError, match="no layer '12'"):
        show.feature_maps(net, x, 12)


def test_nested_layer_names_and_positions():
    net = nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), nn.Conv2d(2, 3, 3))
    rows = ct.summary(net, (1, 1, 9, 9)).rows
    assert show.resolve_layer(rows, "0.1") == 1 and show.resolve_layer(rows, "1") == 2
    assert show.resolve_layer(rows, "0") == 0  # a position when no row has that name
    assert show.resolve_layer(rows, 1) == 1  # an int is always a position
    _, maps = show.feature_maps(net, ct.ones(1, 1, 9, 9), "1")
    assert maps.shape == (3, 5, 5)
    _, maps = show.feature_maps(net, ct.ones(1, 1, 9, 9), 1)
    assert maps.shape == (2, 7, 7)


def test_to_network_input_matches_pillow_and_the_dataset_scale():
    gray = np.random.default_rng(4).integers(0, 256, (40, 30), dtype=np.uint8)
    x = show.to_network_input(gray, (28, 28)).numpy()
    resized = np.asarray(Image.fromarray(gray).resize((28, 28), Image.BILINEAR))
    assert x.shape == (1, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0, 0], resized.astype(np.float32) / np.float32(255))
    inverted = show.to_network_input(gray, (40, 30), invert=True).numpy()[0, 0]
    np.testing.assert_array_equal(inverted, (255 - gray).astype(np.float32) / np.float32(255))


# -- receptive field against the input gradient ------------------------------------------------


def _support_box(grad):
    """(first row, last row), (first column, last column) of the nonzero entries."""
    rows, cols = np.nonzero(np.abs(grad).sum(axis=0))
    return (rows.min(), rows.max()), (cols.min(), cols.max())


def _unit_gradient(twin, x, channel, unit):
    """d twin(x)[0, channel, i, j] / dx, in float64."""
    x = tt.from_numpy(x).requires_grad_(True)
    out = twin(x)
    (out[0, channel][unit] if out.dim() == 4 else out[0, channel]).backward()
    return x.grad[0].numpy()


@pytest.mark.parametrize("layer", range(6))
def test_lenet_receptive_field_is_the_gradient_support(layer):
    """Sigmoid and average pooling pass a gradient to every input they depend on, and every
    unit of LeNet's maps is covered to the input's edges: the support is the clipped field."""
    ct.manual_seed(5)
    net = models.lenet()
    twin = _torch_lenet(net)[:layer + 1]
    x = np.random.default_rng(6).random((1, 1, 28, 28))
    out_h = ct.summary(net, (1, 1, 28, 28)).rows[layer].output_shape[-1]
    for unit in {(0, 0), (out_h - 1, out_h - 1), (out_h // 2, 1), (1, out_h // 2)}:
        field = show.receptive_field(net, (1, 1, 28, 28), layer, unit)
        grad = _unit_gradient(twin, x, 1, unit)
        assert _support_box(grad) == (field.clipped_rows, field.clipped_cols), (layer, unit)
        (r0, r1), (c0, c1) = field.clipped_rows, field.clipped_cols
        assert (grad[:, r0:r1 + 1, c0:c1 + 1] != 0).all()  # dense inside


def test_receptive_field_of_a_dense_layer_is_the_whole_input():
    net = models.lenet()
    field = show.receptive_field(net, (1, 1, 28, 28), "7")
    assert (field.clipped_rows, field.clipped_cols) == ((0, 27), (0, 27))
    grad = _unit_gradient(_torch_lenet(net)[:8], np.random.default_rng(7).random(
        (1, 1, 28, 28)), 3, None)
    assert (grad != 0).all()


def test_receptive_field_refuses_units_outside_and_flattened_layers():
    net = models.lenet()
    with pytest.raises(show.ShowError, match=r"unit \(14, 0\) is outside layer 2's output "
                                             "of 14x14"):
        show.receptive_field(net, (1, 1, 28, 28), 2, (14, 0))
    with pytest.raises(show.ShowError, match="no .N, C, H, W. layout"):
        show.receptive_field(net, (1, 1, 28, 28), "6")  # Flatten
    # a functional pool in a forward: summary cannot follow it (F.relu it follows, issue 16)
    block = _FunctionalPool()
    with pytest.raises(show.ShowError, match=r"is ~5x5, assumed: its input was computed "
                                             "outside any layer"):
        show.receptive_field(block, (1, 1, 8, 8), "conv2")


class _FunctionalPool(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x):
        return self.conv2(nn.functional.avg_pool2d(self.conv1(x), 3, 1, 1))


_LAYER = st.tuples(st.sampled_from(["conv", "avg", "max"]), st.integers(1, 4),
                   st.integers(1, 3), st.integers(0, 2), st.integers(1, 2))


@settings(max_examples=30, deadline=None)
@given(layers=st.lists(_LAYER, min_size=1, max_size=3), h=st.integers(10, 18),
       w=st.integers(10, 18), data=st.data())
def test_receptive_field_of_random_stacks_bounds_the_gradient_support(layers, h, w, data):
    """Convolutions (with dilation) and pools of random kernel, stride and padding: the
    support of a unit's input gradient lies in the field summary's numbers give, and fills
    its corners when the field lies inside the input (max pooling: only the inputs that won,
    so the support is inside, not equal)."""
    ours, theirs, channels = [], [], 1
    for kind, k, s, p, d in layers:
        p = min(p, k // 2)  # PyTorch's limit for pools; a field never only in the padding
        if kind == "conv":
            ours.append(nn.Conv2d(channels, 2, k, stride=s, padding=p, dilation=d))
            theirs.append(tt.nn.Conv2d(channels, 2, k, stride=s, padding=p, dilation=d))
            channels = 2
        else:
            ours.append((nn.AvgPool2d if kind == "avg" else nn.MaxPool2d)(k, s, p))
            theirs.append((tt.nn.AvgPool2d if kind == "avg" else tt.nn.MaxPool2d)(k, s, p))
    net, twin = nn.Sequential(*ours), tt.nn.Sequential(*theirs).double()
    try:
        out_shape = ct.summary(net, (1, 1, h, w)).rows[-1].output_shape
    except (RuntimeError, ValueError):
        return  # the stack does not fit this input (output smaller than 1): nothing to draw
    for module in twin.modules():
        if isinstance(module, tt.nn.Conv2d):
            module.weight.data.normal_(generator=tt.Generator().manual_seed(h * w))
    unit = (data.draw(st.integers(0, out_shape[-2] - 1)),
            data.draw(st.integers(0, out_shape[-1] - 1)))
    field = show.receptive_field(net, (1, 1, h, w), len(layers) - 1, unit)
    x = np.random.default_rng(8).random((1, 1, h, w))
    grad = _unit_gradient(twin, x, 0, unit)
    if not grad.any():
        return  # a window wholly in a max pool's -inf padding can pass no gradient
    (g0, g1), (f0, f1) = _support_box(grad)
    (r0, r1), (c0, c1) = field.clipped_rows, field.clipped_cols
    assert r0 <= g0 <= g1 <= r1 and c0 <= f0 <= f1 <= c1
    inside = field.rows[0] >= 0 and field.cols[0] >= 0 and field.rows[1] < h \
        and field.cols[1] < w
    if inside and all(kind != "max" for kind, *_ in layers):
        assert ((g0, g1), (f0, f1)) == ((r0, r1), (c0, c1))


# -- the command line ---------------------------------------------------------------------------


def _png_size(path):
    with Image.open(path) as png:
        assert png.format == "PNG"
        png.load()
        return png.size


def test_cli_show_pictures_of_a_checkpoint(tmp_path, capsys):
    ct.manual_seed(0)
    net = models.lenet()
    path = tmp_path / "run" / "checkpoint.npz"
    _checkpoint(path, net, models.describe("lenet", num_classes=10), epochs=1)
    image = tmp_path / "shirt.png"
    picture = np.zeros((50, 40), np.uint8)
    picture[8:42, 6:34] = 220
    Image.fromarray(picture).save(image)
    assert cli.main(["show", "kernels", str(path)]) == 0
    assert _png_size(tmp_path / "run" / "kernels.png")[0] > 100
    assert cli.main(["show", "features", str(path), str(image), "--layer", "3"]) == 0
    assert _png_size(tmp_path / "run" / "features-3.png")[0] > 100
    assert cli.main(["show", "features", str(path), str(image)]) == 0  # the first conv
    assert (tmp_path / "run" / "features-0.png").exists()
    assert cli.main(["show", "curves", str(path)]) == 0
    assert _png_size(tmp_path / "run" / "curves.png") == (500, 350)
    out = tmp_path / "rf.png"
    assert cli.main(["show", "receptive-field", "lenet", "--layer", "2", "--unit", "3,4",
                     "--image", str(image), "--out", str(out)]) == 0
    assert _png_size(out) == (500, 540)
    assert f"wrote {out}" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["show", "kernels", "{tmp}/missing.npz"], "{tmp}/missing.npz: no such file"),
    (["show", "features", "{ckpt}", "{tmp}/none.png"], "no such file: '{tmp}/none.png'"),
    (["show", "features", "{ckpt}", "{ckpt}"], "cannot read '{ckpt}' as an image"),
    (["show", "features", "{ckpt}", "{img}", "--layer", "9"], "outputs [1, 84], not feature"),
    (["show", "receptive-field", "lenet", "--layer", "2", "--unit", "1;2"],
     "--unit '1;2': expected I,J"),
    (["show", "receptive-field", "lenet", "--layer", "x"], "no layer 'x'"),
    (["show", "curves", "{img}"], "not a corrnet save file"),
])
def test_cli_show_errors_are_one_line(tmp_path, capsys, argv, message):
    ckpt = tmp_path / "checkpoint.npz"
    _checkpoint(ckpt, models.lenet(), models.describe("lenet"))
    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(img)
    fill = {"tmp": tmp_path, "ckpt": ckpt, "img": img}
    assert cli.main([a.format(**fill) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"corrnet show {argv[1]}: error: ")
    assert message.format(**fill) in err


def test_cli_show_without_matplotlib_says_how_to_install(tmp_path, capsys, monkeypatch):
    import sys

    ckpt = tmp_path / "checkpoint.npz"
    _checkpoint(ckpt, models.lenet(), models.describe("lenet"))
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    for argv in (["show", "kernels", str(ckpt)], ["show", "curves", str(ckpt)]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "pip install 'corrnet[plot]'" in err
    assert not (tmp_path / "kernels.png").exists()
