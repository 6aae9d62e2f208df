"""Issue 12, item 1: lazy modules against PyTorch's.

Covers `nn.LazyLinear`, `LazyConv1d`, `LazyConv2d`, `LazyConvTranspose1d/2d`,
`LazyBatchNorm1d/2d` and `nn.parameter.UninitializedParameter` / `UninitializedBuffer`: reprs
before and after the first forward (the module becomes the ordinary layer), the errors an
uninitialized parameter raises, inferred sizes (also with groups), forward values and gradients
once materialized (weights copied into the torch layer), an optimizer built before the first
forward, `load_state_dict` into a module that has not run, `state_dict()` / `parameters()` of
an unrun module, the initialization bounds, and the d2l 1.0 pattern ``net(X)`` then
``net.apply(init_cnn)``.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import corrnet as cn
from corrnet import nn

from torch_compare import assert_same, numpy_of

# (class name, constructor args, kwargs, input shape): one row per kind of lazy layer
CASES = [
    ("LazyLinear", (5,), {}, (3, 4)),
    ("LazyLinear", (2,), {"bias": False}, (2, 3, 6)),
    ("LazyConv1d", (4, 3), {"padding": 1}, (2, 3, 7)),
    ("LazyConv2d", (6, 3), {"stride": 2, "groups": 2}, (2, 4, 7, 6)),
    ("LazyConv2d", (3, (3, 2)), {"padding": "same", "bias": False}, (3, 5, 5)),
    ("LazyConvTranspose1d", (2, 3), {"stride": 2}, (1, 3, 5)),
    ("LazyConvTranspose2d", (4, 4), {"stride": 2, "padding": 1, "groups": 2}, (2, 2, 3, 3)),
    ("LazyBatchNorm1d", (), {}, (4, 3)),
    ("LazyBatchNorm1d", (), {"affine": False, "momentum": None}, (4, 3, 5)),
    ("LazyBatchNorm2d", (), {"eps": 1e-3}, (3, 2, 4, 4)),
    ("LazyBatchNorm2d", (), {"track_running_stats": False, "bias": False}, (2, 3, 2, 2)),
]
IDS = [f"{name}-{i}" for i, (name, *_rest) in enumerate(CASES)]


def _pair(name, args, kwargs):
    return getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)


def _copy_into_torch(module, torch_module) -> None:
    """Give the (materialized) torch module corrnet's parameter and buffer values."""
    with torch.no_grad():
        for key, value in module.state_dict().items():
            target = torch_module.state_dict()[key]
            target.copy_(torch.from_numpy(numpy_of(value)))


@pytest.mark.parametrize(("name", "args", "kwargs", "shape"), CASES, ids=IDS)
def test_issue12_lazy_repr_type_and_state_match_torch(name, args, kwargs, shape):
    module, reference = _pair(name, args, kwargs)
    assert repr(module) == repr(reference)
    assert [repr(p) for p in module.parameters()] == [repr(p) for p in reference.parameters()]
    unrun = module.state_dict()
    assert list(unrun) == list(reference.state_dict())
    assert [repr(v) for k, v in unrun.items() if k != "num_batches_tracked"] == [
        repr(v) for k, v in reference.state_dict().items() if k != "num_batches_tracked"]
    assert module.has_uninitialized_params() == reference.has_uninitialized_params()

    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    module(cn.tensor(x))
    reference(torch.tensor(x))
    assert repr(module) == repr(reference)
    assert type(module).__name__ == type(reference).__name__ == name.removeprefix("Lazy")
    assert type(module) is getattr(nn, name.removeprefix("Lazy"))
    assert not hasattr(module, "has_uninitialized_params")  # an ordinary layer now, as torch's
    assert not hasattr(reference, "has_uninitialized_params")
    assert all(type(p) is nn.Parameter for p in module.parameters())
    assert [(k, tuple(v.shape)) for k, v in module.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in reference.state_dict().items()]


@pytest.mark.parametrize(("name", "args", "kwargs", "shape"), CASES, ids=IDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_issue12_lazy_forward_and_gradients_match_torch(name, args, kwargs, shape, dtype):
    module, reference = _pair(name, args, kwargs)
    if dtype == "float64":  # before the first forward: the parameters materialize in float64
        module.double()
        reference.double()
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(dtype)
    module(cn.tensor(x))  # the dry run
    reference(torch.tensor(x))
    _copy_into_torch(module, reference)
    for tensor in [*module.parameters(), module.__dict__["_buffers"].get("running_mean")]:
        assert tensor is None or str(tensor.dtype) == f"torch.{dtype}"

    x = rng.standard_normal(shape).astype(dtype)
    xc = cn.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    out, expected = module(xc), reference(xt)
    assert_same(out, expected, f"{name} forward")
    weights = rng.standard_normal(tuple(expected.shape)).astype(dtype)
    (out * cn.tensor(weights)).sum().backward()
    (expected * torch.tensor(weights)).sum().backward()
    assert_same(xc.grad, xt.grad, f"{name} input gradient")
    for (key, p), (_, q) in zip(module.named_parameters(), reference.named_parameters(),
                                strict=True):
        assert_same(p.grad, q.grad, f"{name} {key}.grad")
    for (key, b), (_, c) in zip(module.named_buffers(), reference.named_buffers(), strict=True):
        assert_same(b, c, f"{name} buffer {key}")


@settings(max_examples=25, deadline=None)
@given(out_channels=st.integers(1, 4), groups=st.integers(1, 3), in_per_group=st.integers(1, 3),
       kernel=st.integers(1, 3), stride=st.integers(1, 2), padding=st.integers(0, 2),
       transposed=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_issue12_lazy_conv_infers_in_channels_like_torch(out_channels, groups, in_per_group,
                                                         kernel, stride, padding, transposed,
                                                         seed):
    name = "LazyConvTranspose2d" if transposed else "LazyConv2d"
    args = (out_channels * groups, kernel)
    kwargs = {"stride": stride, "padding": min(padding, kernel - 1) if transposed else padding,
              "groups": groups}
    module, reference = _pair(name, args, kwargs)
    x = np.random.default_rng(seed).standard_normal((2, in_per_group * groups, 5, 4))
    x = x.astype(np.float32)
    out, expected = module(cn.tensor(x)), reference(torch.tensor(x))
    assert repr(module) == repr(reference)
    assert module.in_channels == reference.in_channels == in_per_group * groups
    assert tuple(module.weight.shape) == tuple(reference.weight.shape)
    _copy_into_torch(module, reference)
    assert_same(module(cn.tensor(x)), reference(torch.tensor(x)), f"{name} after the dry run")
    assert tuple(out.shape) == tuple(expected.shape)


def test_issue12_lazy_conv_bad_inputs_raise_torchs_errors():
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.LazyConv2d(6, 3, groups=4)(cn.ones(1, 6, 5, 5))
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        torch.nn.LazyConv2d(6, 3, groups=4)(torch.ones(1, 6, 5, 5))
    message = r"Expected 3D \(unbatched\) or 4D \(batched\) input to LazyConv2d"
    with pytest.raises(RuntimeError, match=message):
        nn.LazyConv2d(6, 3)(cn.ones(6, 5))
    with pytest.raises(RuntimeError, match=message):
        torch.nn.LazyConv2d(6, 3)(torch.ones(6, 5))


def test_issue12_uninitialized_parameter_refuses_shape_dependent_use_as_torch():
    ours, theirs = nn.LazyLinear(3).weight, torch.nn.LazyLinear(3).weight
    assert repr(ours) == repr(theirs) == "<UninitializedParameter>"
    assert isinstance(ours, nn.Parameter) and isinstance(ours, nn.parameter.UninitializedParameter)
    assert nn.parameter.is_lazy(ours)
    assert ours.requires_grad and ours.is_leaf and ours.grad is None
    assert str(ours.dtype) == str(theirs.dtype)
    assert tuple(ours.size()) == tuple(theirs.size())  # PyTorch allows size(): (0,)
    for uses in (lambda w: w.shape,):
        with pytest.raises(RuntimeError) as got:
            uses(ours)
        with pytest.raises(RuntimeError) as expected:
            uses(theirs)
        assert str(got.value) == str(expected.value)
    for uses in (lambda w: w.sum(), lambda w: w + 1, lambda w: w.numel(), lambda w: w.dim(),
                 lambda w: w @ w, lambda w: w.mean(), lambda w: w.view(-1)):
        with pytest.raises(ValueError, match="Attempted to use an uninitialized parameter"):
            uses(ours)
        with pytest.raises(ValueError, match="Attempted to use an uninitialized parameter"):
            uses(theirs)
    with pytest.raises(ValueError, match="uninitialized parameter"):
        cn.nn.functional.linear(cn.ones(2, 3), ours)
    buffer = nn.LazyBatchNorm2d().running_mean
    assert repr(buffer) == "<UninitializedBuffer>" and not buffer.requires_grad
    assert type(buffer) is nn.UninitializedBuffer


def test_issue12_uninitialized_parameter_materializes_in_place():
    param = nn.UninitializedParameter(dtype=cn.float64)
    same = param
    param.materialize((2, 3))
    assert param is same and type(param) is nn.Parameter
    assert tuple(param.shape) == (2, 3) and param.dtype == cn.float64 and param.requires_grad
    buffer = nn.UninitializedBuffer()
    buffer.materialize(4, dtype=cn.float64)
    assert type(buffer) is cn.Tensor and tuple(buffer.shape) == (4,)
    assert buffer.dtype == cn.float64


def test_issue12_lazy_optimizer_built_before_first_forward_updates_the_parameters():
    rng = np.random.default_rng(2)
    net = nn.Sequential(nn.LazyConv2d(3, 3), nn.LazyBatchNorm2d(), nn.ReLU(), nn.Flatten(),
                        nn.LazyLinear(2))
    params = list(net.parameters())
    assert all(nn.parameter.is_lazy(p) for p in params)
    optimizer = cn.optim.SGD(net.parameters(), lr=0.5)
    x = cn.tensor(rng.standard_normal((4, 2, 5, 5)).astype(np.float32))
    loss = (net(x) ** 2).mean()
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    before = [numpy_of(p) for p in params]
    loss.backward()
    optimizer.step()
    for p, old in zip(params, before, strict=True):
        assert type(p) is nn.Parameter
        np.testing.assert_allclose(numpy_of(p), old - 0.5 * numpy_of(p.grad), rtol=1e-6)
    assert any(np.any(numpy_of(p) != old) for p, old in zip(params, before, strict=True))

    # PyTorch does the same: the optimizer holds the objects that become Parameters
    tnet = torch.nn.Sequential(torch.nn.LazyLinear(2))
    tparams = list(tnet.parameters())
    torch.optim.SGD(tnet.parameters(), lr=0.5)
    tnet(torch.ones(1, 3))
    assert [id(p) for p in tnet.parameters()] == [id(p) for p in tparams]


def _lenet(lib):
    return lib.nn.Sequential(
        lib.nn.LazyConv2d(6, kernel_size=5, padding=2), lib.nn.LazyBatchNorm2d(),
        lib.nn.Sigmoid(), lib.nn.AvgPool2d(kernel_size=2, stride=2),
        lib.nn.Flatten(), lib.nn.LazyLinear(10))


def test_issue12_lazy_load_state_dict_into_an_unrun_module_materializes_it():
    rng = np.random.default_rng(3)
    reference = _lenet(torch)
    x = rng.standard_normal((2, 1, 8, 8)).astype(np.float32)
    reference.train()(torch.tensor(x))  # materialize, move the running statistics
    state = {k: cn.tensor(v.numpy()) for k, v in reference.state_dict().items()}

    net = _lenet(cn)
    assert repr(net.load_state_dict(state)) == "<All keys matched successfully>"
    for key, value in net.state_dict().items():
        assert_same(value, reference.state_dict()[key], f"loaded {key}")
    assert type(net[0]).__name__ == "LazyConv2d"  # as PyTorch: it becomes Conv2d on forward
    net.eval()
    reference.eval()
    x = rng.standard_normal((3, 1, 8, 8)).astype(np.float32)
    assert_same(net(cn.tensor(x)), reference(torch.tensor(x)), "forward after loading")
    assert [type(m).__name__ for m in net] == [type(m).__name__ for m in reference]
    assert net[0].in_channels == 1 and net[1].num_features == 6 and net[5].in_features == 96
    with pytest.raises(RuntimeError, match="size mismatch for 5.weight"):
        net.load_state_dict({**state, "5.weight": cn.zeros(10, 3)})


def test_issue12_loading_an_unrun_lazy_state_into_an_ordinary_module_raises_as_torch():
    with pytest.raises(RuntimeError, match="Can't access the shape of an uninitialized"):
        nn.Linear(3, 4).load_state_dict(nn.LazyLinear(4).state_dict())
    with pytest.raises(RuntimeError, match="Can't access the shape of an uninitialized"):
        torch.nn.Linear(3, 4).load_state_dict(torch.nn.LazyLinear(4).state_dict())


def test_issue12_lazy_initialization_is_the_ordinary_layers():
    """The RNGs differ from torch's: compare the documented bounds and the spread."""
    cn.manual_seed(0)
    conv = nn.LazyConv2d(64, 3)
    conv(cn.ones(1, 8, 5, 5))
    bound = 1 / np.sqrt(8 * 9)
    weight, bias = numpy_of(conv.weight), numpy_of(conv.bias)
    assert np.abs(weight).max() <= bound and np.abs(weight).max() > 0.95 * bound
    assert np.abs(bias).max() <= bound and weight.std() == pytest.approx(bound / np.sqrt(3),
                                                                          rel=0.05)
    linear = nn.LazyLinear(200)
    linear(cn.ones(2, 50))
    assert np.abs(numpy_of(linear.weight)).max() <= 1 / np.sqrt(50)
    assert numpy_of(linear.weight).std() == pytest.approx(1 / np.sqrt(50 * 3), rel=0.05)
    norm = nn.LazyBatchNorm2d()
    norm.eval()(cn.ones(2, 3, 2, 2))
    for got, want in ((norm.weight, 1.0), (norm.bias, 0.0), (norm.running_mean, 0.0),
                      (norm.running_var, 1.0)):
        np.testing.assert_array_equal(numpy_of(got), np.full(3, want, np.float32))
    assert int(norm.num_batches_tracked) == 0


def test_issue12_lazy_d2l_init_cnn_pattern():
    """d2l 1.0: build from lazy layers, run a dummy batch, then ``net.apply(init_cnn)``."""
    calls = []

    def init_cnn(module):
        if type(module) == nn.Linear or type(module) == nn.Conv2d:  # noqa: E721 (the book's)
            nn.init.xavier_uniform_(module.weight)
            calls.append(type(module).__name__)

    net = nn.Sequential(nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
                        nn.AvgPool2d(kernel_size=2, stride=2), nn.LazyConv2d(16, kernel_size=5),
                        nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2), nn.Flatten(),
                        nn.LazyLinear(120), nn.Sigmoid(), nn.LazyLinear(84), nn.Sigmoid(),
                        nn.LazyLinear(10))
    net.apply(init_cnn)
    assert calls == []  # before the dry run they are not Conv2d / Linear yet
    net(cn.zeros(1, 1, 28, 28))
    net.apply(init_cnn)
    assert calls == ["Conv2d", "Conv2d", "Linear", "Linear", "Linear"]
    bound = np.sqrt(6 / (120 + 400))
    assert np.abs(numpy_of(net[7].weight)).max() <= bound
    assert tuple(net(cn.zeros(2, 1, 28, 28)).shape) == (2, 10)
    assert repr(net[7]) == "Linear(in_features=400, out_features=120, bias=True)"


def test_issue12_lazy_modules_copy_and_keep_their_dtype():
    unrun = nn.Sequential(nn.LazyLinear(3))
    twin = copy.deepcopy(unrun)
    assert twin[0].weight is not unrun[0].weight
    assert nn.parameter.is_lazy(twin[0].weight)
    twin(cn.ones(2, 4))
    assert twin[0].in_features == 4 and nn.parameter.is_lazy(unrun[0].weight)
    unrun(cn.ones(1, 7))
    assert unrun[0].in_features == 7
    half = nn.LazyLinear(2).to(cn.float64)
    half(cn.ones(1, 2, dtype=cn.float64))
    assert half.weight.dtype == cn.float64
    with pytest.raises(RuntimeError):  # dtype mismatch, as torch
        nn.LazyLinear(2)(cn.ones(1, 2, dtype=cn.float64))


@pytest.mark.parametrize("module_name", ["corrnet.nn.lazy", "corrnet.nn.parameter",
                                         "corrnet.nn.container", "corrnet.nn.module",
                                         "corrnet.utils.hooks", "corrnet.tensor"])
def test_issue12_docstring_examples_of_lazy_modules_hooks_and_containers(module_name):
    import doctest
    import importlib

    from corrnet.utils.hooks import RemovableHandle

    module = importlib.import_module(module_name)
    names = ("LazyModuleMixin", "Lazy", "Uninitialized", "ModuleList", "ModuleDict",
             "ParameterList", "ParameterDict", "register_", "RemovableHandle", "lazy")
    globs = {"corrnet": cn, "nn": nn, "np": np, "RemovableHandle": RemovableHandle}
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module, module_name, globs=globs)
             if t.examples and (module_name.endswith(("lazy", "hooks"))
                                or any(n in t.name for n in names))]
    assert tests
    for test in tests:
        cn.manual_seed(0)
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


@pytest.mark.parametrize(("lazy", "ordinary", "shape"), [
    (lambda: nn.LazyLinear(4), lambda: nn.Linear(5, 4), (2, 5)),
    (lambda: nn.LazyConv2d(6, 3, groups=3), lambda: nn.Conv2d(3, 6, 3, groups=3), (1, 3, 5, 5)),
    (lambda: nn.LazyConvTranspose1d(2, 3), lambda: nn.ConvTranspose1d(4, 2, 3), (1, 4, 5)),
    (lambda: nn.LazyBatchNorm1d(), lambda: nn.BatchNorm1d(3), (2, 3)),
])
def test_issue12_lazy_materialized_parameters_equal_the_ordinary_layers_with_the_same_seed(
        lazy, ordinary, shape):
    """The same draws as the ordinary layer's constructor, from the RNG state at the first
    forward (construction draws nothing)."""
    cn.manual_seed(11)
    expected = ordinary()
    module = lazy()
    cn.manual_seed(11)
    module(cn.ones(*shape))
    for (key, got), (_, want) in zip(module.named_parameters(), expected.named_parameters(),
                                     strict=True):
        np.testing.assert_array_equal(numpy_of(got), numpy_of(want), err_msg=key)
