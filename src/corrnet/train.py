"""Training a classifier, as the book's ``train_ch6`` does, with the tools around a real run.

``fit(net, train_iter, test_iter, num_epochs, lr)`` trains with SGD and cross-entropy (or the
optimizer and loss you pass), shows a tqdm progress bar per epoch (loss, accuracy,
examples/s), records train loss, train accuracy and test accuracy per epoch, can plot them
to a PNG (matplotlib, ``pip install corrnet[plot]``) and can write a checkpoint after every
epoch (``corrnet.save``: an .npz, never a pickle, written atomically) that ``resume=True``
continues from, and ends with the book's two lines:

    loss 0.457, train acc 0.829, test acc 0.809
    18000.0 examples/sec on cpu
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import nn, optim
from .autograd import no_grad
from .serialization import load, new_file_mode, save
from .tensor import _rng


def accuracy(y_hat, y) -> int:
    """The number of rows of y_hat (N, classes) whose largest entry is at label y (N,)."""
    predicted = y_hat.detach().numpy().argmax(axis=1)
    return int((predicted == y.numpy()).sum())


def evaluate_accuracy(net, data_iter) -> float:
    """The fraction of examples of data_iter that net classifies correctly (in eval mode)."""
    was_training = net.training
    net.eval()
    correct = total = 0
    with no_grad():
        for X, y in data_iter:
            correct += accuracy(net(X), y)
            total += y.numel()
    net.train(was_training)
    return correct / max(total, 1)


@dataclass
class Epoch:
    """What one epoch measured."""

    epoch: int
    train_loss: float
    train_acc: float
    test_acc: float
    examples: int
    seconds: float  # of training (forward, backward and update), not of testing

    @property
    def examples_per_sec(self) -> float:
        return self.examples / max(self.seconds, 1e-12)


@dataclass
class History:
    """Per-epoch measurements of a run; the last one gives the book's summary."""

    epochs: list[Epoch] = field(default_factory=list)

    @property
    def last(self) -> Epoch:
        return self.epochs[-1]

    def summary(self) -> str:
        """The book's two closing lines."""
        e = self.last
        train_time = sum(x.seconds for x in self.epochs)
        examples = sum(x.examples for x in self.epochs)
        return (f"loss {e.train_loss:.3f}, train acc {e.train_acc:.3f}, test acc "
                f"{e.test_acc:.3f}\n{examples / max(train_time, 1e-12):.1f} examples/sec on cpu")


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------


def _architecture(net) -> dict:
    return {name: list(t.shape) for name, t in net.state_dict().items()}


def save_checkpoint(path, net, optimizer, epoch: int, history: History, scheduler=None) -> None:
    """Everything a run needs to continue after `epoch`: parameters and buffers, optimizer and
    scheduler state, the history so far and the random generator's state (so the data order
    of the remaining epochs is the same as in an uninterrupted run)."""
    save({
        "format": "corrnet-checkpoint-1",
        "epoch": epoch,
        "architecture": _architecture(net),
        "model": net.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "history": [asdict(e) for e in history.epochs],
        "rng": _rng().bit_generator.state,
    }, path)


def load_checkpoint(path, net, optimizer=None, scheduler=None) -> tuple[int, History]:
    """Restore what `save_checkpoint` wrote into net (and optimizer, scheduler); return the
    epoch it was written after and the history. A checkpoint of another architecture is
    refused with the parameters that differ."""
    state = load(path)
    if not isinstance(state, dict) or state.get("format") != "corrnet-checkpoint-1":
        raise RuntimeError(f"{path} is not a corrnet training checkpoint")
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
    net.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    _rng().bit_generator.state = state["rng"]
    history = History([Epoch(**e) for e in state["history"]])
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
    ax.plot(epochs, [e.train_loss for e in history.epochs], "-", label="train loss")
    ax.plot(epochs, [e.train_acc for e in history.epochs], "m--", label="train acc")
    ax.plot(epochs, [e.test_acc for e in history.epochs], "g-.", label="test acc")
    ax.set_xlabel("epoch")
    ax.set_xlim(0.5, max(epochs[-1], 1) + 0.5)
    ax.grid(True)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=100)
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)


# ---------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------


def _progress(total, desc, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=False, file=sys.stderr,
                dynamic_ncols=True)


def fit(net, train_iter, test_iter, num_epochs: int, lr: float | None = None, *,
        optimizer=None, loss=None, scheduler=None, checkpoint=None, resume: bool = False,
        plot=None, progress: bool = True, log=print) -> History:
    """Train `net` on `train_iter` for `num_epochs`, testing on `test_iter` after each epoch.

    Either `lr` (SGD with that learning rate, as the book) or an `optimizer`; `loss` defaults
    to cross-entropy; `scheduler` is stepped once per epoch. `checkpoint` (a path) is written
    after every epoch; with `resume=True` and an existing checkpoint, training continues after
    its epoch. `plot` (a path) gets a PNG of the curves after every epoch. `log` receives one
    line per epoch and the book's summary (``log=None`` is silent).

    Returns the History; ``history.summary()`` is the book's final two lines.
    """
    if optimizer is None:
        if lr is None:
            raise ValueError("fit: give either lr (for SGD) or an optimizer")
        optimizer = optim.SGD(net.parameters(), lr=lr)
    elif lr is not None:
        raise ValueError("fit: give lr or optimizer, not both")
    if not isinstance(num_epochs, int) or num_epochs < 0:
        raise ValueError(f"fit: num_epochs must be a non-negative int, got {num_epochs!r}")
    loss = loss if loss is not None else nn.CrossEntropyLoss()
    log = log or (lambda *args: None)
    history, done = History(), 0
    if resume and checkpoint is not None and Path(checkpoint).exists():
        done, history = load_checkpoint(checkpoint, net, optimizer, scheduler)
        log(f"resuming from {checkpoint} after epoch {done}")
    for epoch in range(done + 1, num_epochs + 1):
        net.train()
        total_loss, correct, seen = 0.0, 0, 0
        train_time = 0.0
        bar = _progress(len(train_iter), f"epoch {epoch}/{num_epochs}", progress)
        for X, y in train_iter:
            start = time.perf_counter()
            optimizer.zero_grad()
            y_hat = net(X)
            l = loss(y_hat, y)
            l.backward()
            optimizer.step()
            train_time += time.perf_counter() - start
            n = y.numel()
            total_loss += float(l) * n
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
        test_acc = evaluate_accuracy(net, test_iter)
        record = Epoch(epoch, total_loss / max(seen, 1), correct / max(seen, 1), test_acc,
                       seen, train_time)
        history.epochs.append(record)
        log(f"epoch {epoch}/{num_epochs}: loss {record.train_loss:.3f}, train acc "
            f"{record.train_acc:.3f}, test acc {record.test_acc:.3f}, "
            f"{record.examples_per_sec:.0f} examples/sec")
        if checkpoint is not None:
            save_checkpoint(checkpoint, net, optimizer, epoch, history, scheduler)
        if plot is not None:
            plot_history(history, plot)
    if history.epochs:
        log(history.summary())
    return history
