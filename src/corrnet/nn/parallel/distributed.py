"""`DistributedDataParallel`: one model per rank, gradients averaged over the ranks.

Each rank runs the same model on its own share of the batch; during the backward pass the
gradients are summed over the ranks (MPI's all-reduce, through `corrnet.distributed`) and
divided by the world size, so every rank's optimizer takes the same step, the one a single
process would take on the whole batch (a mean loss over N ranks' equal shares).

As PyTorch's:

- at wrap time every rank checks that all ranks hold the same parameters and buffers (names,
  shapes, dtypes) and then copies rank 0's values into the others (``init_sync``);
- the gradients travel in buckets of about `bucket_cap_mb` MiB (25 by default; the first, the
  last layers' gradients, 1 MiB), in the reverse order of ``parameters()``, the order in which
  the backward pass finishes them. A parameter's post-accumulate-grad hook marks it ready;
  once all of a bucket's gradients are ready its all-reduce starts (non-blocking:
  ``Iallreduce``) while the backward pass goes on with the earlier layers, and a callback at
  the end of the backward pass waits for them all and writes the averages into ``.grad``.
  Buckets start in the same order on every rank, as MPI's collectives require;
- ``no_sync()`` skips the all-reduce (gradients accumulate locally, and the first backward
  after it averages the sum); ``module`` is the wrapped model, and the state dict's keys are
  its keys prefixed with ``module.``;
- buffers (BatchNorm's running statistics) are copied from rank 0 at each forward in training
  mode (``broadcast_buffers=True``).

A parameter that gets no gradient in a backward pass (unused in the forward) counts as a zero
gradient in the average (PyTorch needs ``find_unused_parameters=True`` for that; here it is
always so). Under a world size of 1 the wrapper only forwards the calls.
"""

from __future__ import annotations

import contextlib

import numpy as np

from ... import distributed as dist
from ...autograd import queue_callback
from ...tensor import _wrap
from ..module import Module
from ..parameter import is_lazy

_FIRST_BUCKET_BYTES = 1 << 20   # PyTorch's first bucket (dist._DEFAULT_FIRST_BUCKET_BYTES)


class _Bucket:
    """Gradients that travel together: their parameters, where each sits in the flat buffer,
    how many are still to come in this pass, and the all-reduce under way."""

    def __init__(self, params: list, index: int):
        self.params = params
        self.index = index
        self.offsets = np.cumsum([0] + [p._data.size for p in params]).tolist()
        self.buffer = np.empty(self.offsets[-1], dtype=params[0]._data.dtype)
        self.pending = len(params)
        self.work = None

    def fill(self) -> None:
        """Copy the parameters' gradients into the flat buffer (zeros where there is none)."""
        for param, start, stop in zip(self.params, self.offsets[:-1], self.offsets[1:],
                                      strict=True):
            grad = param.grad
            if grad is None:
                self.buffer[start:stop] = 0
            else:
                self.buffer[start:stop] = grad._data.reshape(-1)

    def write_back(self, world_size: int) -> None:
        """The averages, from the flat buffer into each parameter's ``.grad``."""
        np.divide(self.buffer, world_size, out=self.buffer)
        for param, start, stop in zip(self.params, self.offsets[:-1], self.offsets[1:],
                                      strict=True):
            average = self.buffer[start:stop].reshape(param._data.shape)
            grad = param.grad
            if grad is None:
                param.grad = _wrap(average.copy())
            elif grad._data.flags.writeable and grad._data.flags.c_contiguous:
                grad._data[...] = average
            else:
                grad._data = average.copy()


class DistributedDataParallel(Module):
    """Wrap `module` so that its gradients are averaged over the ranks of the default
    process group in each backward pass (see the module docstring).

    ``DistributedDataParallel(module, broadcast_buffers=True, init_sync=True,
    bucket_cap_mb=25)``; the other arguments of PyTorch's are accepted where they mean
    something on CPUs (`device_ids` and `output_device` must be None).

    >>> import corrnet.distributed as dist
    >>> from corrnet.nn.parallel import DistributedDataParallel as DDP
    >>> dist.init_process_group("mpi")               # in a script run by mpirun -n N
    >>> model = DDP(nn.Linear(4, 2))
    >>> model(corrnet.ones(3, 4)).sum().backward()    # .grad: the mean over the ranks
    >>> list(model.state_dict())
    ['module.weight', 'module.bias']
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0,
                 broadcast_buffers=True, init_sync=True, process_group=None,
                 bucket_cap_mb=None, find_unused_parameters=False, check_reduction=False,
                 gradient_as_bucket_view=False, static_graph=False):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be a corrnet.nn.Module, got "
                            f"{type(module).__name__}")
        if device_ids not in (None, []) or output_device is not None:
            raise ValueError("DistributedDataParallel: device_ids and output_device must be "
                             f"None for a CPU module, got {device_ids!r}, {output_device!r}")
        if dim != 0:
            raise ValueError(f"DistributedDataParallel: dim must be 0, got {dim!r}")
        if gradient_as_bucket_view:
            raise NotImplementedError("DistributedDataParallel(gradient_as_bucket_view=True)")
        if bucket_cap_mb is None:
            bucket_cap_mb = 25
        if isinstance(bucket_cap_mb, bool) or not isinstance(bucket_cap_mb, (int, float)) or \
                not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be a positive "
                             f"number, got {bucket_cap_mb!r}")
        group = dist._check_group(process_group, "DistributedDataParallel")
        lazy = [name for name, p in module.named_parameters() if is_lazy(p)]
        if lazy:
            raise RuntimeError(f"DistributedDataParallel: the parameters {lazy[:3]} are not "
                               "initialized yet (lazy modules): run a forward pass on a "
                               "batch before wrapping the module")
        self.module = module
        self.broadcast_buffers = True if broadcast_buffers is None else bool(broadcast_buffers)
        self.bucket_cap_mb = bucket_cap_mb
        self.find_unused_parameters = bool(find_unused_parameters)
        self.static_graph = bool(static_graph)
        self.require_backward_grad_sync = True
        self.require_forward_param_sync = True
        self.world_size, self.rank = group.size, group.rank
        self._params = [p for p in module.parameters() if p.requires_grad]
        self._pass_started = False
        self._next_bucket = 0
        if self.world_size == 1:  # a plain wrapper
            self._buckets, self._bucket_of, self._hooks = [], {}, []
            return
        self._check_same_model()
        if init_sync:
            self._copy_from_rank_0(list(module.parameters()) + list(module.buffers()),
                                   "DistributedDataParallel: copying rank 0's parameters")
        self._buckets = self._make_buckets(int(bucket_cap_mb * 1024 * 1024))
        self._bucket_of = {}
        for bucket in self._buckets:
            for param in bucket.params:
                self._bucket_of[id(param)] = bucket
        self._hooks = [p.register_post_accumulate_grad_hook(self._grad_ready)
                       for p in self._params]

    # -- wrap time ---------------------------------------------------------------------------

    def _layout(self) -> list:
        """What every rank must agree on: [kind, name, shape, dtype] per parameter and
        buffer."""
        return ([["parameter", name, list(p.shape), str(p._data.dtype)]
                 for name, p in self.module.named_parameters()]
                + [["buffer", name, list(b.shape), str(b._data.dtype)]
                   for name, b in self.module.named_buffers()])

    def _check_same_model(self) -> None:
        """RuntimeError on every rank if some rank's model differs from rank 0's, naming the
        first parameter (or buffer) that differs and the ranks."""
        layouts = dist._allgather_json(self._layout(),
                                       "DistributedDataParallel: comparing the ranks' models")
        reference = layouts[0]
        for rank, layout in enumerate(layouts[1:], 1):
            if layout == reference:
                continue

            def text(entry):
                kind, name, shape, dtype = entry
                return f"{kind} '{name}' ({dtype}, shape {shape})"

            for mine, theirs in zip(reference, layout, strict=False):
                if mine != theirs:
                    difference = f"rank 0 has {text(mine)} where rank {rank} has {text(theirs)}"
                    break
            else:
                longer, owner = (reference, 0) if len(reference) > len(layout) else (layout, rank)
                extra = longer[min(len(reference), len(layout))]
                difference = (f"rank 0 has {len(reference)} parameters and buffers, rank "
                              f"{rank} {len(layout)}: {text(extra)} is on rank {owner} only")
            others = [r for r, other in enumerate(layouts) if other != reference]
            raise RuntimeError(f"DistributedDataParallel: the ranks wrap different models: "
                               f"{difference} (ranks differing from rank 0: {others}). Every "
                               "rank must build the same model before wrapping it.")

    def _copy_from_rank_0(self, tensors, what: str) -> None:
        """Overwrite `tensors` (in place) with rank 0's values: one broadcast per dtype."""
        by_dtype: dict = {}
        for t in tensors:
            by_dtype.setdefault(t._data.dtype, []).append(t)
        for dtype, group in by_dtype.items():
            flat = np.concatenate([t._data.reshape(-1) for t in group]).astype(dtype,
                                                                              copy=False)
            dist._broadcast_array(flat, 0, what)
            start = 0
            for t in group:
                stop = start + t._data.size
                np.copyto(t._data, flat[start:stop].reshape(t._data.shape))
                start = stop

    def _make_buckets(self, cap_bytes: int) -> list:
        """The parameters in reverse order, cut into buckets of one dtype each of at most
        `cap_bytes` (the first of 1 MiB), a parameter larger than that alone."""
        buckets, current, size, dtype = [], [], 0, None
        limit = min(_FIRST_BUCKET_BYTES, cap_bytes)
        for param in reversed(self._params):
            nbytes = param._data.nbytes
            if current and (size + nbytes > limit or param._data.dtype != dtype):
                buckets.append(_Bucket(current, len(buckets)))
                current, size, limit = [], 0, cap_bytes
            current.append(param)
            size += nbytes
            dtype = param._data.dtype
        if current:
            buckets.append(_Bucket(current, len(buckets)))
        return buckets

    # -- the backward pass -------------------------------------------------------------------

    def _grad_ready(self, param) -> None:
        """A parameter's gradient is accumulated: count it, start the buckets now full."""
        if not self.require_backward_grad_sync:
            return
        if not self._pass_started:
            self._pass_started = True
            for bucket in self._buckets:
                bucket.pending = len(bucket.params)
            self._next_bucket = 0
            queue_callback(self._finish_pass)
        self._bucket_of[id(param)].pending -= 1
        self._launch(lambda bucket: bucket.pending == 0)
        for bucket in self._buckets[:self._next_bucket]:
            # MPI moves a non-blocking collective on when asked about it (no progress
            # thread): ask, so that it runs on while the backward pass goes on
            if bucket.work is not None and not bucket.work._done:
                bucket.work.is_completed()

    def _launch(self, ready) -> None:
        """Start the all-reduce of the next buckets in order while `ready(bucket)`."""
        while self._next_bucket < len(self._buckets):
            bucket = self._buckets[self._next_bucket]
            if not ready(bucket):
                return
            bucket.fill()
            bucket.work = dist._allreduce_sum_async(
                bucket.buffer, f"DistributedDataParallel's gradient all-reduce (bucket "
                               f"{bucket.index} of {len(self._buckets)}, "
                               f"{bucket.buffer.nbytes} bytes)")
            self._next_bucket += 1

    def _finish_pass(self) -> None:
        """At the end of the backward pass: start what is left (gradients that never came
        count as zeros), wait for every bucket, write the averages into ``.grad``."""
        self._launch(lambda bucket: True)
        for bucket in self._buckets:
            bucket.work.wait()
            bucket.work = None
            bucket.write_back(self.world_size)
        self._pass_started = False

    @contextlib.contextmanager
    def no_sync(self):
        """Within this block backward passes accumulate gradients locally, without
        all-reduce; the first backward pass after it averages the accumulated gradients."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    # -- the forward pass --------------------------------------------------------------------

    def forward(self, *inputs, **kwargs):
        if (self.world_size > 1 and self.training and self.broadcast_buffers
                and self.require_forward_param_sync):
            buffers = list(self.module.buffers())
            if buffers:
                self._copy_from_rank_0(buffers, "DistributedDataParallel: copying rank 0's "
                                                "buffers")
        return self.module(*inputs, **kwargs)

    def extra_repr(self) -> str:
        return f"world_size={self.world_size}, buckets={len(self._buckets)}"


__all__ = ["DistributedDataParallel"]
