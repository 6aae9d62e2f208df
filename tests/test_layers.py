"""Layers, losses, init and the Module API: properties that need no oracle run of an op
(random masks and initializations, statistics, module bookkeeping, error messages).
The forward/backward comparisons with PyTorch are in oracle/test_layers_oracle.py."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch as tt

import corrnet as ct
from corrnet import nn
from corrnet.nn import functional as F

# ------------------------------------------------------------------------------- dropout


def test_dropout_p_zero_and_eval_are_identity():
    x = ct.randn(4, 5, requires_grad=True)
    assert F.dropout(x, 0.0) is x
    assert F.dropout(x, 0.7, training=False) is x
    layer = nn.Dropout(0.5).eval()
    assert layer(x) is x


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_mask_statistics_and_scaling(p):
    ct.manual_seed(0)
    x = ct.ones(400, 500)
    out = F.dropout(x, p).numpy()
    kept = out != 0
    assert abs(1 - kept.mean() - p) < 0.005  # 200,000 Bernoulli draws: sd ~ 0.001
    np.testing.assert_allclose(out[kept], 1 / (1 - p), rtol=1e-6)
    assert abs(out.mean() - 1) < 0.02  # the scaling keeps the expectation


def test_dropout_gradient_is_the_mask():
    ct.manual_seed(1)
    x = ct.randn(50, 60, dtype=ct.float64, requires_grad=True)
    out = F.dropout(x, 0.3)
    upstream = ct.randn(50, 60, dtype=ct.float64)
    out.backward(upstream)
    mask = (out.detach().numpy() / x.detach().numpy())  # 0 or 1/(1-p)
    np.testing.assert_allclose(x.grad.numpy(), upstream.numpy() * mask, rtol=1e-12)
    assert set(np.round(np.unique(mask), 9)) <= {0.0, round(1 / 0.7, 9)}


def test_dropout_module_train_mode_and_seed():
    layer = nn.Dropout(0.5)
    x = ct.ones(1000)
    ct.manual_seed(3)
    a = layer(x)
    ct.manual_seed(3)
    b = layer(x)
    assert a.equal(b) and 0 < float((a == 0).sum()) < 1000
    assert F.dropout(x, 1.0).equal(ct.zeros(1000))
    assert a.dtype == ct.float32 and F.dropout(x.double(), 0.5).dtype == ct.float64


def test_dropout_inplace():
    ct.manual_seed(4)
    x = ct.ones(100)
    out = F.dropout(x, 0.5, inplace=True)
    assert out is x and float((x == 0).sum()) > 0


@pytest.mark.parametrize("p", [-0.5, 1.01])
def test_dropout_bad_p_names_the_probability(p):
    with pytest.raises(ValueError, match=f"between 0 and 1, but got {p}"):
        nn.Dropout(p)
    with pytest.raises(ValueError, match="dropout probability"):
        F.dropout(ct.ones(3), p)


# ---------------------------------------------------------------------------------- init

BIG = (500, 400)  # fan_in 400, fan_out 500; 200,000 samples


def _std(t):
    return float(np.std(t.detach().numpy()))


@pytest.mark.parametrize("name, param", [("linear", None), ("conv2d", None), ("sigmoid", None),
                                         ("tanh", None), ("relu", None), ("leaky_relu", None),
                                         ("leaky_relu", 0.2), ("leaky_relu", 3), ("selu", None),
                                         ("conv_transpose2d", None)])
def test_calculate_gain_matches_torch(name, param):
    assert nn.init.calculate_gain(name, param) == pytest.approx(
        tt.nn.init.calculate_gain(name, param), rel=1e-15)


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match="Unsupported nonlinearity softplus"):
        nn.init.calculate_gain("softplus")
    with pytest.raises(ValueError, match="negative_slope"):
        nn.init.calculate_gain("leaky_relu", "0.1")


def test_uniform_normal_constant():
    ct.manual_seed(0)
    w = nn.Parameter(ct.empty(*BIG))
    assert nn.init.uniform_(w, -2, 3) is w
    a = w.detach().numpy()
    assert a.min() >= -2 and a.max() < 3 and abs(a.mean() - 0.5) < 0.02
    nn.init.normal_(w, mean=1.5, std=0.25)
    assert abs(float(w.mean()) - 1.5) < 0.005 and abs(_std(w) - 0.25) < 0.005
    nn.init.constant_(w, 0.3)
    assert np.all(w.detach().numpy() == np.float32(0.3))
    nn.init.zeros_(w)
    assert not w.detach().numpy().any()
    nn.init.ones_(w)
    assert np.all(w.detach().numpy() == 1)
    # in place, no history: the parameter stays a leaf that requires grad
    assert w.is_leaf and w.requires_grad and w.grad_fn is None and w.dtype == ct.float32


@pytest.mark.parametrize("gain", [1.0, nn.init.calculate_gain("relu"), 0.5])
def test_xavier(gain):
    ct.manual_seed(1)
    w = ct.empty(*BIG)
    std = gain * math.sqrt(2 / (400 + 500))
    nn.init.xavier_uniform_(w, gain=gain)
    bound = math.sqrt(3) * std
    assert np.abs(w.numpy()).max() <= bound * (1 + 1e-6)
    assert np.abs(w.numpy()).max() > 0.99 * bound
    assert abs(_std(w) / std - 1) < 0.01
    nn.init.xavier_normal_(w, gain=gain)
    assert abs(_std(w) / std - 1) < 0.01 and abs(float(w.mean())) < 0.01 * std * 10


@pytest.mark.parametrize("a, mode, nonlinearity", [
    (0, "fan_in", "leaky_relu"), (math.sqrt(5), "fan_in", "leaky_relu"), (0, "fan_out", "relu"),
    (0.2, "fan_out", "leaky_relu"), (0, "fan_in", "tanh"), (0, "fan_in", "linear")])
def test_kaiming(a, mode, nonlinearity):
    ct.manual_seed(2)
    w = ct.empty(50, 40, 3, 3)  # fan_in 360, fan_out 450
    fan = 360 if mode == "fan_in" else 450
    std = tt.nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    nn.init.kaiming_uniform_(w, a=a, mode=mode, nonlinearity=nonlinearity)
    bound = math.sqrt(3) * std
    assert np.abs(w.numpy()).max() <= bound * (1 + 1e-6)
    assert abs(_std(w) / std - 1) < 0.015
    nn.init.kaiming_normal_(w, a=a, mode=mode, nonlinearity=nonlinearity)
    assert abs(_std(w) / std - 1) < 0.015


def test_init_errors():
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        nn.init.kaiming_uniform_(ct.empty(3, 4), mode="fan_avg")
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        nn.init.kaiming_normal_(ct.empty(3, 4), nonlinearity="gelu")
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init.xavier_uniform_(ct.empty(5))
    with pytest.raises(TypeError, match="xavier_normal_: expected a Tensor"):
        nn.init.xavier_normal_(np.zeros((3, 3)))
    with pytest.warns(UserWarning, match="zero-element"):
        nn.init.kaiming_uniform_(ct.empty(0, 3))


def test_linear_initialization_as_pytorch():
    ct.manual_seed(5)
    layer = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for p in (layer.weight, layer.bias):
        a = p.detach().numpy()
        assert np.abs(a).max() <= bound and np.abs(a).max() > 0.95 * bound
    assert abs(_std(layer.weight) / (bound / math.sqrt(3)) - 1) < 0.02
    assert layer.weight.shape == (300, 400) and layer.bias.shape == (300,)
    assert nn.Linear(3, 2, bias=False).bias is None


# ------------------------------------------------------------------------------- modules


def test_linear_repr_and_layer_shapes():
    assert repr(nn.Linear(400, 120)) == "Linear(in_features=400, out_features=120, bias=True)"
    assert repr(nn.Linear(4, 2, bias=False)) == "Linear(in_features=4, out_features=2, bias=False)"
    assert nn.Linear(4, 2)(ct.ones(3, 5, 4)).shape == (3, 5, 2)
    assert nn.Linear(4, 2)(ct.ones(4)).shape == (2,)
    assert nn.Flatten()(ct.ones(2, 3, 4, 5)).shape == (2, 60)
    assert nn.Flatten(0, -1)(ct.ones(2, 3)).shape == (6,)
    assert nn.Identity(54, unused="x")(ct.ones(2)).shape == (2,)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU())
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        return self.head(self.body(x))


def test_apply_visits_children_first_and_returns_self():
    net = _Net()
    seen = []
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Linear", "BatchNorm1d", "ReLU", "Sequential", "Linear", "_Net"]

    def init_weights(m):
        if type(m) is nn.Linear:
            nn.init.zeros_(m.weight)

    net.apply(init_weights)
    assert not net.head.weight.detach().numpy().any()
    assert not net.body[0].weight.detach().numpy().any()


def test_named_modules_and_duplicates():
    shared = nn.Linear(2, 2)
    net = nn.Sequential(shared, nn.ReLU(), shared)
    assert [name for name, _ in net.named_modules()] == ["", "0", "1"]
    assert [n for n, _ in net.named_modules(remove_duplicate=False)] == ["", "0", "1", "2"]
    assert [n for n, _ in _Net().named_modules(prefix="net")] == [
        "net", "net.body", "net.body.0", "net.body.1", "net.body.2", "net.head"]


def test_module_to_dtype_keeps_parameter_objects():
    net = _Net()
    params = list(net.parameters())
    net(ct.randn(5, 4)).sum().backward()
    assert net.to(ct.float64) is net
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    assert all(p.dtype == ct.float64 and p.grad.dtype == ct.float64 for p in params)
    assert net.body[1].running_mean.dtype == ct.float64
    assert net.body[1].num_batches_tracked.dtype == ct.int64  # integer buffers stay
    out = net(ct.randn(5, 4, dtype=ct.float64))
    assert out.dtype == ct.float64
    # a plain SGD step through the same objects still updates the module
    with ct.no_grad():
        for p in params:
            p -= 0.1 * p.grad
    assert net.float() is net and net.head.weight.dtype == ct.float32
    assert net.double().head.bias.dtype == ct.float64
    assert net.to(ct.ones(1, dtype=ct.float32)).head.bias.dtype == ct.float32


def test_module_to_device():
    net = _Net()
    assert net.to("cpu") is net and net.to(ct.device("cpu")) is net
    assert net.to(device="cpu", dtype=ct.float64).head.weight.dtype == ct.float64
    assert net.to(ct.device("cpu"), ct.float32).head.weight.dtype == ct.float32
    with pytest.raises(RuntimeError, match="_Net.to\\('cuda'\\).*CUDA"):
        net.to("cuda")
    with pytest.raises(RuntimeError, match="cuda:0"):
        net.to(ct.device("cuda:0"))
    with pytest.raises(TypeError, match="floating point.*int64"):
        net.to(ct.int64)
    p = next(iter(net.parameters()))
    assert p.device == ct.device("cpu") and str(p.device) == "cpu"
    assert p.device.type == "cpu"


def test_add_module_and_register_buffer():
    m = nn.Module()
    m.add_module("layer", nn.Linear(2, 2))
    assert dict(m.named_children())["layer"] is m.layer
    with pytest.raises(TypeError, match="is not a Module subclass"):
        m.add_module("bad", 3)
    with pytest.raises(KeyError, match="contain.*got: a.b"):
        m.add_module("a.b", nn.ReLU())
    with pytest.raises(KeyError, match="already exists"):
        m.add_module("training", nn.ReLU())
    m.register_buffer("steps", ct.tensor(0))
    m.register_buffer("scratch", ct.zeros(3), persistent=False)
    assert sorted(dict(m.named_buffers())) == ["scratch", "steps"]
    assert "scratch" not in m.state_dict() and "steps" in m.state_dict()
    with pytest.raises(TypeError, match="buffer 'x'"):
        m.register_buffer("x", [1, 2])
    with pytest.raises(KeyError, match="attribute 'layer' already exists"):
        m.register_buffer("layer", ct.zeros(1))
    # assigning a tensor to a buffer's name keeps it a buffer (d2l's BatchNorm does this)
    m.steps = ct.tensor(5)
    assert dict(m.named_buffers())["steps"].item() == 5
    with pytest.raises(TypeError, match="as parameter 'weight'"):
        m.layer.weight = ct.zeros(2, 2)


def test_state_dict_round_trip_with_batch_norm():
    a, b = _Net(), _Net()
    a(ct.randn(6, 4))
    b.load_state_dict(a.state_dict())
    assert b.body[1].running_mean.equal(a.body[1].running_mean)
    assert b.body[1].num_batches_tracked.item() == 1


# --------------------------------------------------------------------------- batch norm


def test_batch_norm_running_stats_by_hand():
    bn = nn.BatchNorm1d(2, momentum=None)
    xs = [ct.tensor([[1.0, 2.0], [3.0, 6.0]]), ct.tensor([[0.0, 0.0], [2.0, 4.0]])]
    for x in xs:
        bn(x)
    # cumulative average of the batch means and of the unbiased batch variances
    np.testing.assert_allclose(bn.running_mean.numpy(), [1.5, 3.0])
    np.testing.assert_allclose(bn.running_var.numpy(), [2.0, 8.0])
    assert bn.num_batches_tracked.item() == 2
    bn.eval()
    out = bn(ct.tensor([[1.5, 3.0]]))  # one sample is fine in eval mode
    np.testing.assert_allclose(out.detach().numpy(), [[0.0, 0.0]], atol=1e-6)


def test_batch_norm_without_running_stats_uses_batch_stats_in_eval():
    bn = nn.BatchNorm2d(3, track_running_stats=False).eval()
    assert bn.running_mean is None and "running_mean" not in bn.state_dict()
    out = bn(ct.randn(4, 3, 2, 2) * 5 + 2)
    np.testing.assert_allclose(out.detach().numpy().mean(axis=(0, 2, 3)), 0, atol=1e-5)


# ------------------------------------------------------------------------ error messages


def test_linear_wrong_input_shape_names_layer_and_shapes():
    with pytest.raises(RuntimeError) as err:
        nn.Linear(400, 120)(ct.ones(8, 256))
    message = str(err.value)
    assert "Linear" in message and "in_features=400" in message and "(8, 256)" in message
    with pytest.raises(RuntimeError, match=r"weight of shape \(120, 400\) expects 400"):
        F.linear(ct.ones(8, 256), ct.ones(120, 400))
    with pytest.raises(RuntimeError, match="bias of shape"):
        F.linear(ct.ones(8, 4), ct.ones(3, 4), ct.ones(4))
    with pytest.raises(TypeError, match="input must be a Tensor"):
        F.linear(np.ones((2, 4)), ct.ones(3, 4))


def test_cross_entropy_label_out_of_range_names_label_and_classes():
    logits = ct.randn(4, 10)
    with pytest.raises(IndexError) as err:
        F.cross_entropy(logits, ct.tensor([1, 2, 10, 3]))
    assert "Target 10" in str(err.value) and "10 classes" in str(err.value)
    with pytest.raises(IndexError, match="Target -1.*3 classes"):
        nn.NLLLoss()(ct.randn(2, 3), ct.tensor([0, -1]))
    with pytest.raises(IndexError, match="Target 5"):
        nn.CrossEntropyLoss()(ct.randn(2, 5, 3), ct.tensor([[0, 1, 2], [3, 4, 5]]))


def test_loss_argument_errors():
    x = ct.randn(3, 4)
    with pytest.raises(ValueError, match="batch_size \\(3\\).*batch_size \\(2\\)"):
        F.cross_entropy(x, ct.tensor([0, 1]))
    with pytest.raises(RuntimeError, match="int32"):
        F.cross_entropy(x, ct.tensor([0, 1, 2], dtype=ct.int32))
    with pytest.raises(ValueError, match="avg is not a valid value for reduction"):
        nn.CrossEntropyLoss(reduction="avg")
    with pytest.raises(RuntimeError, match="label_smoothing"):
        F.cross_entropy(x, ct.tensor([0, 1, 2]), label_smoothing=1.1)  # torch takes <= 0 as 0
    with pytest.raises(RuntimeError, match="weight should have one value for each of the 4"):
        F.cross_entropy(x, ct.tensor([0, 1, 2]), weight=ct.ones(3))
    with pytest.raises(RuntimeError, match="floating point input"):
        F.cross_entropy(ct.tensor([[1, 2]]), ct.tensor([0]))


def test_batch_norm_errors_name_the_layer_and_shape():
    with pytest.raises(RuntimeError) as err:
        nn.BatchNorm2d(3)(ct.ones(8, 4, 5, 5))
    message = str(err.value)
    assert "BatchNorm2d" in message and "num_features=3" in message and "(8, 4, 5, 5)" in message
    with pytest.raises(ValueError, match="BatchNorm2d: expected 4D input .*got 3D input"):
        nn.BatchNorm2d(3)(ct.ones(3, 5, 5))
    with pytest.raises(ValueError, match="BatchNorm1d: expected 2D or 3D input"):
        nn.BatchNorm1d(3)(ct.ones(2, 3, 4, 4))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(ct.ones(1, 3))
    with pytest.raises(RuntimeError, match="running_mean should contain 3 elements"):
        F.batch_norm(ct.ones(2, 3), ct.zeros(2), ct.ones(2))
    with pytest.raises(RuntimeError, match="evaluation mode"):
        F.batch_norm(ct.ones(2, 3), None, None, training=False)


def test_softmax_errors():
    with pytest.raises(IndexError, match="Dimension out of range"):
        F.softmax(ct.ones(2, 3), dim=2)
    with pytest.raises(RuntimeError, match="floating point"):
        F.log_softmax(ct.tensor([1, 2]), dim=0)


# --------------------------------------------------------------------- numerics, activations


def test_softmax_is_stable_for_large_inputs():
    x = ct.tensor([[1000.0, 0.0, -1000.0], [-1e4, -1e4, -1e4]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p, logp = F.softmax(x, dim=1), F.log_softmax(x, dim=1)
        loss = F.cross_entropy(x, ct.tensor([2, 0]))
    assert np.isfinite(logp.numpy()).all() and np.isfinite(loss.item())
    np.testing.assert_allclose(logp.numpy()[0], [0.0, -1000.0, -2000.0])
    np.testing.assert_allclose(p.numpy().sum(axis=1), 1, rtol=1e-6)
    assert loss.item() == pytest.approx((2000 + math.log(3)) / 2, rel=1e-6)


def test_relu_inplace():
    x = ct.randn(10, requires_grad=True)
    y = x * 1
    out = nn.ReLU(inplace=True)(y)
    assert out is y and (y.detach().numpy() >= 0).all()
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), (x.detach().numpy() > 0).astype(np.float32))
    assert repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)"


def test_functional_names_extend_core():
    import corrnet.functional as core

    for name in core.__all__ + ["linear", "softmax", "log_softmax", "dropout", "batch_norm",
                                "cross_entropy", "nll_loss", "mse_loss"]:
        assert name in F.__all__ and callable(getattr(F, name))
    assert len(F.__all__) == len(set(F.__all__))


# --------------------------------------------------------------------------- tensor API


@pytest.mark.parametrize("call", [
    lambda M, x: x.sum(axis=1), lambda M, x: x.sum(axis=0, keepdims=True),
    lambda M, x: x.mean(axis=(0, 2)), lambda M, x: x.argmax(axis=1),
    lambda M, x: x.argmin(axis=-1, keepdims=True), lambda M, x: x.max(axis=1).values,
    lambda M, x: x.min(axis=2, keepdims=True).indices, lambda M, x: x.amax(axis=1),
    lambda M, x: x.std(axis=1), lambda M, x: x.var(axis=0), lambda M, x: x.prod(axis=1),
    lambda M, x: (x > 0).all(axis=1), lambda M, x: (x > 0).any(axis=0),
    lambda M, x: x[:, :1].squeeze(axis=1), lambda M, x: x.unsqueeze(axis=0),
    lambda M, x: x.softmax(axis=1), lambda M, x: M.sum(x, axis=1), lambda M, x: M.max(x, axis=0)[0],
    lambda M, x: M.argmax(x, axis=2), lambda M, x: M.stack([x, x], axis=1),
    lambda M, x: M.cat([x, x], axis=2),
])
def test_numpy_style_axis_matches_torch(call):
    x = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
    ours, theirs = call(ct, ct.tensor(x)), call(tt, tt.tensor(x))
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert str(ours.dtype) == str(theirs.dtype)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)


def test_axis_and_dim_together_refused():
    with pytest.raises(TypeError, match="'dim' and its alias 'axis'"):
        ct.ones(2, 3).sum(dim=0, axis=1)


def test_tensor_type_numel_float_device():
    x = ct.tensor([[1.5, 2.5], [3.0, 4.0]])
    assert x.type() == "torch.FloatTensor"
    assert x.type(ct.int64).dtype == ct.int64
    assert x.type("torch.DoubleTensor").dtype == ct.float64
    assert x.type("torch.LongTensor").tolist() == [[1, 2], [3, 4]]
    y = ct.tensor([1, 1])
    # the accuracy idiom of the book: compare after a cast, count, convert to float
    cmp = x.argmax(axis=1).type(y.dtype) == y
    assert float(cmp.type(y.dtype).sum()) == 2.0 and x.numel() == 4 and ct.numel(x) == 4
    assert float(x.sum()) == 11.0 and isinstance(float(x[0, 0]), float)
    assert x.device == ct.device("cpu") and x.to(ct.device("cpu")) is x
    assert nn.Linear(2, 2).weight.device == ct.device("cpu")


def test_softmax_regression_trains():
    """A few epochs of the book's softmax regression: the loss goes down."""
    ct.manual_seed(0)
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((3, 8)) * 3
    labels = rng.integers(0, 3, 300)
    X = ct.tensor((centers[labels] + rng.standard_normal((300, 8))).astype(np.float32))
    y = ct.tensor(labels)
    net = nn.Sequential(nn.Flatten(), nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(),
                        nn.Dropout(0.1), nn.Linear(16, 3))
    net.apply(lambda m: nn.init.normal_(m.weight, std=0.1) if type(m) is nn.Linear else None)
    loss = nn.CrossEntropyLoss(reduction="none")
    losses = []
    for _ in range(30):
        l = loss(net(X), y)
        net.zero_grad()
        l.mean().backward()
        with ct.no_grad():
            for p in net.parameters():
                p -= 0.5 * p.grad
        losses.append(float(l.mean()))
    net.eval()
    accuracy = float((net(X).argmax(axis=1).type(y.dtype) == y).type(y.dtype).sum()) / y.numel()
    assert losses[-1] < 0.3 * losses[0] and accuracy > 0.9


# ------------------------------------------------------- finite differences (float64 backward)


@pytest.mark.parametrize("op, shapes", [
    (lambda x, w, b: F.linear(x, w, b), [(3, 2, 4), (5, 4), (5,)]),
    (lambda x: F.log_softmax(x, dim=1), [(3, 4, 2)]),
    (lambda x: F.softmax(x, dim=0), [(4, 3)]),
    (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [(4, 3, 2, 2), (3,), (3,)]),
    (lambda x, w, b: F.batch_norm(x, ct.zeros(3, dtype=ct.float64) + 0.2,
                                  ct.ones(3, dtype=ct.float64) * 1.5, w, b), [(4, 3), (3,), (3,)]),
    (lambda x: F.cross_entropy(x, ct.tensor([0, 2, 1, 2]), label_smoothing=0.2,
                               weight=ct.tensor([1.0, 2.0, 0.5], dtype=ct.float64)), [(4, 3)]),
    (lambda x: F.cross_entropy(x, ct.tensor([[0, 2], [1, -100]]), reduction="none"),
     [(2, 3, 2)]),
    (lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1), [(4, 3), (4, 3)]),
    (lambda x: F.nll_loss(x, ct.tensor([1, 0, 2]), reduction="sum"), [(3, 3)]),
    (lambda x, y: F.mse_loss(x, y), [(3, 4), (3, 4)]),
])
def test_backward_matches_finite_differences(op, shapes):
    from test_gradcheck import gradcheck

    rng = np.random.default_rng(7)
    gradcheck(op, *(rng.uniform(0.5, 2, s) for s in shapes))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduce", ["sum", "scaled sum", "mean", "channel sums"])
def test_issue13_conv_bias_gradient_of_a_broadcast_gradient_as_torch(dtype, reduce):
    """A bias gradient from a broadcast output gradient (zero strides: a sum, a scaled sum, a
    mean, sums of whole channels) is summed over the distinct numbers times their copies
    (kernels.conv.conv2d_grad_bias): the same as torch's."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 9, 7)).astype(dtype)
    w = rng.standard_normal((6, 2, 3, 3)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    grads = []
    for lib in (ct, tt):
        functional = F if lib is ct else tt.nn.functional
        bias = lib.tensor(b, requires_grad=True)
        out = functional.conv2d(lib.tensor(x), lib.tensor(w), bias, padding=1, groups=2)
        if reduce == "sum":
            loss = out.sum()
        elif reduce == "scaled sum":
            loss = (out.sum() * 0.1)
        elif reduce == "mean":
            loss = out.mean()
        else:
            loss = (out.sum(dim=(0, 2, 3)) * lib.arange(6, dtype=out.dtype)).sum()
        loss.backward()
        grads.append(bias.grad.numpy())
    assert grads[0].dtype == grads[1].dtype
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6 if dtype == np.float32 else 1e-12)
