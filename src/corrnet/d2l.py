"""The book's helpers: ``from corrnet import d2l`` replaces ``from d2l import torch as d2l``.

Both editions of *Dive into Deep Learning* are covered:

- classic (d2l 0.17): ``corr2d``, ``train_ch6``, ``evaluate_accuracy_gpu``, ``accuracy``,
  ``Accumulator``, ``Timer``, ``Animator``, ``try_gpu``, ``try_all_gpus``,
  ``load_data_fashion_mnist(batch_size, resize=None)``, ``plot``, ``show_images``,
  ``use_svg_display``, ``set_figsize``, ``set_axes``, ``get_fashion_mnist_labels``,
  ``Residual(input_channels, num_channels, ...)``;
- 1.0: ``HyperParameters.save_hyperparameters``, ``add_to_class``, ``ProgressBoard``,
  ``Module``, ``Classifier`` (with ``layer_summary``), ``DataModule``,
  ``FashionMNIST(batch_size, resize)``, ``Trainer(max_epochs, num_gpus)``, ``SGD``,
  ``init_cnn``, ``cpu``, ``gpu``, ``num_gpus``, ``LeNet``, ``Residual(num_channels, ...)``,
  ``ResNeXtBlock`` (the last three build from ``nn.LazyConv2d`` as the book does);

and the d2l package's tensor aliases (``d2l.reshape``, ``d2l.numpy``, ``d2l.concat``, ...).
They print and return what the d2l package's do. The GPU helpers answer from
``corrnet.cuda`` (CuPy's GPUs, or the stand-in devices of ``CORRNET_STANDIN_CUDA``): without
one, as d2l does on a CPU-only PyTorch (``try_gpu()`` is ``device(type='cpu')``,
``num_gpus()`` is 0); with them, ``try_gpu()`` is ``device(type='cuda', index=0)``.

Plots. The book's figures are drawn with matplotlib. In Jupyter they show inline, as the
book's; anywhere else each kind of figure is written as a PNG, overwritten as it is redrawn:
``d2l-plot.png`` (``plot``), ``d2l-images.png`` (``show_images``), ``d2l-animator.png``
(``Animator``, so ``train_ch6``), ``d2l-progress.png`` (``ProgressBoard``, so
``Trainer.fit``), in the folder ``$CORRNET_PLOTS`` (the working directory when it is unset;
``CORRNET_PLOTS=off`` draws nothing). Without matplotlib, training runs all the same and
says once that plots are off.

The data: ``load_data_fashion_mnist`` and ``FashionMNIST`` read the real Fashion-MNIST files
through ``corrnet.datasets`` (``$CORRNET_DATA``, the user cache, Debian's copy, else a
verified download), resized exactly as torchvision's ``Resize`` on a PIL image.

>>> from corrnet import d2l
>>> d2l.try_gpu(), d2l.num_gpus()
(device(type='cpu'), 0)
"""

from __future__ import annotations

import collections
import inspect
import os
import sys
import time
from pathlib import Path

import numpy as np

import corrnet as torch

from . import datasets as _datasets
from . import models as _models
from . import nn
from .nn import functional as F
from .utils import data as _data

# -- plotting ---------------------------------------------------------------------------------

_warned_no_plots = False
_FILE_NAMES = {"plot": "d2l-plot.png", "images": "d2l-images.png",
               "animator": "d2l-animator.png", "progress": "d2l-progress.png"}


def _in_notebook() -> bool:
    """True in a Jupyter kernel (where figures display inline)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except AttributeError:
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def _plots_off() -> bool:
    return os.environ.get("CORRNET_PLOTS", "").strip().lower() == "off"


def _pyplot():
    """matplotlib.pyplot, or None (saying once that plots are off) without matplotlib."""
    global _warned_no_plots
    try:
        from matplotlib import pyplot
    except ImportError:
        if not _warned_no_plots:
            print("corrnet.d2l: matplotlib is not installed, plots are off "
                  "(pip install 'corrnet[plot]')")
            _warned_no_plots = True
        return None
    return pyplot


def plot_path(kind: str) -> Path:
    """Where a figure of `kind` ('plot', 'images', 'animator', 'progress') is written outside
    Jupyter: ``$CORRNET_PLOTS/d2l-<kind>.png``, else in the working directory."""
    folder = os.environ.get("CORRNET_PLOTS", "") or "."
    return Path(folder) / _FILE_NAMES[kind]


def _show(fig, kind: str, clear: bool = False) -> None:
    """Display `fig` inline in Jupyter (replacing the previous frame when `clear`), or write
    it to its PNG file elsewhere."""
    if fig is None or _plots_off():
        return
    if _in_notebook():
        from IPython import display

        display.display(fig)
        if clear:
            display.clear_output(wait=True)
        return
    path = plot_path(kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def __getattr__(name):
    # d2l.plt: matplotlib.pyplot, imported when a cell first reaches for it
    if name == "plt":
        pyplot = _pyplot()
        if pyplot is None:
            raise AttributeError("d2l.plt needs matplotlib: pip install 'corrnet[plot]'")
        return pyplot
    if name == "display":
        from IPython import display

        return display
    raise AttributeError(f"module 'corrnet.d2l' has no attribute {name!r}")


def use_svg_display() -> None:
    """Draw inline figures as SVG in Jupyter (nothing to do elsewhere)."""
    if _in_notebook():
        try:
            from matplotlib_inline import backend_inline

            backend_inline.set_matplotlib_formats("svg")
        except ImportError:  # pragma: no cover - old IPython
            pass


def set_figsize(figsize=(3.5, 2.5)) -> None:
    """Set matplotlib's default figure size."""
    use_svg_display()
    pyplot = _pyplot()
    if pyplot is not None:
        pyplot.rcParams["figure.figsize"] = figsize


def set_axes(axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend) -> None:
    """Labels, limits, scales, legend and grid of matplotlib axes."""
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_xscale(xscale)
    axes.set_yscale(yscale)
    axes.set_xlim(xlim)
    axes.set_ylim(ylim)
    if legend:
        axes.legend(legend)
    axes.grid()


def _numeric(values):
    """Tensors become NumPy arrays for matplotlib."""
    if isinstance(values, torch.Tensor):
        return values.detach().numpy()
    return values


def plot(X, Y=None, xlabel=None, ylabel=None, legend=None, xlim=None, ylim=None,
         xscale="linear", yscale="linear", fmts=("-", "m--", "g-.", "r:"), figsize=(3.5, 2.5),
         axes=None):
    """Plot one or several curves: ``plot(x, [f(x), g(x)], 'x', 'f(x)', legend=[...])``;
    ``plot(y)`` plots against the index."""
    legend = [] if legend is None else legend
    set_figsize(figsize)
    pyplot = _pyplot()
    if pyplot is None:
        return
    axes = axes if axes else pyplot.gca()

    def has_one_axis(values):
        return (hasattr(values, "ndim") and values.ndim == 1
                or isinstance(values, list) and not hasattr(values[0], "__len__"))

    if has_one_axis(X):
        X = [X]
    if Y is None:
        X, Y = [[]] * len(X), X
    elif has_one_axis(Y):
        Y = [Y]
    if len(X) != len(Y):
        X = X * len(Y)
    axes.cla()
    for x, y, fmt in zip(X, Y, fmts, strict=False):
        x, y = _numeric(x), _numeric(y)
        if len(x):
            axes.plot(x, y, fmt)
        else:
            axes.plot(y, fmt)
    set_axes(axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend)
    if not _in_notebook():  # Jupyter shows the current figure at the end of the cell
        _show(axes.figure, "plot")


def show_images(imgs, num_rows, num_cols, titles=None, scale=1.5):
    """A grid of images (tensors (H, W) or (H, W, C), arrays or PIL images) with titles;
    returns the axes (None without matplotlib)."""
    pyplot = _pyplot()
    if pyplot is None:
        return None
    figsize = (num_cols * scale, num_rows * scale)
    fig, axes = pyplot.subplots(num_rows, num_cols, figsize=figsize)
    axes = np.asarray(axes).flatten()
    for i, (ax, img) in enumerate(zip(axes, imgs, strict=False)):
        ax.imshow(_numeric(img))
        ax.axes.get_xaxis().set_visible(False)
        ax.axes.get_yaxis().set_visible(False)
        if titles:
            ax.set_title(titles[i])
    if not _in_notebook():
        _show(fig, "images")
    return axes


# -- classic edition: timing, counting, animation ------------------------------------------


class Timer:
    """Record several running times: ``start()``, ``stop()`` (returns the last), ``avg()``,
    ``sum()``, ``cumsum()``."""

    def __init__(self):
        self.times = []
        self.start()

    def start(self) -> None:
        self.tik = time.time()

    def stop(self) -> float:
        self.times.append(time.time() - self.tik)
        return self.times[-1]

    def avg(self) -> float:
        return sum(self.times) / len(self.times)

    def sum(self) -> float:
        return sum(self.times)

    def cumsum(self) -> list:
        return np.array(self.times).cumsum().tolist()


class Accumulator:
    """Sums over `n` variables: ``add(a, b, ...)``, ``metric[i]``, ``reset()``.

    >>> m = Accumulator(2); m.add(1, 2.5); m.add(3, 1); m[0], m[1]
    (4.0, 3.5)
    """

    def __init__(self, n: int):
        self.data = [0.0] * n

    def add(self, *args) -> None:
        self.data = [a + float(b) for a, b in zip(self.data, args, strict=False)]

    def reset(self) -> None:
        self.data = [0.0] * len(self.data)

    def __getitem__(self, idx):
        return self.data[idx]


class Animator:
    """Curves redrawn as points are added (``add(x, [y1, y2, ...])``, None skips a curve),
    inline in Jupyter, to ``d2l-animator.png`` elsewhere (see the module docstring)."""

    def __init__(self, xlabel=None, ylabel=None, legend=None, xlim=None, ylim=None,
                 xscale="linear", yscale="linear", fmts=("-", "m--", "g-.", "r:"), nrows=1,
                 ncols=1, figsize=(3.5, 2.5)):
        legend = [] if legend is None else legend
        use_svg_display()
        pyplot = _pyplot()
        self.fig, self.axes = (None, None) if pyplot is None else \
            pyplot.subplots(nrows, ncols, figsize=figsize)
        if nrows * ncols == 1 and self.axes is not None:
            self.axes = [self.axes]
        self.config_axes = lambda: set_axes(self.axes[0], xlabel, ylabel, xlim, ylim, xscale,
                                            yscale, legend)
        self.X, self.Y, self.fmts = None, None, fmts

    def add(self, x, y) -> None:
        if not hasattr(y, "__len__"):
            y = [y]
        n = len(y)
        if not hasattr(x, "__len__"):
            x = [x] * n
        if not self.X:
            self.X = [[] for _ in range(n)]
        if not self.Y:
            self.Y = [[] for _ in range(n)]
        for i, (a, b) in enumerate(zip(x, y, strict=False)):
            if a is not None and b is not None:
                self.X[i].append(a)
                self.Y[i].append(float(b))
        if self.fig is None:
            return
        self.axes[0].cla()
        for xs, ys, fmt in zip(self.X, self.Y, self.fmts, strict=False):
            self.axes[0].plot(xs, ys, fmt)
        self.config_axes()
        _show(self.fig, "animator", clear=True)


# -- classic edition: devices, data, training -----------------------------------------------


def cpu():
    """The CPU device."""
    return torch.device("cpu")


def gpu(i: int = 0):
    """The i-th GPU's device (whether or not it exists: `try_gpu` checks)."""
    return torch.device(f"cuda:{i}")


def num_gpus() -> int:
    """How many GPUs corrnet can use (``corrnet.cuda.device_count()``)."""
    return torch.cuda.device_count()


def try_gpu(i: int = 0):
    """GPU i if it exists, else the CPU."""
    if num_gpus() >= i + 1:
        return gpu(i)
    return cpu()


def try_all_gpus() -> list:
    """Every GPU, or [cpu] when there is none."""
    return [gpu(i) for i in range(num_gpus())] or [cpu()]


def corr2d(X, K):
    """2-D cross-correlation of a matrix X with a kernel K (``corrnet.corr2d``), in the default
    dtype (float32) whatever the dtypes of X and K: the d2l package's loop fills a
    ``zeros`` tensor, so integer or float64 inputs give float32 there too."""
    return torch.corr2d(X, K).to(torch.get_default_dtype())


def get_dataloader_workers() -> int:
    """The book's number of loader processes (corrnet loads in the calling process)."""
    return 4


_TEXT_LABELS = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                "sneaker", "bag", "ankle boot"]


def get_fashion_mnist_labels(labels) -> list:
    """The text names of Fashion-MNIST's numeric labels."""
    return [_TEXT_LABELS[int(i)] for i in labels]


def load_data_fashion_mnist(batch_size, resize=None):
    """(train_iter, test_iter): Fashion-MNIST DataLoaders of (N, 1, H, W) float32 images in
    [0, 1] and int64 labels, the training one shuffled; `resize` as torchvision's Resize
    (``resize=96`` gives (batch, 1, 96, 96))."""
    return _datasets.load_data_fashion_mnist(batch_size, resize=resize)


def accuracy(y_hat, y) -> float:
    """The number of correct predictions (as a float, as the book's): the highest score's
    class (argmax over dim 1) compared with y in y's dtype, summed. Tensors on the CPU are
    counted on their arrays (four NumPy calls instead of six tensor ops: the book's loop calls
    this once a batch, issue 13's per-batch overhead); others, and anything else, as the
    book does it."""
    predicted, labels = getattr(y_hat, "_data", None), getattr(y, "_data", None)
    if type(predicted) is np.ndarray and type(labels) is np.ndarray:
        if predicted.ndim > 1 and predicted.shape[1] > 1:
            predicted = predicted.argmax(axis=1)
        return float((predicted.astype(labels.dtype) == labels).sum())
    if len(y_hat.shape) > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(axis=1)
    cmp = y_hat.type(y.dtype) == y
    return float(cmp.type(y.dtype).sum())


def evaluate_accuracy(net, data_iter) -> float:
    """The accuracy of `net` on `data_iter` (eval mode for a Module)."""
    if isinstance(net, nn.Module):
        net.eval()
    metric = Accumulator(2)
    with torch.no_grad():
        for X, y in data_iter:
            metric.add(accuracy(net(X), y), y.numel())
    return metric[0] / metric[1]


def evaluate_accuracy_gpu(net, data_iter, device=None) -> float:
    """The accuracy of `net` on `data_iter`, on `device` (the net's by default)."""
    if isinstance(net, nn.Module):
        net.eval()
        if not device:
            device = next(iter(net.parameters())).device
    metric = Accumulator(2)
    with torch.no_grad():
        for X, y in data_iter:
            X = [x.to(device) for x in X] if isinstance(X, list) else X.to(device)
            y = y.to(device)
            metric.add(accuracy(net(X), y), y.numel())
    return metric[0] / metric[1]


def train_ch6(net, train_iter, test_iter, num_epochs, lr, device=None):
    """The book's chapter-6 training loop: Xavier-uniform weights for every Linear and Conv2d,
    SGD with `lr`, cross-entropy; the curves are animated (train loss and accuracy five times
    an epoch, test accuracy after each) and the last epoch's numbers are printed:

        training on cpu
        loss 0.469, train acc 0.823, test acc 0.779
        55296.3 examples/sec on cpu
    """
    device = cpu() if device is None else device

    def init_weights(m):
        if type(m) is nn.Linear or type(m) is nn.Conv2d:
            nn.init.xavier_uniform_(m.weight)

    net.apply(init_weights)
    print("training on", device)
    net.to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loss = nn.CrossEntropyLoss()
    animator = Animator(xlabel="epoch", xlim=[1, num_epochs],
                        legend=["train loss", "train acc", "test acc"])
    timer, num_batches = Timer(), len(train_iter)
    train_l = train_acc = test_acc = float("nan")
    metric = Accumulator(3)
    for epoch in range(num_epochs):
        metric = Accumulator(3)  # sum of loss, number correct, number of examples
        net.train()
        for i, (X, y) in enumerate(train_iter):
            timer.start()
            optimizer.zero_grad()
            X, y = X.to(device), y.to(device)
            y_hat = net(X)
            l = loss(y_hat, y)
            l.backward()
            optimizer.step()
            with torch.no_grad():
                metric.add(l * X.shape[0], accuracy(y_hat, y), X.shape[0])
            timer.stop()
            train_l = metric[0] / metric[2]
            train_acc = metric[1] / metric[2]
            if (i + 1) % max(num_batches // 5, 1) == 0 or i == num_batches - 1:
                animator.add(epoch + (i + 1) / num_batches, (train_l, train_acc, None))
        test_acc = evaluate_accuracy_gpu(net, test_iter)
        animator.add(epoch + 1, (None, None, test_acc))
    print(f"loss {train_l:.3f}, train acc {train_acc:.3f}, test acc {test_acc:.3f}")
    print(f"{metric[2] * num_epochs / timer.sum():.1f} examples/sec on {device}")


# -- 1.0 edition: the object-oriented design ---------------------------------------------------


def add_to_class(Class):
    """Decorator: add the decorated function to `Class` as a method (after the fact)."""
    def wrapper(obj):
        setattr(Class, obj.__name__, obj)
    return wrapper


class HyperParameters:
    """``save_hyperparameters()`` in an ``__init__`` stores its arguments as attributes (and in
    ``self.hparams``), except those in `ignore` and names starting with an underscore."""

    def save_hyperparameters(self, ignore=()):
        frame = inspect.currentframe().f_back
        _, _, _, local_vars = inspect.getargvalues(frame)
        skip = set(ignore) | {"self"}
        self.hparams = {k: v for k, v in local_vars.items()
                        if k not in skip and not k.startswith("_")}
        for k, v in self.hparams.items():
            setattr(self, k, v)


class ProgressBoard(HyperParameters):
    """Points plotted as an animation: ``draw(x, y, label, every_n)`` averages every
    `every_n` points of a curve into one (inline in Jupyter, ``d2l-progress.png``
    elsewhere)."""

    def __init__(self, xlabel=None, ylabel=None, xlim=None, ylim=None, xscale="linear",
                 yscale="linear", ls=("-", "--", "-.", ":"), colors=("C0", "C1", "C2", "C3"),
                 fig=None, axes=None, figsize=(3.5, 2.5), display=True):
        self.save_hyperparameters()

    def draw(self, x, y, label, every_n=1):
        Point = collections.namedtuple("Point", ["x", "y"])
        if not hasattr(self, "raw_points"):
            self.raw_points = collections.OrderedDict()
            self.data = collections.OrderedDict()
        if label not in self.raw_points:
            self.raw_points[label] = []
            self.data[label] = []
        points = self.raw_points[label]
        line = self.data[label]
        points.append(Point(x, float(y)))
        if len(points) != every_n:
            return
        line.append(Point(sum(p.x for p in points) / len(points),
                          sum(p.y for p in points) / len(points)))
        points.clear()
        if not self.display or _plots_off():
            return
        use_svg_display()
        pyplot = _pyplot()
        if pyplot is None:
            return
        if self.fig is None:
            self.fig = pyplot.figure(figsize=self.figsize)
        axes = self.axes if self.axes else self.fig.gca()
        axes.cla()
        plt_lines, labels = [], []
        for (k, v), ls, color in zip(self.data.items(), self.ls, self.colors,
                                         strict=False):
            plt_lines.append(axes.plot([p.x for p in v], [p.y for p in v], linestyle=ls,
                                       color=color)[0])
            labels.append(k)
        if self.xlim:
            axes.set_xlim(self.xlim)
        if self.ylim:
            axes.set_ylim(self.ylim)
        if not self.xlabel:
            self.xlabel = x_label = "x"
        else:
            x_label = self.xlabel
        axes.set_xlabel(x_label)
        axes.set_ylabel(self.ylabel)
        axes.set_xscale(self.xscale)
        axes.set_yscale(self.yscale)
        axes.legend(plt_lines, labels)
        _show(self.fig, "progress", clear=True)


class Module(nn.Module, HyperParameters):
    """The book's base class of models: ``loss``, ``forward`` (through ``self.net``),
    ``training_step`` / ``validation_step`` (which plot the loss), ``configure_optimizers``
    (SGD with ``self.lr``) and ``apply_init``."""

    def __init__(self, plot_train_per_epoch=2, plot_valid_per_epoch=1):
        super().__init__()
        self.save_hyperparameters()
        self.board = ProgressBoard()

    def loss(self, y_hat, y):
        raise NotImplementedError

    def forward(self, X):
        assert hasattr(self, "net"), "Neural network is defined"
        return self.net(X)

    def plot(self, key, value, train):
        """Plot a point of curve `key` (train_... or val_...) against epochs."""
        assert hasattr(self, "trainer"), "Trainer is not inited"
        self.board.xlabel = "epoch"
        if train:
            x = self.trainer.train_batch_idx / self.trainer.num_train_batches
            n = self.trainer.num_train_batches / self.plot_train_per_epoch
        else:
            x = self.trainer.epoch + 1
            n = self.trainer.num_val_batches / self.plot_valid_per_epoch
        value = value.to(cpu()).detach().numpy() if isinstance(value, torch.Tensor) else value
        self.board.draw(x, value, ("train_" if train else "val_") + key,
                        every_n=max(int(n), 1))

    def training_step(self, batch):
        l = self.loss(self(*batch[:-1]), batch[-1])
        self.plot("loss", l, train=True)
        return l

    def validation_step(self, batch):
        l = self.loss(self(*batch[:-1]), batch[-1])
        self.plot("loss", l, train=False)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)

    def apply_init(self, inputs, init=None):
        """Run a forward pass on `inputs` (materializing lazy layers), then apply `init`."""
        self.forward(*inputs)
        if init is not None:
            self.net.apply(init)


class DataModule(HyperParameters):
    """The book's base class of data: ``train_dataloader()`` / ``val_dataloader()`` from
    ``get_dataloader(train)``, and ``get_tensorloader`` over tensors."""

    def __init__(self, root="../data", num_workers=4):
        self.save_hyperparameters()

    def get_dataloader(self, train):
        raise NotImplementedError

    def train_dataloader(self):
        return self.get_dataloader(train=True)

    def val_dataloader(self):
        return self.get_dataloader(train=False)

    def get_tensorloader(self, tensors, train, indices=slice(0, None)):
        tensors = tuple(a[indices] for a in tensors)
        dataset = _data.TensorDataset(*tensors)
        return _data.DataLoader(dataset, self.batch_size, shuffle=train)


class Trainer(HyperParameters):
    """Train a Module on a DataModule: ``Trainer(max_epochs).fit(model, data)``; with
    ``num_gpus`` the model and each batch go to the first of that many GPUs (``self.gpus``
    is empty without CUDA, as on a CPU-only PyTorch)."""

    def __init__(self, max_epochs, num_gpus=0, gradient_clip_val=0):
        self.save_hyperparameters()
        self.gpus = [gpu(i) for i in range(min(num_gpus, globals()["num_gpus"]()))]

    def prepare_data(self, data):
        self.train_dataloader = data.train_dataloader()
        self.val_dataloader = data.val_dataloader()
        self.num_train_batches = len(self.train_dataloader)
        self.num_val_batches = (len(self.val_dataloader)
                                if self.val_dataloader is not None else 0)

    def prepare_model(self, model):
        model.trainer = self
        model.board.xlim = [0, self.max_epochs]
        if self.gpus:
            model.to(self.gpus[0])
        self.model = model

    def prepare_batch(self, batch):
        if self.gpus:
            batch = [a.to(self.gpus[0]) for a in batch]
        return batch

    def fit(self, model, data):
        self.prepare_data(data)
        self.prepare_model(model)
        self.optim = model.configure_optimizers()
        self.epoch = 0
        self.train_batch_idx = 0
        self.val_batch_idx = 0
        for epoch in range(self.max_epochs):
            self.epoch = epoch
            self.fit_epoch()

    def fit_epoch(self):
        self.model.train()
        for batch in self.train_dataloader:
            loss = self.model.training_step(self.prepare_batch(batch))
            self.optim.zero_grad()
            with torch.no_grad():
                loss.backward()
                if self.gradient_clip_val > 0:
                    self.clip_gradients(self.gradient_clip_val, self.model)
                self.optim.step()
            self.train_batch_idx += 1
        if self.val_dataloader is None:
            return
        self.model.eval()
        for batch in self.val_dataloader:
            with torch.no_grad():
                self.model.validation_step(self.prepare_batch(batch))
            self.val_batch_idx += 1

    def clip_gradients(self, grad_clip_val, model):
        params = [p for p in model.parameters() if p.requires_grad]
        norm = torch.sqrt(sum(torch.sum(p.grad ** 2) for p in params))
        if norm > grad_clip_val:
            for param in params:
                param.grad[:] *= grad_clip_val / norm


class SGD(HyperParameters):
    """Minibatch stochastic gradient descent written out: ``param -= lr * param.grad``."""

    def __init__(self, params, lr):
        self.save_hyperparameters()

    def step(self):
        for param in self.params:
            param -= self.lr * param.grad

    def zero_grad(self):
        for param in self.params:
            if param.grad is not None:
                param.grad.zero_()


class Classifier(Module):
    """A Module for classification: cross-entropy loss, ``accuracy``, a validation step that
    plots loss and accuracy, and ``layer_summary``."""

    def validation_step(self, batch):
        Y_hat = self(*batch[:-1])
        self.plot("loss", self.loss(Y_hat, batch[-1]), train=False)
        self.plot("acc", self.accuracy(Y_hat, batch[-1]), train=False)

    def accuracy(self, Y_hat, Y, averaged=True):
        """The fraction (or, with averaged=False, the 0/1 per example) of correct
        predictions."""
        Y_hat = Y_hat.reshape((-1, Y_hat.shape[-1]))
        preds = Y_hat.argmax(axis=1).type(Y.dtype)
        compare = (preds == Y.reshape(-1)).type(torch.float32)
        return compare.mean() if averaged else compare

    def loss(self, Y_hat, Y, averaged=True):
        Y_hat = Y_hat.reshape((-1, Y_hat.shape[-1]))
        Y = Y.reshape((-1,))
        return F.cross_entropy(Y_hat, Y, reduction="mean" if averaged else "none")

    def layer_summary(self, X_shape):
        """Run a random input of `X_shape` through ``self.net``, printing each layer's output
        shape (``Conv2d output shape:\\t torch.Size([1, 6, 28, 28])``)."""
        X = torch.randn(*X_shape)
        for layer in self.net:
            X = layer(X)
            print(layer.__class__.__name__, "output shape:\t", X.shape)


class FashionMNIST(DataModule):
    """The Fashion-MNIST DataModule: ``data.train`` / ``data.val`` are the two splits (items
    (float32 tensor (1, H, W), int)), ``get_dataloader(train)`` batches them, ``visualize``
    shows a batch with its labels."""

    def __init__(self, batch_size=64, resize=(28, 28)):
        super().__init__()
        self.save_hyperparameters()
        resize = None if tuple(np.broadcast_to(resize, (2,))) == (28, 28) else resize
        self.train = _datasets.FashionMNIST(train=True, resize=resize)
        self.val = _datasets.FashionMNIST(train=False, resize=resize)

    def text_labels(self, indices):
        """The text names of numeric labels."""
        return get_fashion_mnist_labels(indices)

    def get_dataloader(self, train):
        data = self.train if train else self.val
        return _data.DataLoader(data, self.batch_size, shuffle=train,
                                num_workers=self.num_workers)

    def visualize(self, batch, nrows=1, ncols=8, labels=()):
        X, y = batch
        if not labels:
            labels = self.text_labels(y)
        show_images(X.squeeze(1), nrows, ncols, titles=labels)


def init_cnn(module):
    """Xavier-uniform weights for the Linear and Conv2d layers (``net.apply(init_cnn)``)."""
    if type(module) is nn.Linear or type(module) is nn.Conv2d:
        nn.init.xavier_uniform_(module.weight)


class LeNet(Classifier):
    """The 1.0 edition's LeNet, built from lazy layers (``nn.LazyConv2d``, ``nn.LazyLinear``)
    whose input sizes the first forward pass fixes."""

    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.LazyLinear(120), nn.Sigmoid(),
            nn.LazyLinear(84), nn.Sigmoid(),
            nn.LazyLinear(num_classes))


class Residual(_models.Residual):
    """ResNet's residual block in either edition's form:

    - classic: ``Residual(input_channels, num_channels, use_1x1conv=False, strides=1)``;
    - 1.0: ``Residual(num_channels, use_1x1conv=False, strides=1)``, from lazy layers.
    """

    def __init__(self, *args, **kwargs):
        classic = ("input_channels" in kwargs
                   or (len(args) >= 2 and not isinstance(args[1], bool))
                   or (len(args) == 1 and "num_channels" in kwargs))
        if classic:
            super().__init__(*args, **kwargs)
            return
        self._lazy_init(*args, **kwargs)

    def _lazy_init(self, num_channels, use_1x1conv=False, strides=1):
        nn.Module.__init__(self)
        self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
        self.conv3 = (nn.LazyConv2d(num_channels, kernel_size=1, stride=strides)
                      if use_1x1conv else None)
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()


class ResNeXtBlock(nn.Module):
    """The 1.0 edition's ResNeXt block: 1x1 to ``num_channels * bot_mul`` channels, a grouped
    3x3 convolution (`groups` channels per group), 1x1 back to `num_channels`, each with batch
    normalization, added to the (projected, with ``use_1x1conv``) input, then ReLU."""

    def __init__(self, num_channels, groups, bot_mul, use_1x1conv=False, strides=1):
        super().__init__()
        bot_channels = int(round(num_channels * bot_mul))
        self.conv1 = nn.LazyConv2d(bot_channels, kernel_size=1, stride=1)
        self.conv2 = nn.LazyConv2d(bot_channels, kernel_size=3, stride=strides, padding=1,
                                   groups=bot_channels // groups)
        self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=1)
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()
        self.bn3 = nn.LazyBatchNorm2d()
        if use_1x1conv:
            self.conv4 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides)
            self.bn4 = nn.LazyBatchNorm2d()
        else:
            self.conv4 = None

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = F.relu(self.bn2(self.conv2(Y)))
        Y = self.bn3(self.conv3(Y))
        if self.conv4 is not None:
            X = self.bn4(self.conv4(X))
        return F.relu(Y + X)


# -- the d2l package's tensor aliases ---------------------------------------------------------

ones, zeros, tensor, arange = torch.ones, torch.zeros, torch.tensor, torch.arange
linspace, normal, rand, randn = torch.linspace, torch.normal, torch.rand, torch.randn
exp, log, tanh, abs, eye = torch.exp, torch.log, torch.tanh, torch.abs, torch.eye  # noqa: A001
matmul, concat, stack = torch.matmul, torch.cat, torch.stack
int32, int64, float32 = torch.int32, torch.int64, torch.float32


def numpy(x, *args, **kwargs):
    return x.detach().numpy(*args, **kwargs)


def size(x):
    return x.numel()


def reshape(x, *args):
    return x.reshape(*args)


def to(x, *args):
    return x.to(*args)


def reduce_sum(x, *args, **kwargs):
    return x.sum(*args, **kwargs)


def reduce_mean(x, *args, **kwargs):
    return x.mean(*args, **kwargs)


def argmax(x, *args, **kwargs):
    return x.argmax(*args, **kwargs)


def astype(x, *args, **kwargs):
    return x.type(*args, **kwargs)


def transpose(x, *args, **kwargs):
    return x.t(*args, **kwargs)


def expand_dims(x, *args, **kwargs):
    return x.unsqueeze(*args, **kwargs)
