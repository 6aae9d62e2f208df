"""Training a classifier, as the book's ``train_ch6`` does, with the tools around a real run.

``fit(net, train_iter, test_iter, num_epochs, lr)`` trains with SGD and cross-entropy (or the
optimizer and loss you pass), shows a tqdm progress bar per epoch (loss, accuracy,
examples/s), records train loss, train accuracy and test accuracy per epoch, can plot them
to a PNG (matplotlib, ``pip install corrnet[plot]``) and can write a checkpoint after every
epoch (``corrnet.save``: an .npz, never a pickle, written atomically) that ``resume=True``
continues from, and ends with the book's two lines:

    loss 0.457, train acc 0.829, test acc 0.809
    18000.0 examples/sec on cpu

``fit(..., device='cuda')`` trains on a GPU as the book's ``train_ch6(..., d2l.try_gpu())``:
the network is moved there once and every batch as it comes (``non_blocking=True``).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from . import devices, nn, optim
from .autograd import no_grad
from .serialization import LoadError, atomic_write, load, save
from .tensor import Tensor, _rng


class NonFiniteError(FloatingPointError):
    """Training produced a NaN or infinite loss, gradient or parameter (see `fit`)."""


def accuracy(y_hat, y) -> int:
    """The number of rows of y_hat (N, classes) whose largest entry is at label y (N,),
    counted on their device (one number comes back to the host)."""
    predicted = y_hat.detach().argmax(dim=1)
    return int((predicted == y.to(predicted.dtype)).sum().item())


def evaluate_accuracy(net, data_iter, device=None) -> float:
    """The fraction of examples of data_iter that net classifies correctly (in eval mode);
    with a `device`, each batch is moved there first (the book's ``evaluate_accuracy_gpu``)."""
    correct, total = _count_correct(net, data_iter, device)
    return correct / max(total, 1)


def _count_correct(net, data_iter, device=None) -> tuple[int, int]:
    """(correct, total) of net's predictions on data_iter, in eval mode, each batch moved to
    `device` first where one is given."""
    was_training = net.training
    net.eval()
    correct = total = 0
    with no_grad():
        for X, y in data_iter:
            if device is not None:
                X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
            correct += accuracy(net(X), y)
            total += y.numel()
    net.train(was_training)
    return correct, total


def _process_group():
    """(rank, world size) when a corrnet.distributed process group of more than one rank is
    running, else None (mpi4py is not imported for the question)."""
    from . import distributed

    if not distributed.is_initialized() or distributed.get_world_size() == 1:
        return None
    return distributed.get_rank(), distributed.get_world_size()


def _sum_over_ranks(values, op="SUM") -> list[float]:
    """`values` (numbers) summed (or maximized) over the ranks, as float64."""
    from . import distributed
    from .tensor import from_numpy

    t = from_numpy(np.array(values, dtype=np.float64))
    distributed.all_reduce(t, op=getattr(distributed.ReduceOp, op))
    return t.tolist()


@dataclass
class Epoch:
    """What one epoch measured."""

    epoch: int
    train_loss: float
    train_acc: float
    test_acc: float
    examples: int
    seconds: float  # of training (forward, backward and update), not of testing
    skipped: int = 0  # batches skipped for a non-finite loss or gradient (on_nonfinite="skip")

    @property
    def examples_per_sec(self) -> float:
        return self.examples / max(self.seconds, 1e-12)


@dataclass
class History:
    """Per-epoch measurements of a run; the last one gives the book's summary."""

    epochs: list[Epoch] = field(default_factory=list)
    device: str = "cpu"  # where the network trained, for the summary's last line

    @property
    def last(self) -> Epoch:
        return self.epochs[-1]

    def summary(self) -> str:
        """The book's two closing lines."""
        e = self.last
        train_time = sum(x.seconds for x in self.epochs)
        examples = sum(x.examples for x in self.epochs)
        return (f"loss {e.train_loss:.3f}, train acc {e.train_acc:.3f}, test acc "
                f"{e.test_acc:.3f}\n{examples / max(train_time, 1e-12):.1f} examples/sec on "
                f"{self.device}")


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------


def _architecture(net) -> dict:
    return {name: list(t.shape) for name, t in net.state_dict().items()}


def save_checkpoint(path, net, optimizer, epoch: int, history: History, scheduler=None,
                    network: dict | None = None) -> None:
    """Everything a run needs to continue after `epoch`: parameters and buffers, optimizer and
    scheduler state, the history so far and the random generator's state (so the data order
    of the remaining epochs is the same as in an uninterrupted run). `network`
    (`corrnet.models.describe`) names the architecture, so that `corrnet.models.
    from_checkpoint` and ``corrnet show`` can rebuild the network without code."""
    entries = {} if network is None else {"network": network}
    save({
        "format": "corrnet-checkpoint-1",
        "epoch": epoch,
        "architecture": _architecture(net),
        "model": net.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "history": [asdict(e) for e in history.epochs],
        "rng": _rng().bit_generator.state,
        **entries,
    }, path)


def _nonfinite(tensors) -> list[str]:
    """The names of the floating point tensors in `tensors` (name -> tensor) holding a NaN or
    an infinity."""
    return [name for name, t in tensors
            if isinstance(t, Tensor) and t.is_floating_point()
            and not np.isfinite(t._data).all()]


def _optimizer_tensors(state: dict):
    """(name, tensor) for every tensor in an optimizer state dict's 'state'."""
    for index, entries in state.get("state", {}).items():
        if isinstance(entries, Mapping):
            for key, value in entries.items():
                yield f"optimizer state[{index}][{key!r}]", value


def _check_checkpoint(path, state, net, optimizer, scheduler) -> None:
    """Raise LoadError naming the file and the entry unless `state` is a complete, finite
    checkpoint for `net` (and optimizer, scheduler)."""
    def refuse(problem):
        raise LoadError(f"checkpoint {path}: {problem}")

    if not isinstance(state, dict) or state.get("format") != "corrnet-checkpoint-1":
        raise RuntimeError(f"{path} is not a corrnet training checkpoint")
    kinds = {"epoch": int, "architecture": dict, "model": dict, "optimizer": dict,
             "history": list, "rng": dict}
    for key, kind in kinds.items():
        if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            refuse(f"the entry {key!r} is missing or is not a {kind.__name__}")
    if state["epoch"] < 0:
        refuse(f"'epoch' is {state['epoch']}")
    if not (state.get("scheduler") is None or isinstance(state["scheduler"], dict)):
        refuse("the entry 'scheduler' is neither None nor a dict")
    if not (state.get("network") is None or isinstance(state["network"], dict)):
        refuse("the entry 'network' is neither absent nor a dict")
    names = {f.name for f in fields(Epoch)}
    for i, record in enumerate(state["history"]):
        if (not isinstance(record, dict) or not names - {"skipped"} <= set(record) <= names
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           for v in record.values())):
            refuse(f"history[{i}] is not an epoch record ({sorted(names)})")
    bad = _nonfinite(state["model"].items())
    if bad:
        refuse(f"the parameters {bad[:5]} hold NaN or infinite values; it cannot be resumed "
               "(delete it to start again, or resume from an earlier copy)")
    bad = _nonfinite(_optimizer_tensors(state["optimizer"]))
    if bad:
        refuse(f"the {bad[:5]} hold NaN or infinite values")
    if scheduler is not None and state.get("scheduler") is not None:
        mine, theirs = scheduler.state_dict(), state["scheduler"]
        if set(mine) != set(theirs):
            refuse(f"the scheduler state has the entries {sorted(theirs)}, but "
                   f"{type(scheduler).__name__} has {sorted(mine)}")
    try:
        probe = type(_rng().bit_generator)()
        probe.state = state["rng"]
    except (TypeError, ValueError, KeyError) as err:
        refuse(f"the random generator state is not valid ({err})")


def load_checkpoint(path, net, optimizer=None, scheduler=None) -> tuple[int, History]:
    """Restore what `save_checkpoint` wrote into net (and optimizer, scheduler); return the
    epoch it was written after and the history. A checkpoint of another architecture is
    refused with the parameters that differ.

    Everything is checked before anything is restored: a damaged or tampered checkpoint (a
    missing entry, NaN or infinite weights, an optimizer or scheduler state that does not
    fit) raises `LoadError` naming the file and the entry, and leaves net, optimizer,
    scheduler and the random generator as they were."""
    state = load(path, map_location="cpu")  # load_state_dict copies to the net's device
    _check_checkpoint(path, state, net, optimizer, scheduler)
    mine, theirs = _architecture(net), state["architecture"]
    if mine != theirs:
        missing = sorted(set(mine) - set(theirs))
        unexpected = sorted(set(theirs) - set(mine))
        resized = [f"{k}: checkpoint {theirs[k]} vs model {mine[k]}"
                   for k in sorted(set(mine) & set(theirs)) if mine[k] != theirs[k]]
        raise RuntimeError(
            f"checkpoint {path} was written for a different network: missing in the checkpoint "
            f"{missing or 'none'}; not in the model {unexpected or 'none'}; different shapes "
            f"{resized or 'none'}. Start a new run (another output directory) or pick the "
            "model the checkpoint was trained with.")
    try:
        optimizer_state = (optimizer._prepare_load(state["optimizer"])
                           if optimizer is not None else None)
    except (TypeError, ValueError, KeyError) as err:
        raise LoadError(f"checkpoint {path}: its optimizer state does not fit: {err}") from None
    history = History([Epoch(**e) for e in state["history"]])
    try:
        net.load_state_dict(state["model"])  # checks every entry before it copies any
    except (TypeError, RuntimeError) as err:
        raise LoadError(f"checkpoint {path}: its model state does not fit: {err}") from None
    # checked above: nothing below can fail
    if optimizer is not None:
        optimizer.state, optimizer.param_groups = optimizer_state
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    _rng().bit_generator.state = state["rng"]
    return int(state["epoch"]), history


# ---------------------------------------------------------------------------------------------
# the plot
# ---------------------------------------------------------------------------------------------


def plot_history(history: History, path) -> None:
    """Train loss, train accuracy and test accuracy per epoch, as a PNG (written atomically)."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("plotting needs matplotlib: pip install 'corrnet[plot]'") from exc
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    epochs = [e.epoch for e in history.epochs]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    # markers, so that a run of one epoch (a single point per curve) still shows its values
    ax.plot(epochs, [e.train_loss for e in history.epochs], "o-", label="train loss")
    ax.plot(epochs, [e.train_acc for e in history.epochs], "m^--", label="train acc")
    ax.plot(epochs, [e.test_acc for e in history.epochs], "gs-.", label="test acc")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))  # whole epochs
    ax.set_xlim(0.5, max(epochs[-1], 1) + 0.5)
    ax.grid(True)
    ax.legend()
    fig.tight_layout()
    try:
        with atomic_write(path) as file:
            fig.savefig(file, format="png", dpi=100)
    finally:
        plt.close(fig)


# ---------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------


def _progress(total, desc, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=False, file=sys.stderr,
                dynamic_ncols=True)


_ON_NONFINITE = ("raise", "skip")


def _first_nonfinite_gradient(named_params) -> str | None:
    for name, p in named_params:
        if p.grad is not None and p.grad.is_floating_point() and \
                not np.isfinite(p.grad._data).all():
            return name
    return None


def fit(net, train_iter, test_iter, num_epochs: int, lr: float | None = None, *,
        optimizer=None, loss=None, scheduler=None, checkpoint=None, resume: bool = False,
        plot=None, progress: bool = True, log=print, on_nonfinite: str = "raise",
        network: dict | None = None, device=None) -> History:
    """Train `net` on `train_iter` for `num_epochs`, testing on `test_iter` after each epoch.

    Either `lr` (SGD with that learning rate, as the book) or an `optimizer`; `loss` defaults
    to cross-entropy; `scheduler` is stepped once per epoch. `checkpoint` (a path) is written
    after every epoch; with `resume=True` and an existing checkpoint, training continues after
    its epoch. `plot` (a path) gets a PNG of the curves after every epoch. `log` receives one
    line per epoch and the book's summary (``log=None`` is silent). `network`
    (`corrnet.models.describe`) is written into each checkpoint to name the architecture.
    `device` (``'cpu'``, ``'cuda'``, ``'cuda:N'``; None: where the network's parameters are)
    is where training runs: the network is moved there before the optimizer is made, and each
    batch as it comes.

    A batch whose loss or gradients hold a NaN or an infinity never updates the parameters.
    With ``on_nonfinite="raise"`` (the default) training stops there with `NonFiniteError`
    naming the epoch and the step; with ``on_nonfinite="skip"`` the batch is skipped (counted
    in the epoch's ``skipped`` and its log line) and training goes on. A checkpoint is only
    written when every parameter is finite, so the last good one always survives.

    Data-parallel (a `corrnet.distributed` process group of N ranks, `net` wrapped in
    `corrnet.nn.parallel.DistributedDataParallel`, each rank's `train_iter` its share of each
    batch, e.g. through `corrnet.utils.data.DistributedSampler`, and `test_iter` its share of
    the test set): the loss, accuracies and example counts logged are those of all ranks
    together (summed over the ranks), examples/s counts every rank's examples over the slowest
    rank's time, only rank 0 writes the checkpoint and the plot, and a checkpoint holds the
    wrapped module's state (its keys without ``module.``), so a single process can resume it.
    Every rank reads the checkpoint to resume. A sampler with ``set_epoch`` (a
    DistributedSampler) is told the epoch (1, 2, ...) before each epoch.

    Returns the History; ``history.summary()`` is the book's final two lines.
    """
    if device is not None:
        device = devices.as_device(device, "fit(device=...)")
        net.to(device)
    else:
        device = next((p.device for p in net.parameters()), devices.CPU)
    if optimizer is None:
        if lr is None:
            raise ValueError("fit: give either lr (for SGD) or an optimizer")
        optimizer = optim.SGD(net.parameters(), lr=lr)
    elif lr is not None:
        raise ValueError("fit: give lr or optimizer, not both")
    if not isinstance(num_epochs, int) or num_epochs < 0:
        raise ValueError(f"fit: num_epochs must be a non-negative int, got {num_epochs!r}")
    if on_nonfinite not in _ON_NONFINITE:
        raise ValueError(f"fit: on_nonfinite must be one of {_ON_NONFINITE}, got "
                         f"{on_nonfinite!r}")
    loss = loss if loss is not None else nn.CrossEntropyLoss()
    log = log or (lambda *args: None)
    from .nn.parallel import DistributedDataParallel

    model = net.module if isinstance(net, DistributedDataParallel) else net  # to save, test
    ranks = _process_group()
    writes = ranks is None or ranks[0] == 0   # the one rank that writes files
    history, done = History(device=str(device)), 0
    if resume and checkpoint is not None and Path(checkpoint).exists():
        done, history = load_checkpoint(checkpoint, model, optimizer, scheduler)
        history.device = str(device)
        log(f"resuming from {checkpoint} after epoch {done}")
    named_params = list(model.named_parameters())
    sampler = getattr(train_iter, "sampler", None)
    last_saved = (f"the checkpoint {checkpoint} holds epoch {done}" if done else
                  "no checkpoint was written yet")

    def stop(problem, epoch, step):
        return NonFiniteError(
            f"fit: {problem} at epoch {epoch}, step {step} of {len(train_iter)}; the "
            f"parameters were not updated with it ({last_saved}). Lower the learning rate, "
            "check the data for NaN or inf, or pass on_nonfinite='skip' to skip such batches.")

    for epoch in range(done + 1, num_epochs + 1):
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        net.train()
        total_loss, correct, seen, skipped = 0.0, 0, 0, 0
        train_time = 0.0
        bar = _progress(len(train_iter), f"epoch {epoch}/{num_epochs}", progress)
        for step, (X, y) in enumerate(train_iter, 1):
            start = time.perf_counter()
            if X.device != device:
                X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
            optimizer.zero_grad()
            y_hat = net(X)
            l = loss(y_hat, y)
            value = float(l)
            problem = None
            if not math.isfinite(value):
                problem = f"the loss is {value}"
            if problem is None or ranks is not None:
                # data-parallel: every rank runs the backward pass (its all-reduce waits for
                # them all); a rank's non-finite loss makes everyone's averaged gradient
                # non-finite, so all ranks skip (or stop at) the same step
                l.backward()
                bad = _first_nonfinite_gradient(named_params)
                if bad is not None and problem is None:
                    problem = f"the gradient of {bad} holds NaN or inf (the loss is {value:.4g})"
            if problem is not None:
                if on_nonfinite == "raise":
                    if bar is not None:
                        bar.close()
                    raise stop(problem, epoch, step)
                optimizer.zero_grad()
                skipped += 1
                train_time += time.perf_counter() - start
                continue
            optimizer.step()
            train_time += time.perf_counter() - start
            n = y.numel()
            total_loss += value * n
            correct += accuracy(y_hat, y)
            seen += n
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}",
                                ex_s=f"{seen / max(train_time, 1e-12):.0f}", refresh=False)
        if bar is not None:
            bar.close()
        if scheduler is not None:
            scheduler.step()
        test_correct, test_total = _count_correct(model, test_iter, device)
        if ranks is not None:  # all ranks' figures together
            total_loss, correct, seen, skipped, test_correct, test_total = _sum_over_ranks(
                [total_loss, correct, seen, skipped, test_correct, test_total])
            correct, seen, skipped = int(correct), int(seen), int(skipped)
            (train_time,) = _sum_over_ranks([train_time], "MAX")
        test_acc = test_correct / max(test_total, 1)
        record = Epoch(epoch, total_loss / max(seen, 1), correct / max(seen, 1), test_acc,
                       seen, train_time, skipped)
        history.epochs.append(record)
        note = f", skipped {skipped} batches with a non-finite loss or gradient" if skipped \
            else ""
        log(f"epoch {epoch}/{num_epochs}: loss {record.train_loss:.3f}, train acc "
            f"{record.train_acc:.3f}, test acc {record.test_acc:.3f}, "
            f"{record.examples_per_sec:.0f} examples/sec{note}")
        if checkpoint is not None and writes:
            bad = _nonfinite(model.state_dict().items())
            if bad:
                raise NonFiniteError(f"fit: after epoch {epoch} the parameters {bad[:5]} hold "
                                     f"NaN or inf; the checkpoint was not written "
                                     f"({last_saved})")
            save_checkpoint(checkpoint, model, optimizer, epoch, history, scheduler, network)
            last_saved = f"the checkpoint {checkpoint} holds epoch {epoch}"
        if plot is not None and writes:
            plot_history(history, plot)
    if history.epochs:
        log(history.summary())
    return history
