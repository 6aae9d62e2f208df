"""Batch inference and evaluation over many images on Dask: `predict` and `evaluate`.

The images (a dask array (N, C, H, W), or a list of image files read lazily) are cut into
batches of `batch_size` along N, each batch one chunk (the other axes whole); every chunk goes
through the network in eval mode under ``no_grad``, in memory, as `d2l.evaluate_accuracy`'s loop
would run it. The network travels to the workers once, as a `ShippedNetwork` (its structure
and its tensors as NumPy arrays): it is one key of the graph, which every batch's task reads,
and each worker thread rebuilds the network once from it. The key is made when `predict` is
called, so the lazy result keeps the weights of that moment even if training goes on.

>>> import dask.array as da, numpy as np, corrnet, corrnet.dask
>>> net = corrnet.nn.Sequential(corrnet.nn.Flatten(), corrnet.nn.Linear(4, 3))
>>> images = da.from_array(np.ones((10, 1, 2, 2), dtype=np.float32), chunks=5)
>>> scores = corrnet.dask.predict(net, images, batch_size=4)
>>> scores.chunks                                   # (N, 3), four examples a batch
((4, 4, 2), (3,))
>>> bool((scores.compute() == net(corrnet.ones(10, 1, 2, 2)).detach().numpy()).all())
True
"""

from __future__ import annotations

import os

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..tensor import Tensor, from_numpy
from .shipping import ShippedNetwork

__all__ = ["evaluate", "predict"]


def _predict_block(batch: np.ndarray, shipped: ShippedNetwork, device) -> np.ndarray:
    """One batch (B, ...) through the network: eval mode, no_grad, in memory."""
    net = shipped.network()
    X = from_numpy(np.ascontiguousarray(batch))
    if device is not None:
        X = X.to(device)
    with no_grad():
        out = net(X)
    if not isinstance(out, Tensor):
        raise TypeError(f"predict: the network must return one tensor, got "
                        f"{type(out).__name__}")
    return out.detach().cpu().numpy()


# ---------------------------------------------------------------------------------------------
# the images
# ---------------------------------------------------------------------------------------------

def _read_scaled(path, shape, first):
    """Image file `path` as float32 (C, H, W) in [0, 1] (torchvision's ToTensor for 8 bits,
    convert_image_dtype for 16)."""
    from ..io import read_image

    image = read_image(path).numpy()
    if image.shape != tuple(shape):
        raise ValueError(f"predict: the image file {os.fspath(path)!r} has shape "
                         f"{image.shape}, the first ({os.fspath(first)!r}) {tuple(shape)}: "
                         f"all the images must have one shape")
    return np.divide(image, np.float32(np.iinfo(image.dtype).max), dtype=np.float32)


def _from_files(op: str, paths: list):
    import dask
    import dask.array as da

    from ..io import read_image

    if not paths:
        raise ValueError(f"{op}: images is an empty list of files")
    if not all(isinstance(p, (str, os.PathLike)) for p in paths):
        kinds = sorted({type(p).__name__ for p in paths})
        raise TypeError(f"{op}: images must be a dask array (N, C, H, W) or a list of image "
                        f"file paths, got a list of {', '.join(kinds)}")
    shape = tuple(read_image(paths[0]).shape)  # the first file, read now: the shape
    read = dask.delayed(_read_scaled, pure=True)
    return da.stack([da.from_delayed(read(p, shape, paths[0]), shape, np.float32)
                     for p in paths])


def _as_images(op: str, images):
    import dask.array as da

    if isinstance(images, (list, tuple)):
        return _from_files(op, list(images))
    if not isinstance(images, da.Array):
        raise TypeError(f"{op}: images must be a dask array (N, C, H, W) or a list of image "
                        f"file paths, got {type(images).__name__}; for an array in memory: "
                        f"dask.array.from_array(images, chunks=...)")
    if images.ndim < 2:
        raise ValueError(f"{op}: images must be a batch (N, C, H, W) (or (N, features)), got "
                         f"a dask array of shape {images.shape}")
    if images.dtype.kind not in "biuf":
        raise TypeError(f"{op}: images must hold numbers, got dtype {images.dtype} (images "
                        f"of shape {images.shape})")
    if any(np.isnan(size) for sizes in images.chunks for size in sizes):
        raise ValueError(f"{op}: images of shape {images.shape} has unknown chunk sizes; "
                         f"compute them first: images.compute_chunk_sizes()")
    if images.shape[0] == 0:
        raise ValueError(f"{op}: images holds no images (shape {images.shape})")
    return images


def _check_batch_size(op: str, batch_size) -> int:
    if (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1):
        raise ValueError(f"{op}: batch_size must be a positive integer, got "
                         f"batch_size={batch_size!r}")
    return int(batch_size)


# ---------------------------------------------------------------------------------------------
# predict and evaluate
# ---------------------------------------------------------------------------------------------

def predict(net, images, batch_size=256, device=None):
    """``net(images)`` batch by batch on Dask, lazily: a dask array (N, ...) of outputs.

    `images` is a dask array (N, C, H, W) (any dtype the network takes), or a list of image
    file paths, read lazily with `corrnet.io.read_image` and scaled to float32 in [0, 1]
    (as ToTensor; all of one shape). The batch axis is rechunked to `batch_size` (the other
    axes one chunk each) and each batch goes through `net` in eval mode under ``no_grad``, on
    `device` (None: the network's own). The output's chunks are the batches; its dtype and
    trailing shape are the network's (found by running it on one example now). The network
    is copied when predict is called and sent to the workers once.

    >>> import dask.array as da
    >>> net = corrnet.nn.Sequential(corrnet.nn.Flatten(), corrnet.nn.Linear(4, 2))
    >>> scores = corrnet.dask.predict(net, da.zeros((5, 1, 2, 2), dtype="float32"),
    ...                               batch_size=2)
    >>> scores.shape, scores.chunks, scores.dtype      # lazy: computed by scores.compute()
    ((5, 2), ((2, 2, 1), (2,)), dtype('float32'))
    """
    import dask
    import dask.array as da

    op = "predict"
    if not isinstance(net, nn.Module):
        raise TypeError(f"{op}: net must be a corrnet.nn.Module, got {type(net).__name__}")
    batch_size = _check_batch_size(op, batch_size)
    images = _as_images(op, images)
    if device is None:
        parameter = next(iter(net.parameters()), None)
        device = None if parameter is None or parameter.device.type == "cpu" else \
            parameter.device
    shipped = ShippedNetwork(op, net, device=device)
    # the output's shape and dtype: the network on one example, now
    example = np.zeros((1, *images.shape[1:]), dtype=images.dtype)
    try:
        probe = _predict_block(example, shipped, device)
    except Exception as err:
        raise type(err)(f"{op}: the network fails on one example of shape "
                        f"{example.shape[1:]} and dtype {example.dtype}: {err}") from err
    if probe.ndim < 1 or probe.shape[0] != 1:
        raise ValueError(f"{op}: the network must keep the batch axis: one example gave an "
                         f"output of shape {probe.shape}")
    images = images.rechunk({0: batch_size, **{axis: -1 for axis in range(1, images.ndim)}})
    out_chunks = (images.chunks[0], *((size,) for size in probe.shape[1:]))
    extra = {}
    if probe.ndim < images.ndim:
        extra["drop_axis"] = list(range(probe.ndim, images.ndim))
    elif probe.ndim > images.ndim:
        extra["new_axis"] = list(range(images.ndim, probe.ndim))
    network = dask.delayed(shipped, pure=True)  # one key: the network travels once
    return da.map_blocks(_predict_block, images, network, device, chunks=out_chunks,
                         dtype=probe.dtype, meta=np.empty((0,) * probe.ndim, probe.dtype),
                         **extra)


def evaluate(net, images, labels, batch_size=256, device=None) -> float:
    """The accuracy of `net` on `images` (see `predict`) against `labels` (N,) — a dask or
    NumPy array, a tensor or a list of class indices: the fraction of examples whose
    highest score is the label, the figure of the book's ``evaluate_accuracy``. Computes.

    >>> import dask.array as da
    >>> net = corrnet.nn.Sequential(corrnet.nn.Flatten(), corrnet.nn.Linear(4, 2))
    >>> images = da.from_array(np.random.rand(6, 1, 2, 2).astype("float32"), chunks=3)
    >>> scores = net(corrnet.from_numpy(images.compute())).argmax(1).numpy()
    >>> corrnet.dask.evaluate(net, images, scores, batch_size=4)
    1.0
    """
    import dask.array as da

    op = "evaluate"
    scores = predict(net, images, batch_size, device)
    if scores.ndim != 2:
        raise ValueError(f"{op}: the network's output must be class scores (N, classes), got "
                         f"shape {scores.shape}")
    if isinstance(labels, Tensor):
        labels = labels.detach().cpu().numpy()
    if not isinstance(labels, da.Array):
        labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != scores.shape[0] or labels.dtype.kind not in "iu":
        raise ValueError(f"{op}: labels must be class indices (N,) for the N = "
                         f"{scores.shape[0]} images, got labels of shape {labels.shape} and "
                         f"dtype {labels.dtype}")
    labels = da.asarray(labels).rechunk((scores.chunks[0],))
    correct = (scores.argmax(axis=1) == labels).sum()
    return float(correct.compute()) / scores.shape[0]
