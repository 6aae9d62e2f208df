"""Issue 16: how `apply` and `predict` send a network to Dask's workers (`ShippedNetwork`).
The rebuilt network computes what the original does (compared with PyTorch's forward on the
same weights), keeps tied tensors tied, is made once per thread, and the same weights give
the same graph key; a network that cannot travel is refused with the caller named."""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest
import torch

import corrnet
from corrnet import nn

pytest.importorskip("dask.array")
shipping = pytest.importorskip("corrnet.dask.shipping")


def small_net():
    corrnet.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                        nn.Conv2d(3, 3, 3))
    net[1].running_mean.copy_(corrnet.tensor([0.1, -0.2, 0.3]))
    net[1].running_var.copy_(corrnet.tensor([1.5, 0.5, 2.0]))
    return net


def torch_forward(net, x):
    """The same network in PyTorch, from corrnet's state dict: the oracle."""
    state = {name: torch.from_numpy(value.numpy().copy())
             for name, value in net.state_dict().items()}
    twin = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.BatchNorm2d(3),
                               torch.nn.ReLU(), torch.nn.Conv2d(3, 3, 3))
    twin.load_state_dict(state)
    with torch.no_grad():
        return twin.eval()(torch.from_numpy(x)).numpy()


def test_rebuilt_network_travels_through_pickle_and_matches_torch():
    net = small_net()
    shipped = pickle.loads(pickle.dumps(shipping.ShippedNetwork("test", net)))
    rebuilt = shipped.network()
    assert not rebuilt.training and rebuilt is not net
    x = np.random.default_rng(0).standard_normal((2, 2, 9, 7)).astype(np.float32)
    with corrnet.no_grad():
        out = rebuilt(corrnet.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, torch_forward(net, x), rtol=1e-5, atol=1e-6)
    assert isinstance(rebuilt[0].weight, nn.Parameter) and rebuilt[0].weight.requires_grad
    assert not isinstance(rebuilt[1].running_mean, nn.Parameter)


def test_dtype_cast_and_tied_weights_stay_tied():
    first = nn.Linear(4, 4)
    net = nn.Sequential(first, nn.ReLU(), nn.Linear(4, 4))
    net[2].weight = first.weight                         # tied, as in a shared layer
    rebuilt = shipping.ShippedNetwork("test", net, dtype=corrnet.float64).network()
    assert rebuilt[0].weight is rebuilt[2].weight
    assert rebuilt[0].weight.dtype == corrnet.float64
    np.testing.assert_array_equal(rebuilt[0].weight.detach().numpy(),
                                  first.weight.detach().numpy().astype(np.float64))


def test_once_per_thread_and_content_keyed():
    net = small_net()
    shipped = shipping.ShippedNetwork("test", net)
    assert shipped.network() is shipped.network()
    other = []
    thread = threading.Thread(target=lambda: other.append(shipped.network()))
    thread.start()
    thread.join()
    assert other[0] is not shipped.network()             # each thread its own module
    from dask.base import tokenize

    assert tokenize(shipping.ShippedNetwork("test", net)) == tokenize(shipped)
    with corrnet.no_grad():
        net[0].weight.add_(1)
    assert tokenize(shipping.ShippedNetwork("test", net)) != tokenize(shipped)


def test_a_network_that_cannot_travel_names_the_caller():
    net = nn.Sequential(nn.ReLU())
    net.lock = threading.Lock()
    with pytest.raises(TypeError, match=r"^somewhere: the network cannot be sent to Dask's "
                                        r"workers .*lock"):
        shipping.ShippedNetwork("somewhere", net)
