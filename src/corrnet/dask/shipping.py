"""How a network travels to Dask's workers: `ShippedNetwork`, shared by `apply` and `predict`.

corrnet never pickles a tensor (pickle can run code on load, so corrnet writes no pickled
tensors to files), and a graph key that holds a whole module would hash and copy its weights
with every task. So a network travels as two things in one object: its module structure,
pickled with cloudpickle (a class defined in a script or a test travels too) with every
tensor replaced by a reference, and its tensors as plain NumPy arrays (a tensor shared by two
layers stays shared). Each worker thread rebuilds the module once from them, in eval mode:
the forward passes of one module from several threads at once are not promised safe.

>>> net = corrnet.nn.Sequential(corrnet.nn.Conv2d(1, 2, 3), corrnet.nn.ReLU())
>>> shipped = ShippedNetwork("example", net, dtype=corrnet.float64)
>>> rebuilt = shipped.network()
>>> rebuilt is not net, rebuilt[0].weight.dtype, rebuilt.training
(True, torch.float64, False)
>>> shipped.network() is rebuilt                    # once per thread
True
"""

from __future__ import annotations

import io
import pickle
import threading

import numpy as np

from .. import nn
from ..tensor import Tensor, from_numpy

__all__ = ["ShippedNetwork", "scattered"]


class ShippedNetwork:
    """`net`'s structure and tensors, as one picklable object for a Dask graph (see the
    module's docstring). Floating tensors are cast to `dtype` (None: kept); `device`: where
    the rebuilt network lives (None: the CPU). Its Dask token comes from its content, so the
    same network shipped twice is the same key. `op` names the caller in errors."""

    def __init__(self, op: str, net, dtype=None, device=None):
        import cloudpickle
        from dask.base import tokenize

        target = None if dtype is None else np.dtype(dtype.numpy)
        self.arrays, seen = [], {}

        def reference(obj):
            if not isinstance(obj, Tensor):
                return None
            if id(obj) not in seen:  # a tensor shared by two layers stays shared
                array = np.array(obj.detach().cpu().numpy(), copy=True)
                if target is not None and array.dtype.kind == "f":
                    array = array.astype(target)
                seen[id(obj)] = len(self.arrays)
                self.arrays.append((isinstance(obj, nn.Parameter), obj.requires_grad, array))
            return ("tensor", seen[id(obj)])

        buffer = io.BytesIO()
        pickler = cloudpickle.CloudPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.persistent_id = reference
        try:
            pickler.dump(net)
        except Exception as err:  # noqa: BLE001 - whatever fails to pickle, said plainly
            raise TypeError(f"{op}: the network cannot be sent to Dask's workers (its "
                            f"structure must pickle): {err}") from err
        self.structure, self.device = buffer.getvalue(), device
        self.token = tokenize(self.structure, str(device),
                              *[(p, g, a) for p, g, a in self.arrays])

    def __dask_tokenize__(self):  # the content's hash, made once
        return ("corrnet-shipped-network", self.token)

    def network(self):
        """The rebuilt network for this thread (made on its first call), in eval mode."""
        cache = _THREADS.__dict__.setdefault("networks", {})
        net = cache.get(self.token)
        if net is None:
            if len(cache) >= 4:  # a few networks per thread at most
                cache.clear()
            net = cache[self.token] = self.rebuild()
        return net

    def rebuild(self):
        """A new module from the shipped structure and arrays (sharing them), in eval mode."""
        tensors = []
        for is_parameter, requires_grad, array in self.arrays:
            tensor = from_numpy(array)  # shares the shipped array: the weights exist once
            if is_parameter:
                tensor = nn.Parameter(tensor, requires_grad=requires_grad)
            elif requires_grad:
                tensor.requires_grad_(True)
            tensors.append(tensor)

        class Unpickler(pickle.Unpickler):
            def persistent_load(self, pid):
                return tensors[pid[1]]

        net = Unpickler(io.BytesIO(self.structure)).load()
        if self.device is not None:
            net.to(self.device)
        return net.eval()


_THREADS = threading.local()


def scattered(shipped: ShippedNetwork):
    """Under a current dask.distributed Client: the network scattered to every worker once
    (``client.scatter(broadcast=True)``, a future the block tasks refer to; the same network
    scattered again reuses it), so the weights never travel in the graph. Else None."""
    try:
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):
        return None
    return client.scatter(shipped, broadcast=True, hash=True)
