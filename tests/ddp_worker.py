"""What each rank runs in tests/test_issue16_distributed.py, under ``mpirun -n N``:

    python tests/ddp_worker.py MODE OUT_DIR [ARGS]

Each rank writes what it saw to OUT_DIR/MODE-RANK.json (or .npz); the test compares those
files with values it computes itself, in one process, without corrnet.distributed.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import corrnet
import corrnet.distributed as dist
from corrnet import nn, optim
from corrnet.nn.parallel import DistributedDataParallel as DDP

STEPS, GLOBAL_BATCH = 20, 256


def lenet():
    """The book's LeNet (sigmoid, average pooling), float32."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(2, stride=2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(), nn.Linear(120, 84),
        nn.Sigmoid(), nn.Linear(84, 10))


def data():
    """Four batches of 256 random images and labels, cycled over the 20 steps."""
    rng = np.random.default_rng(16)
    images = rng.standard_normal((4 * GLOBAL_BATCH, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, 4 * GLOBAL_BATCH)
    return images, labels


OPTIMIZERS = {
    "sgd": lambda params: optim.SGD(params, lr=0.5),
    "momentum": lambda params: optim.SGD(params, lr=0.1, momentum=0.9),
    "adam": lambda params: optim.Adam(params, lr=1e-3),
}


def train(net, optimizer, batches) -> None:
    """One optimizer step per (X, y) of batches: the mean cross-entropy's gradient."""
    loss = nn.CrossEntropyLoss()
    for X, y in batches:
        optimizer.zero_grad()
        loss(net(corrnet.from_numpy(X)), corrnet.from_numpy(y)).backward()
        optimizer.step()


def rank_batches(rank: int, world: int):
    """This rank's share of each global batch: rows rank*share .. (rank+1)*share."""
    images, labels = data()
    share = GLOBAL_BATCH // world
    for step in range(STEPS):
        start = (step % 4) * GLOBAL_BATCH + rank * share
        yield images[start:start + share], labels[start:start + share]


def mode_train(out: Path) -> None:
    rank, world = dist.get_rank(), dist.get_world_size()
    for name, make in OPTIMIZERS.items():
        corrnet.manual_seed(rank)  # different on every rank: DDP copies rank 0's values
        net = DDP(lenet(), bucket_cap_mb=0.05)  # several buckets for LeNet's 250 KB
        train(net, make(net.parameters()), rank_batches(rank, world))
        if rank == 0:
            np.savez(out / f"train-{name}.npz",
                     **{k: v.numpy() for k, v in net.module.state_dict().items()})


def mode_collectives(out: Path) -> None:
    """all_reduce (every op), broadcast, all_gather, barrier, async work, no_sync; a
    mismatched collective; the rank's results as JSON."""
    rank, world = dist.get_rank(), dist.get_world_size()
    result = {"rank": rank, "world": world}
    base = np.array([1.5, -2.0, 3.0, 0.25], dtype=np.float32)
    for op in ("SUM", "AVG", "PRODUCT", "MIN", "MAX"):
        x = corrnet.from_numpy(base * (rank + 1))
        dist.all_reduce(x, op=getattr(dist.ReduceOp, op))
        result[op] = x.tolist()
    bits = corrnet.tensor([1 << rank, 3, 12], dtype=corrnet.int64)
    dist.all_reduce(bits, op=dist.ReduceOp.BOR)
    result["BOR"] = bits.tolist()
    counts = corrnet.arange(6, dtype=corrnet.int32).reshape(2, 3) * (rank + 1)
    dist.all_reduce(counts)
    result["int_sum"] = counts.tolist()
    column = corrnet.zeros(3, 2)[:, 1]   # not contiguous: reduced through a copy
    column += rank + 1
    dist.all_reduce(column)
    result["strided"] = column.tolist()
    x = corrnet.full((2, 2), float(rank))
    work = dist.all_reduce(x, async_op=True)
    work.wait()
    result["async"] = x.tolist()
    y = corrnet.full((3,), float(10 * rank + 7))
    dist.broadcast(y, src=world - 1)
    result["broadcast"] = y.tolist()
    gathered = [corrnet.zeros(2, dtype=corrnet.int64) for _ in range(world)]
    dist.all_gather(gathered, corrnet.tensor([rank, rank * rank]))
    result["all_gather"] = [t.tolist() for t in gathered]
    dist.barrier()
    try:  # rank 0 reduces 4 numbers, the others 5: every rank must get the error
        dist.all_reduce(corrnet.ones(4 if rank == 0 else 5))
    except RuntimeError as err:
        result["mismatch"] = str(err)
    try:  # rank 0 broadcasts, the others all-reduce
        if rank == 0:
            dist.broadcast(corrnet.ones(2), src=0)
        else:
            dist.all_reduce(corrnet.ones(2))
    except RuntimeError as err:
        result["mismatch_kind"] = str(err)
    # DDP: no_sync accumulates locally; the next synced backward averages the sum
    layer = nn.Linear(3, 1, bias=False)
    with corrnet.no_grad():
        layer.weight.copy_(corrnet.tensor([[1.0, 2.0, 3.0]]))
    net = DDP(layer)
    X = corrnet.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]) * (rank + 1)
    with net.no_sync():
        net(X).sum().backward()
    result["no_sync_local"] = layer.weight.grad.tolist()
    net(X).sum().backward()
    result["after_sync"] = layer.weight.grad.tolist()
    result["state_dict_keys"] = list(net.state_dict())
    # buckets start during the backward pass: at its end-of-pass callback all have started
    corrnet.manual_seed(0)
    net = DDP(lenet(), bucket_cap_mb=0.05)
    finish, started = net._finish_pass, []
    net._finish_pass = lambda: (started.append(net._next_bucket), finish())[1]
    nn.functional.cross_entropy(net(corrnet.randn(4, 1, 28, 28)),
                                corrnet.tensor([0, 1, 2, 3])).backward()
    result["buckets"] = [len(net._buckets), started]
    # a head only ranks 1.. use: rank 0 counts a zero gradient for it
    heads = nn.ModuleList([nn.Linear(2, 1), nn.Linear(2, 1)])
    with corrnet.no_grad():
        for p in heads.parameters():
            p.fill_(1.0)
    net = DDP(heads)
    X = corrnet.ones(1, 2)
    (heads[0](X) + (heads[1](X) if rank > 0 else 0)).sum().backward()
    result["unused_head"] = [p.grad.tolist() for p in heads.parameters()]
    # ranks that wrap different models: an error on every rank
    try:
        DDP(nn.Linear(4, 3 if rank == 0 else 2))
    except RuntimeError as err:
        result["different_models"] = str(err)
    try:
        DDP(nn.Sequential(nn.Linear(2, 2), *([nn.Linear(2, 2)] if rank == 1 else [])))
    except RuntimeError as err:
        result["extra_layer"] = str(err)
    # bad calls: refused on the calling rank before anything is sent
    bad = {}
    for name, call in {
        "avg_int": lambda: dist.all_reduce(corrnet.ones(2, dtype=corrnet.int64),
                                           op=dist.ReduceOp.AVG),
        "bor_float": lambda: dist.all_reduce(corrnet.ones(2), op=dist.ReduceOp.BOR),
        "op_string": lambda: dist.all_reduce(corrnet.ones(2), op="sum"),
        "src": lambda: dist.broadcast(corrnet.ones(2), src=world),
        "gather_list": lambda: dist.all_gather([corrnet.ones(2)], corrnet.ones(2)),
        "gather_shape": lambda: dist.all_gather([corrnet.ones(3)] * world, corrnet.ones(2)),
        "not_tensor": lambda: dist.all_reduce(np.ones(2)),
        "twice": lambda: dist.init_process_group("mpi"),
    }.items():
        try:
            call()
        except (TypeError, ValueError) as err:
            bad[name] = f"{type(err).__name__}: {err}"
    result["bad"] = bad
    # the ranks share the machine's cores, and get them back at destroy_process_group
    from threadpoolctl import threadpool_info

    blas = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    result["threads"] = [corrnet.get_num_threads(), blas]
    dist.destroy_process_group()
    result["threads_after"] = corrnet.get_num_threads()
    try:
        dist.init_process_group("mpi", rank=world + 1)
    except ValueError as err:
        bad["rank_given"] = f"ValueError: {err}"
    dist.init_process_group("mpi")          # again, after destroy_process_group
    again = corrnet.ones(1)
    dist.all_reduce(again)
    result["again"] = again.tolist()
    (out / f"collectives-{rank}.json").write_text(json.dumps(result))


def mode_die(out: Path, how: str) -> None:
    """Rank 1 exits mid-training (`how` "exit") or stops calling the collectives ("stall":
    alive, stuck elsewhere); the others train on until the job ends."""
    rank = dist.get_rank()
    corrnet.manual_seed(0)
    net = DDP(lenet())
    optimizer = optim.SGD(net.parameters(), lr=0.1)
    X = corrnet.randn(8, 1, 28, 28)
    y = corrnet.zeros(8, dtype=corrnet.int64)
    for step in range(1000):
        if rank == 1 and step == 3:
            if how == "stall":
                time.sleep(60)
            os._exit(3)
        (out / f"die-{rank}.txt").write_text(f"step {step}")
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(X), y).backward()
        optimizer.step()
    (out / f"die-{rank}.txt").write_text("finished")


def mode_cli(out: Path, tables: str, *argv) -> int:
    """``corrnet train`` with corrnet.datasets' checksums patched to the test's fake files."""
    from corrnet import cli, datasets

    patched = json.loads(Path(tables).read_text())
    datasets.SHA256, datasets.SIZES = patched["SHA256"], patched["SIZES"]
    return cli.main(list(argv))


def main() -> int:
    mode, out = sys.argv[1], Path(sys.argv[2])
    if mode == "cli":  # the command line starts its own process group
        return mode_cli(out, *sys.argv[3:])
    timeout = float(os.environ.get("DDP_WORKER_TIMEOUT", "60"))
    dist.init_process_group("mpi", timeout=datetime.timedelta(seconds=timeout))
    start = time.perf_counter()
    if mode == "train":
        mode_train(out)
    elif mode == "collectives":
        mode_collectives(out)
    elif mode == "die":
        mode_die(out, sys.argv[3])
    else:
        raise SystemExit(f"unknown mode {mode}")
    dist.destroy_process_group()
    print(f"rank done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
