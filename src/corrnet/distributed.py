"""Collective communication between processes, on MPI, with ``torch.distributed``'s names.

Launch N copies of a script with ``mpirun -n N python script.py``; in each,

    import corrnet.distributed as dist
    dist.init_process_group("mpi")
    x = corrnet.ones(3) * dist.get_rank()
    dist.all_reduce(x)                # in place: every rank now holds the sum over the ranks

``init_process_group``, ``is_initialized``, ``is_available``, ``get_rank``,
``get_world_size``, ``get_backend``, ``all_reduce`` (``ReduceOp`` SUM, AVG, PRODUCT, MIN,
MAX, BAND, BOR, BXOR), ``broadcast``, ``all_gather``, ``barrier`` and
``destroy_process_group``, each with PyTorch's arguments; ``async_op=True`` returns a work
object whose ``wait()`` completes it. `corrnet.nn.parallel.DistributedDataParallel` and
`corrnet.utils.data.DistributedSampler` build on them.

The engine is MPI through mpi4py (``pip install 'corrnet[mpi]'``: mpi4py and the mpich wheel,
whose ``mpirun`` launches the ranks); ``import corrnet`` does not import it. The one backend
is ``"mpi"``: ``"gloo"`` and ``"nccl"`` are refused rather than quietly mapped, since a script
written for them is launched by ``torchrun`` with a rendezvous address, not by ``mpirun``.
Tensors travel as their NumPy buffers (mpi4py's buffer methods: ``Iallreduce``, ``Ibcast``,
``Iallgather``), never pickled.

Safety. Every collective is started non-blocking and waited for with the `timeout` given to
`init_process_group` (30 minutes by default, as PyTorch's): a rank that never joins (it died,
or it is stuck elsewhere) makes the others print which collective on which rank timed out and
abort the job (``MPI_Abort``) instead of hanging. (mpich's ``mpirun`` already ends the whole
job as soon as one rank exits without finishing; the timeout is for the cases it cannot see.)
Before each collective the ranks compare what they were asked to do (the collective, its
operation or source, the dtype and shape): ranks that disagree get a RuntimeError on every
rank naming what each asked for, rather than a truncated buffer or a hang.

Threads. Ranks on one machine share its cores: `init_process_group` gives corrnet's kernels
and the BLAS library ``cores // ranks on this machine`` threads each (unless the environment
sets ``OMP_NUM_THREADS``), and `destroy_process_group` gives the count back.

>>> import corrnet.distributed as dist
>>> dist.is_initialized()
False
>>> dist.ReduceOp.SUM
<ReduceOp.SUM: 0>
"""

from __future__ import annotations

import datetime
import enum
import importlib.util
import json
import os
import sys
import time

import numpy as np

__all__ = [
    "ReduceOp",
    "all_gather",
    "all_reduce",
    "barrier",
    "broadcast",
    "destroy_process_group",
    "get_backend",
    "get_rank",
    "get_world_size",
    "init_process_group",
    "is_available",
    "is_initialized",
    "is_mpi_launch",
]

#: PyTorch's default for the collectives' timeout (``torch.distributed.default_pg_timeout``)
default_pg_timeout = datetime.timedelta(minutes=30)


class ReduceOp(enum.Enum):
    """How `all_reduce` combines the ranks' tensors, as ``torch.distributed.ReduceOp``. AVG
    (the sum divided by the world size) takes floating point and complex tensors only (an
    integer mean would have to round); BAND, BOR and BXOR integer and bool ones."""

    SUM = 0
    PRODUCT = 1
    MIN = 2
    MAX = 3
    BAND = 4
    BOR = 5
    BXOR = 6
    AVG = 7


class _Group:
    """The default process group: a private duplicate of MPI's world communicator (so that
    the user's own MPI traffic never mixes with corrnet's), its rank and size, the timeout,
    and the thread counts to restore at `destroy_process_group`."""

    def __init__(self, MPI, comm, timeout: datetime.timedelta):
        self.MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.timeout = timeout
        self.threads_before = None
        self.blas_limit = None


_group: _Group | None = None


def _mpi():
    """mpi4py's MPI module (importing it initializes MPI), or ImportError naming the extra."""
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise ImportError("corrnet.distributed needs mpi4py and an MPI library: "
                          "pip install 'corrnet[mpi]' (mpi4py and the mpich wheel)") from err
    return MPI


def is_available() -> bool:
    """Whether collectives can run here: mpi4py is installed (MPI is not started)."""
    return importlib.util.find_spec("mpi4py") is not None


def is_initialized() -> bool:
    """Whether `init_process_group` has run (and `destroy_process_group` has not since)."""
    return _group is not None


def is_mpi_launch() -> bool:
    """Whether this process was started by ``mpirun`` with more than one rank: mpich's
    (``PMI_SIZE``), Open MPI's (``OMPI_COMM_WORLD_SIZE``) or a Slurm-PMI launch's."""
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 1:
            return True
    return False


def _default_group() -> _Group:
    if _group is None:
        raise ValueError("Default process group has not been initialized, please make sure to "
                         "call init_process_group (corrnet.distributed.init_process_group('mpi'),"
                         " in a script launched with mpirun -n N).")
    return _group


def _check_group(group, where: str) -> _Group:
    if group is not None and group is not WORLD:
        raise ValueError(f"{where}: only the default group (group=None) exists in corrnet, got "
                         f"{group!r}")
    return _default_group()


class _World:
    """The default group, for code that names it: ``corrnet.distributed.group.WORLD``."""

    def __repr__(self) -> str:
        return "<corrnet.distributed.group.WORLD>"


WORLD = _World()


class group:  # lower case: PyTorch's name
    """``corrnet.distributed.group.WORLD``, as ``torch.distributed.group.WORLD``."""

    WORLD = WORLD


def init_process_group(backend: str | None = None, init_method: str | None = None,
                       timeout: datetime.timedelta | None = None, world_size: int = -1,
                       rank: int = -1, store=None, group_name: str = "", pg_options=None,
                       device_id=None) -> None:
    """Join the ranks that ``mpirun`` started into the default process group.

    `backend` is ``"mpi"`` (or None); `init_method` None or ``"env://"``: MPI's launcher has
    already told each process its rank and the world size, so `world_size` and `rank`, if
    given, must agree with it. `timeout` bounds every later collective (default 30 minutes):
    past it the job is aborted with a message naming the collective and the rank.
    """
    global _group
    if _group is not None:
        raise ValueError("trying to initialize the default process group twice! (call "
                         "destroy_process_group first)")
    if backend is not None and (not isinstance(backend, str) or backend.lower() != "mpi"):
        raise ValueError(f"init_process_group: backend {backend!r} is not available in corrnet: "
                         "its one backend is 'mpi' (launch the script with mpirun -n N python "
                         "script.py). 'gloo' and 'nccl' are PyTorch's own libraries, launched "
                         "by torchrun.")
    if init_method not in (None, "env://"):
        raise ValueError(f"init_process_group: init_method {init_method!r}: with the 'mpi' "
                         "backend, mpirun tells every process its rank; leave init_method out")
    if store is not None:
        raise ValueError("init_process_group: the 'mpi' backend takes no store")
    if timeout is None:
        timeout = default_pg_timeout
    if not isinstance(timeout, datetime.timedelta) or timeout.total_seconds() <= 0:
        raise TypeError(f"init_process_group: timeout must be a positive datetime.timedelta, "
                        f"got {timeout!r}")
    MPI = _mpi()
    world = MPI.COMM_WORLD
    for name, given, actual in (("world_size", world_size, world.Get_size()),
                                ("rank", rank, world.Get_rank())):
        if given not in (-1, None) and given != actual:
            raise ValueError(f"init_process_group: {name}={given}, but mpirun started this "
                             f"process with {name} {actual}")
    comm, request = world.Idup()
    new = _Group(MPI, comm, timeout)
    _group = new
    try:
        _wait(request, "init_process_group")
    except BaseException:
        _group = None
        raise
    _share_cores(new)


def _local_ranks() -> int:
    """How many ranks of this job run on this machine, as the launcher says."""
    for name in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def _share_cores(new: _Group) -> None:
    """Give this rank cores // (ranks on this machine) threads (see the module docstring)."""
    local = _local_ranks()
    if local <= 1 or "OMP_NUM_THREADS" in os.environ:
        return
    from .kernels import threads

    share = max(1, threads._cores() // local)
    new.threads_before = threads.get_num_threads()
    threads.set_num_threads(share)
    try:
        # SciPy's BLAS (numba's np.dot) loaded now, so that the limit reaches it too
        import scipy.linalg.cython_blas  # noqa: F401
        from threadpoolctl import threadpool_limits

        new.blas_limit = threadpool_limits(limits=share, user_api="blas")
    except ImportError:  # both are dependencies; without them BLAS keeps its threads
        pass


def destroy_process_group(group=None) -> None:
    """Leave the default process group (MPI itself stays up until the process exits, so that
    `init_process_group` may be called again)."""
    global _group
    current = _check_group(group, "destroy_process_group")
    _group = None
    if current.threads_before is not None:
        from .kernels import threads

        threads.set_num_threads(current.threads_before)
    if current.blas_limit is not None:
        current.blas_limit.restore_original_limits()
    current.comm.Free()


def get_rank(group=None) -> int:
    """This process's rank, 0 .. world size - 1."""
    return _check_group(group, "get_rank").rank


def get_world_size(group=None) -> int:
    """The number of processes in the group."""
    return _check_group(group, "get_world_size").size


def get_backend(group=None) -> str:
    """``"mpi"``."""
    _check_group(group, "get_backend")
    return "mpi"


# ---------------------------------------------------------------------------------------------
# waiting, with the timeout
# ---------------------------------------------------------------------------------------------


def _abort(message: str) -> None:
    """Print `message` naming this rank on stderr and end the whole job (MPI_Abort)."""
    current = _group
    who = "" if current is None else f"rank {current.rank} of {current.size}: "
    sys.stderr.write(f"corrnet.distributed: {who}{message}\n")
    sys.stderr.flush()
    # mpirun forwards a rank's output through a helper process that MPI_Abort ends at once:
    # give it a moment to pass the message on (without, it was lost in about 1 run of 5)
    time.sleep(1.0)
    MPI = _mpi()
    MPI.COMM_WORLD.Abort(1)


def _wait(request, what: str) -> None:
    """Wait for a non-blocking MPI request; abort the job past the group's timeout."""
    current = _default_group()
    if request.Test():
        return
    deadline = time.monotonic() + current.timeout.total_seconds()
    pause = 1e-5
    while not request.Test():
        if time.monotonic() > deadline:
            _abort(f"{what} did not complete within the timeout of {current.timeout} "
                   "(init_process_group's timeout): another rank has died or is not calling "
                   "the same collective; aborting the job")
        time.sleep(pause)
        pause = min(2 * pause, 1e-3)


class Work:
    """What a collective with ``async_op=True`` returns: ``wait()`` completes it (the tensor
    holds the result after), ``is_completed()`` asks without waiting."""

    def __init__(self, request, what: str, finish=None):
        self._request, self._what, self._finish, self._done = request, what, finish, False

    def is_completed(self) -> bool:
        if not self._done and self._request.Test():
            self._complete()
        return self._done

    def wait(self, timeout=None) -> bool:
        if not self._done:
            _wait(self._request, self._what)
            self._complete()
        return True

    def _complete(self) -> None:
        self._done = True
        if self._finish is not None:
            self._finish()


# ---------------------------------------------------------------------------------------------
# the ranks agree on what they are doing
# ---------------------------------------------------------------------------------------------

_KINDS = {"all_reduce": 1, "broadcast": 2, "all_gather": 3, "barrier": 4}
_SHAPE_SLOTS = 6


def _describe(kind: str, detail: int, array) -> np.ndarray:
    """A fixed-length int64 record of a collective call: kind, op or source, dtype, ndim,
    size, the first dimensions."""
    record = np.full(5 + _SHAPE_SLOTS, -1, dtype=np.int64)
    record[0], record[1] = _KINDS[kind], detail
    if array is not None:
        record[2] = np.dtype(array.dtype).num
        record[3], record[4] = array.ndim, array.size
        shape = array.shape[:_SHAPE_SLOTS]
        record[5:5 + len(shape)] = shape
    return record


def _record_text(record) -> str:
    kind = {v: k for k, v in _KINDS.items()}.get(int(record[0]), "?")
    detail = int(record[1])
    if kind == "all_reduce":
        kind = f"all_reduce({ReduceOp(detail).name})"
    elif kind == "broadcast":
        kind = f"broadcast(src={detail})"
    if record[2] < 0:
        return kind
    dtype = next((np.dtype(t) for t in set(np.sctypeDict.values())
                  if np.dtype(t).num == int(record[2])), "?")
    ndim = int(record[3])
    shape = [int(n) for n in record[5:5 + min(ndim, _SHAPE_SLOTS)]]
    if ndim > _SHAPE_SLOTS:
        shape.append(f"... ({int(record[4])} elements)")
    return f"{kind} on a {dtype} tensor of shape {shape}"


def _agree(current: _Group, kind: str, detail: int, array) -> None:
    """Check that every rank is making the same call; RuntimeError on every rank if not."""
    MPI = current.MPI
    record = _describe(kind, detail, array)
    both = np.concatenate([record, -record])  # one MAX gives each entry's max and -min
    _wait(current.comm.Iallreduce(MPI.IN_PLACE, both, MPI.MAX), kind)
    if np.array_equal(both[:record.size], -both[record.size:]):
        return
    everyone = np.empty((current.size, record.size), dtype=np.int64)
    _wait(current.comm.Iallgather(record, everyone), kind)
    calls = "; ".join(f"rank {r}: {_record_text(row)}" for r, row in enumerate(everyone))
    raise RuntimeError(f"corrnet.distributed.{kind}: the ranks disagree on the collective they "
                       f"are running ({calls}); every rank must make the same calls with "
                       "tensors of the same dtype and shape")


# ---------------------------------------------------------------------------------------------
# the collectives
# ---------------------------------------------------------------------------------------------


def _host_array(tensor, where: str):
    from .tensor import Tensor

    if not isinstance(tensor, Tensor):
        raise TypeError(f"{where}: tensor must be a corrnet Tensor, got {type(tensor).__name__}")
    array = tensor._data
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{where}: the 'mpi' backend takes CPU tensors; this one is on "
                        f"{tensor.device} (move it with .cpu())")
    return array


def _mpi_op(MPI, op: ReduceOp, dtype: np.dtype, where: str):
    kind = dtype.kind  # b bool, i/u integer, f float, c complex
    if op is ReduceOp.AVG and kind not in "fc":
        raise TypeError(f"{where}: ReduceOp.AVG takes floating point or complex tensors (the "
                        f"mean of integers would round), got {dtype}; use SUM and divide")
    if op in (ReduceOp.BAND, ReduceOp.BOR, ReduceOp.BXOR) and kind not in "biu":
        raise TypeError(f"{where}: ReduceOp.{op.name} takes integer or bool tensors, got {dtype}")
    if op in (ReduceOp.MIN, ReduceOp.MAX) and kind == "c":
        raise TypeError(f"{where}: ReduceOp.{op.name} has no meaning for complex tensors "
                        f"({dtype})")
    if kind == "b":
        if op in (ReduceOp.SUM, ReduceOp.PRODUCT):
            raise TypeError(f"{where}: ReduceOp.{op.name} on a bool tensor: use BOR / MAX "
                            "(any) or BAND / MIN (all)")
        return {ReduceOp.MIN: MPI.LAND, ReduceOp.MAX: MPI.LOR, ReduceOp.BAND: MPI.LAND,
                ReduceOp.BOR: MPI.LOR, ReduceOp.BXOR: MPI.LXOR}[op]
    return {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD,
            ReduceOp.MIN: MPI.MIN, ReduceOp.MAX: MPI.MAX, ReduceOp.BAND: MPI.BAND,
            ReduceOp.BOR: MPI.BOR, ReduceOp.BXOR: MPI.BXOR}[op]


def _in_place_buffer(tensor, array):
    """A C-contiguous, writeable array to run the collective on, and the function that
    puts its result into the tensor (a no-op when it is the tensor's own array)."""
    if array.flags.c_contiguous and array.flags.writeable:
        def finish():
            tensor._version[0] += 1
        return array, finish
    staged = np.ascontiguousarray(array).copy()

    def copy_back():
        tensor._data[...] = staged
        tensor._version[0] += 1
    return staged, copy_back


def all_reduce(tensor, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """Combine `tensor` over the ranks with `op`, in place: afterwards every rank holds the
    result. With ``async_op=True`` returns a `Work` (the tensor holds the result after its
    ``wait()``); else None."""
    current = _check_group(group, "all_reduce")
    array = _host_array(tensor, "all_reduce")
    if not isinstance(op, ReduceOp):
        raise TypeError(f"all_reduce: op must be a corrnet.distributed.ReduceOp, got {op!r}")
    mpi_op = _mpi_op(current.MPI, op, array.dtype, "all_reduce")
    _agree(current, "all_reduce", op.value, array)
    buffer, finish = _in_place_buffer(tensor, array)

    def done():
        if op is ReduceOp.AVG:
            np.divide(buffer, current.size, out=buffer)
        finish()

    request = current.comm.Iallreduce(current.MPI.IN_PLACE, buffer, mpi_op)
    return _finish(Work(request, f"all_reduce({op.name}) of a {array.dtype} tensor of shape "
                                 f"{list(array.shape)}", done), async_op)


def _finish(work: Work, async_op: bool):
    if async_op:
        return work
    work.wait()
    return None


def broadcast(tensor, src: int | None = None, group=None, async_op: bool = False,
              group_src: int | None = None):
    """Copy rank `src`'s `tensor` into every other rank's `tensor` (in place)."""
    current = _check_group(group, "broadcast")
    src = group_src if src is None else src
    if isinstance(src, bool) or not isinstance(src, (int, np.integer)) or \
            not 0 <= src < current.size:
        raise ValueError(f"broadcast: src must be a rank in 0 .. {current.size - 1}, got {src!r}")
    array = _host_array(tensor, "broadcast")
    _agree(current, "broadcast", int(src), array)
    buffer, finish = _in_place_buffer(tensor, array)
    request = current.comm.Ibcast(buffer, root=int(src))
    return _finish(Work(request, f"broadcast(src={src}) of a {array.dtype} tensor of shape "
                                 f"{list(array.shape)}", finish), async_op)


def all_gather(tensor_list, tensor, group=None, async_op: bool = False):
    """Fill ``tensor_list[r]`` with rank r's `tensor`, on every rank: `tensor_list` holds
    world-size tensors of `tensor`'s shape and dtype."""
    current = _check_group(group, "all_gather")
    array = _host_array(tensor, "all_gather")
    if not isinstance(tensor_list, (list, tuple)) or len(tensor_list) != current.size:
        count = len(tensor_list) if isinstance(tensor_list, (list, tuple)) else "not a list"
        raise ValueError(f"all_gather: tensor_list must hold one tensor per rank "
                         f"({current.size}), got {count}")
    for r, out in enumerate(tensor_list):
        target = _host_array(out, f"all_gather: tensor_list[{r}]")
        if target.shape != array.shape or target.dtype != array.dtype:
            raise ValueError(f"all_gather: tensor_list[{r}] is a {target.dtype} tensor of shape "
                             f"{list(target.shape)}; tensor is {array.dtype} "
                             f"{list(array.shape)}: they must agree")
    _agree(current, "all_gather", 0, array)
    gathered = np.empty((current.size,) + array.shape, dtype=array.dtype)
    request = current.comm.Iallgather(np.ascontiguousarray(array), gathered)

    def scatter():
        for out, part in zip(tensor_list, gathered, strict=True):
            out._data[...] = part
            out._version[0] += 1

    return _finish(Work(request, f"all_gather of a {array.dtype} tensor of shape "
                                 f"{list(array.shape)}", scatter), async_op)


def barrier(group=None, async_op: bool = False, device_ids=None, timeout=None):
    """Wait until every rank has reached the barrier."""
    current = _check_group(group, "barrier")
    return _finish(Work(current.comm.Ibarrier(), "barrier"), async_op)


# ---------------------------------------------------------------------------------------------
# for DistributedDataParallel and the training loop: no per-call agreement check
# ---------------------------------------------------------------------------------------------


def _allreduce_sum_async(array: np.ndarray, what: str) -> Work:
    """Start summing a C-contiguous array over the ranks in place (callers agreed on the
    layout beforehand: DistributedDataParallel's buckets)."""
    current = _default_group()
    return Work(current.comm.Iallreduce(current.MPI.IN_PLACE, array, current.MPI.SUM), what)


def _broadcast_array(array: np.ndarray, src: int, what: str) -> None:
    current = _default_group()
    _wait(current.comm.Ibcast(array, root=src), what)


def _allgather_json(value, what: str) -> list:
    """Every rank's `value` (plain data: lists, numbers, strings), as JSON text: never a
    pickle."""
    current = _default_group()
    data = np.frombuffer(json.dumps(value).encode(), dtype=np.uint8)
    sizes = np.empty(current.size, dtype=np.int64)
    _wait(current.comm.Iallgather(np.array([data.size], dtype=np.int64), sizes), what)
    everyone = np.empty(int(sizes.sum()), dtype=np.uint8)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    _wait(current.comm.Iallgatherv(data, [everyone, sizes, offsets, current.MPI.BYTE]), what)
    return [json.loads(everyone[start:start + size].tobytes())
            for start, size in zip(offsets.tolist(), sizes.tolist(), strict=True)]
