"""Issue 16, item 4: data-parallel training on MPI with PyTorch's names.

The multi-process tests start ``mpirun -n N python tests/ddp_worker.py MODE`` (each bounded by
a timeout) and compare what the ranks wrote with values computed here, in one process: the
single-process run of the same training for DistributedDataParallel, sums written out by hand
for the collectives, PyTorch's DistributedSampler for the sampler. They are skipped, with the
reason, where mpi4py or mpirun is missing.
"""

from __future__ import annotations

import doctest
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import corrnet
import corrnet.distributed as dist
from corrnet import nn
from corrnet.utils.data import DistributedSampler

HERE = Path(__file__).parent
SRC = HERE.parent / "src"
WORKER = HERE / "ddp_worker.py"


def _mpirun() -> str | None:
    beside = Path(sys.executable).with_name("mpirun")
    return str(beside) if beside.exists() else shutil.which("mpirun")


needs_mpi = pytest.mark.skipif(
    not dist.is_available() or _mpirun() is None,
    reason="needs mpi4py and mpirun: pip install 'corrnet[mpi]'")


def mpirun(ranks: int, *args, timeout: float = 60, flags=(), env=None):
    """Run the worker on `ranks` ranks; the finished process, and its wall time."""
    # without the thread limits a dask LocalCluster started earlier in this process leaves in
    # os.environ (its nanny sets OMP_NUM_THREADS=1 there): the ranks share the cores themselves
    inherited = {name: value for name, value in os.environ.items()
                 if name not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    environment = {**inherited, "PYTHONPATH": os.pathsep.join(
        [str(SRC), str(HERE), os.environ.get("PYTHONPATH", "")]), **(env or {})}
    start = time.monotonic()
    done = subprocess.run([_mpirun(), *flags, "-n", str(ranks), sys.executable, str(WORKER),
                           *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=environment)
    return done, time.monotonic() - start


# ---------------------------------------------------------------------------------------------
# (a) 2 ranks x 128 == 1 process x 256
# ---------------------------------------------------------------------------------------------


@needs_mpi
def test_two_ranks_of_128_reach_the_parameters_of_one_process_of_256(tmp_path):
    import ddp_worker as worker

    done, _ = mpirun(2, "train", tmp_path, timeout=180)
    assert done.returncode == 0, done.stderr
    images, labels = worker.data()
    for name, make in worker.OPTIMIZERS.items():
        corrnet.manual_seed(0)  # rank 0's initial weights: what DDP copies to every rank
        net = worker.lenet()
        start = [p.detach().clone() for p in net.parameters()]
        batches = [(images[(s % 4) * 256:(s % 4 + 1) * 256],
                    labels[(s % 4) * 256:(s % 4 + 1) * 256]) for s in range(worker.STEPS)]
        worker.train(net, make(net.parameters()), batches)
        got = np.load(tmp_path / f"train-{name}.npz")
        assert sorted(got.files) == sorted(net.state_dict())
        for key, value in net.state_dict().items():
            np.testing.assert_allclose(got[key], value.numpy(), rtol=1e-4, atol=2e-6,
                                       err_msg=f"{name}: {key}")
        moved = max(float((p - s).abs().max()) for p, s in zip(net.parameters(), start,
                                                                 strict=True))
        assert moved > 1e-3, f"{name}: training hardly moved the parameters ({moved})"


# ---------------------------------------------------------------------------------------------
# (b) collectives, (c) different models, no_sync, state_dict keys
# ---------------------------------------------------------------------------------------------


@needs_mpi
def test_collectives_and_wrap_time_checks_on_three_ranks(tmp_path):
    done, _ = mpirun(3, "collectives", tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    ranks = [json.loads((tmp_path / f"collectives-{r}.json").read_text()) for r in range(3)]
    base = np.array([1.5, -2.0, 3.0, 0.25])
    contributions = [base * (r + 1) for r in range(3)]  # what rank r passed
    expected = {"SUM": contributions[0] + contributions[1] + contributions[2],
                "AVG": (contributions[0] + contributions[1] + contributions[2]) / 3,
                "PRODUCT": contributions[0] * contributions[1] * contributions[2],
                "MIN": np.minimum(np.minimum(contributions[0], contributions[1]),
                                  contributions[2]),
                "MAX": np.maximum(np.maximum(contributions[0], contributions[1]),
                                  contributions[2])}
    for result in ranks:
        assert result["world"] == 3
        for op, values in expected.items():
            np.testing.assert_allclose(result[op], values, rtol=1e-6, err_msg=op)
        assert result["BOR"] == [1 | 2 | 4, 3, 12]
        assert result["int_sum"] == [[0, 6, 12], [18, 24, 30]]      # (0..5) x (1 + 2 + 3)
        assert result["strided"] == [6.0, 6.0, 6.0]
        assert result["async"] == [[3.0, 3.0], [3.0, 3.0]]          # 0 + 1 + 2
        assert result["broadcast"] == [27.0] * 3                    # rank 2's 10 * 2 + 7
        assert result["all_gather"] == [[0, 0], [1, 1], [2, 4]]
        # a mismatched collective: an error on every rank, naming each rank's call
        assert "rank 0: all_reduce(SUM) on a float32 tensor of shape [4]" in result["mismatch"]
        assert "rank 1: all_reduce(SUM) on a float32 tensor of shape [5]" in result["mismatch"]
        assert "rank 0: broadcast(src=0)" in result["mismatch_kind"]
        # no_sync: local gradient only; then the average of the accumulated ones
        r = result["rank"]
        assert result["no_sync_local"] == [[r + 1.0, r + 1.0, 0.0]]
        assert result["after_sync"] == [[4.0, 4.0, 0.0]]   # 2 x mean(1, 2, 3)
        assert result["state_dict_keys"] == ["module.weight"]
        buckets, started = result["buckets"]
        assert buckets > 2 and started == [buckets]   # all under way before the pass ended
        bad = result["bad"]
        assert bad["avg_int"].startswith("TypeError: all_reduce: ReduceOp.AVG takes floating")
        assert "int64" in bad["avg_int"]
        assert bad["bor_float"].startswith("TypeError: all_reduce: ReduceOp.BOR takes integer")
        assert bad["op_string"].startswith("TypeError: all_reduce: op must be a corrnet.")
        assert bad["src"] == "ValueError: broadcast: src must be a rank in 0 .. 2, got 3"
        assert "must hold one tensor per rank (3), got 1" in bad["gather_list"]
        assert "tensor_list[0] is a float32 tensor of shape [3]" in bad["gather_shape"]
        assert "tensor must be a corrnet Tensor, got ndarray" in bad["not_tensor"]
        assert "initialize the default process group twice" in bad["twice"]
        assert "rank=4, but mpirun started this process with rank" in bad["rank_given"]
        share = max(1, len(os.sched_getaffinity(0)) // 3)
        threads, blas = result["threads"]
        assert threads == share and all(n == share for n in blas)
        assert result["threads_after"] == len(os.sched_getaffinity(0))
        assert result["again"] == [3.0]
        third = 1 / 3   # head 0: used by all 3 ranks; head 1: by ranks 1 and 2 of 3
        np.testing.assert_allclose(result["unused_head"][0], [[1.0, 1.0]])
        np.testing.assert_allclose(result["unused_head"][2], [[2 * third, 2 * third]])
        np.testing.assert_allclose(result["unused_head"][3], [2 * third])
        # ranks with different models: the same clear error on every rank
        message = result["different_models"]
        assert "parameter 'weight'" in message and "shape [3, 4]" in message
        assert "shape [2, 4]" in message and "ranks differing from rank 0: [1, 2]" in message
        assert "'1.weight'" in result["extra_layer"] and "rank 1 only" in result["extra_layer"]


# ---------------------------------------------------------------------------------------------
# (d) a rank that dies
# ---------------------------------------------------------------------------------------------


@needs_mpi
def test_a_rank_that_dies_ends_the_job_instead_of_hanging(tmp_path):
    # mpich's mpirun ends every rank as soon as one exits without finishing MPI: the job
    # ends at once with the dead rank's status
    done, seconds = mpirun(2, "die", tmp_path, "exit", timeout=60)
    assert done.returncode == 3, (done.returncode, done.stderr)
    assert (tmp_path / "die-0.txt").read_text() != "finished"
    assert seconds < 30


@needs_mpi
def test_a_rank_that_never_joins_aborts_the_others_after_the_timeout(tmp_path):
    # a rank alive but stuck elsewhere (or dead where the launcher does not notice): the
    # collective's timeout ends the job, naming the collective and the rank
    done, seconds = mpirun(2, "die", tmp_path, "stall", timeout=60,
                           env={"DDP_WORKER_TIMEOUT": "2"})
    assert done.returncode != 0
    assert "corrnet.distributed: rank 0 of 2: DistributedDataParallel's gradient all-reduce" \
        in done.stderr
    assert "did not complete within the timeout of 0:00:02" in done.stderr
    assert seconds < 40
    assert (tmp_path / "die-0.txt").read_text() != "finished"


# ---------------------------------------------------------------------------------------------
# (f) corrnet train lenet under mpirun -n 2
# ---------------------------------------------------------------------------------------------


@needs_mpi
def test_corrnet_train_under_mpirun_prints_and_checkpoints_once(tmp_path, monkeypatch):
    from fake_fashion_mnist import make

    from corrnet import datasets, models

    files = make(tmp_path, monkeypatch, train=96, test=40)
    tables = tmp_path / "tables.json"
    tables.write_text(json.dumps({"SHA256": datasets.SHA256, "SIZES": datasets.SIZES}))
    run = tmp_path / "run"
    done, _ = mpirun(2, "cli", tmp_path, tables, "train", "lenet", "--epochs", "2",
                     "--batch-size", "32", "--data-root", files, "--out", run, "--no-plot",
                     "--no-progress", timeout=120,
                     env={"XDG_CACHE_HOME": str(tmp_path / "cache"),
                          "CORRNET_NO_DOWNLOAD": "1"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sum(line.startswith("training lenet") for line in lines) == 1
    assert "(2 ranks data-parallel, 16 images each)" in lines[0]
    assert [line.split(":")[0] for line in lines if line.startswith("epoch")] == \
        ["epoch 1/2", "epoch 2/2"]
    assert sum("examples/sec on cpu" in line for line in lines) == 1
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.npz"]
    net, info = models.from_checkpoint(run / "checkpoint.npz")  # the module's own keys
    assert (info.model, info.epoch) == ("lenet", 2)


def test_batch_size_must_divide_among_the_ranks(monkeypatch, capsys):
    from corrnet import cli

    args = type("Args", (), {"batch_size": 33})()  # the check comes before anything else
    assert cli._train(args, (0, 2)) == 2
    assert "--batch-size 33 is the batch of all 2 ranks together: it must be a multiple " \
        "of 2" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# (e) DistributedSampler vs PyTorch's
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 5, 10, 11, 23])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_assignment_and_padding_are_pytorchs(n, replicas, drop_last):
    torch_data = pytest.importorskip("torch.utils.data")
    for rank in range(replicas):
        mine = DistributedSampler(range(n), num_replicas=replicas, rank=rank, shuffle=False,
                                  drop_last=drop_last)
        theirs = torch_data.DistributedSampler(range(n), num_replicas=replicas, rank=rank,
                                               shuffle=False, drop_last=drop_last)
        assert list(mine) == list(theirs) and len(mine) == len(theirs)
        assert (mine.num_samples, mine.total_size) == (theirs.num_samples, theirs.total_size)


def test_shuffled_sampler_splits_one_permutation_per_epoch():
    n, replicas = 103, 4
    samplers = [DistributedSampler(range(n), num_replicas=replicas, rank=r, seed=5)
                for r in range(replicas)]
    orders = []
    for epoch in range(3):
        for s in samplers:
            s.set_epoch(epoch)
        shares = [list(s) for s in samplers]
        assert {len(share) for share in shares} == {26}
        # interleaved shares of one padded permutation: the same on every rank
        merged = [shares[i % replicas][i // replicas] for i in range(26 * replicas)]
        assert sorted(merged[:n]) == list(range(n))
        assert merged[n:] == merged[:26 * replicas - n]       # padded from the start
        assert shares == [list(s) for s in samplers]          # iterating again: the same
        orders.append(merged)
    assert orders[0] != orders[1] != orders[2]
    other_seed = DistributedSampler(range(n), num_replicas=replicas, rank=0, seed=6)
    assert list(other_seed) != orders[0][0::replicas]


def test_sampler_feeds_a_loader_and_refuses_bad_ranks():
    data = corrnet.utils.data.TensorDataset(corrnet.arange(10))
    loader = corrnet.utils.data.DataLoader(
        data, batch_size=2, sampler=DistributedSampler(data, 3, 2, shuffle=False))
    assert [b[0].tolist() for b in loader] == [[2, 5], [8, 1]]
    with pytest.raises(ValueError, match=r"Invalid rank 3, rank should be in the interval "
                                         r"\[0, 2\]"):
        DistributedSampler(data, num_replicas=3, rank=3)
    with pytest.raises(ValueError, match="num_replicas must be a positive int"):
        DistributedSampler(data, num_replicas=0, rank=0)
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        DistributedSampler(data)  # no process group to ask


# ---------------------------------------------------------------------------------------------
# without a process group: errors, and import corrnet stays free of mpi4py
# ---------------------------------------------------------------------------------------------


def test_calls_before_init_process_group_say_so():
    assert not dist.is_initialized()
    for call in (dist.get_rank, dist.get_world_size, dist.barrier,
                 lambda: dist.all_reduce(corrnet.ones(2)),
                 lambda: dist.broadcast(corrnet.ones(2), src=0),
                 lambda: nn.parallel.DistributedDataParallel(nn.Linear(2, 2))):
        with pytest.raises(ValueError, match="Default process group has not been initialized, "
                                             "please make sure to call init_process_group"):
            call()


def test_init_process_group_refuses_other_backends_and_bad_timeouts():
    import datetime

    for backend in ("gloo", "nccl", "ucc"):
        with pytest.raises(ValueError, match=f"backend '{backend}' is not available in "
                                             "corrnet: its one backend is 'mpi'"):
            dist.init_process_group(backend)
    with pytest.raises(ValueError, match="init_method 'tcp://10.0.0.1:23456'"):
        dist.init_process_group("mpi", init_method="tcp://10.0.0.1:23456")
    with pytest.raises(TypeError, match="timeout must be a positive datetime.timedelta"):
        dist.init_process_group("mpi", timeout=30)
    with pytest.raises(TypeError, match="timeout must be a positive datetime.timedelta"):
        dist.init_process_group("mpi", timeout=datetime.timedelta(0))
    assert not dist.is_initialized()


def test_import_corrnet_does_not_import_mpi4py():
    code = ("import sys, corrnet, corrnet.distributed, corrnet.nn.parallel; "
            "from corrnet.nn.parallel import DistributedDataParallel as DDP; "
            "print('mpi4py' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_without_mpi4py_init_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)   # import mpi4py raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'corrnet\[mpi\]'"):
        dist.init_process_group("mpi")
    assert not dist.is_initialized()


# ---------------------------------------------------------------------------------------------
# the autograd pieces DDP stands on
# ---------------------------------------------------------------------------------------------


def _post_accumulate_calls(lib) -> list:
    """What a post-accumulate-grad hook sees over three backward passes (the last after the
    hook's removal), in corrnet or PyTorch (`lib`)."""
    w = lib.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
    ((w * 3).sum() + (w * w).sum()).backward()   # two paths into w: one call, with the sum
    (w * 2).sum().backward()                      # accumulated onto .grad
    handle.remove()
    (w * 2).sum().backward()
    with pytest.raises(RuntimeError, match="post accumulate grad hooks cannot be registered "
                                           "on non-leaf tensors"):
        (w * 2).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        lib.ones(2).register_post_accumulate_grad_hook(lambda t: None)
    return seen


def test_post_accumulate_grad_hook_sees_the_summed_gradient_once_as_pytorchs():
    torch = pytest.importorskip("torch")
    assert _post_accumulate_calls(corrnet) == _post_accumulate_calls(torch) == \
        [[5.0, 7.0], [7.0, 9.0]]


def test_queue_callback_runs_after_every_gradient_is_accumulated():
    from corrnet import autograd

    a = corrnet.ones(2, requires_grad=True)
    b = corrnet.ones(2, requires_grad=True)
    events = []

    def first(t):
        events.append("a ready")
        autograd.queue_callback(lambda: events.append(("done", a.grad.tolist(),
                                                       b.grad.tolist())))
        autograd.queue_callback(lambda: autograd.queue_callback(lambda: events.append("late")))

    a.register_post_accumulate_grad_hook(first)
    b.register_post_accumulate_grad_hook(lambda t: events.append("b ready"))
    (a * 2 + b * 3).sum().backward()
    assert sorted(events[:2]) == ["a ready", "b ready"]
    assert events[2:] == [("done", [2.0, 2.0], [3.0, 3.0]), "late"]
    with pytest.raises(RuntimeError, match="no backward pass is running"):
        autograd.queue_callback(lambda: None)
    (a * 2).sum().backward()  # callbacks of a pass do not leak into the next
    assert events[-2:] == [("done", [4.0, 4.0], [3.0, 3.0]), "late"]


def test_docstring_examples():
    from corrnet import autograd
    from corrnet.utils import data

    globs = {"corrnet": corrnet, "DistributedSampler": DistributedSampler}
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    finder = doctest.DocTestFinder()
    for target in (dist, autograd.queue_callback,
                   corrnet.Tensor.register_post_accumulate_grad_hook, data.DistributedSampler):
        for test in finder.find(target, globs=dict(globs)):
            runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
    assert runner.summarize(verbose=False).attempted >= 8


# ---------------------------------------------------------------------------------------------
# the benchmark's smoke run
# ---------------------------------------------------------------------------------------------


@needs_mpi
def test_ddp_benchmark_quick_prints_its_tables():
    done = subprocess.run([sys.executable, str(HERE.parent / "benchmarks" / "ddp.py"), "--quick"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(SRC)})
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "| ranks | threads/rank | examples/s |" in out
    rows = [line for line in out.splitlines() if line.startswith(("| 1 |", "| 2 |"))]
    assert len(rows) == 2 and "| 246,824 |" in rows[0]
    assert "| 64 KB |" in out and "| 1 MB |" in out and "CPU:" in out


def test_world_size_one_is_a_plain_wrapper(monkeypatch):
    # a group of one rank needs no MPI: a stand-in for the default group
    group = type("Group", (), {"rank": 0, "size": 1})()
    monkeypatch.setattr(dist, "_group", group)
    assert (dist.get_rank(), dist.get_world_size(), dist.is_initialized()) == (0, 1, True)
    corrnet.manual_seed(3)
    plain = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    wrapped_module = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    wrapped_module.load_state_dict(plain.state_dict())
    net = nn.parallel.DistributedDataParallel(wrapped_module)
    assert net.module is wrapped_module
    X = corrnet.randn(5, 4)
    (plain(X) ** 2).sum().backward()
    (net(X) ** 2).sum().backward()
    for p, q in zip(plain.parameters(), wrapped_module.parameters(), strict=True):
        assert np.array_equal(p.grad.numpy(), q.grad.numpy())
    state = net.state_dict()
    assert list(state) == ["module." + key for key in plain.state_dict()]
    net.load_state_dict(state)
    with net.no_sync():
        net(X).sum().backward()
    with pytest.raises(ValueError, match="device_ids and output_device must be None"):
        nn.parallel.DistributedDataParallel(plain, device_ids=[0])
    with pytest.raises(ValueError, match="bucket_cap_mb must be a positive number, got 0"):
        nn.parallel.DistributedDataParallel(plain, bucket_cap_mb=0)
    with pytest.raises(TypeError, match="module must be a corrnet.nn.Module, got function"):
        nn.parallel.DistributedDataParallel(lambda x: x)
