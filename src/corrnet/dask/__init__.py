"""corrnet on Dask: filters and networks over arrays larger than memory, chunk by chunk.

`corrnet.dask` takes dask arrays (``dask.array.Array``) where corrnet's in-memory functions
take tensors, and returns lazy dask arrays equal to the in-memory result on the whole array:

* ``corr2d``, ``convolve2d`` and every named filter of `corrnet.filters` (``sobel``,
  ``gaussian``, ``box``, ...) on a huge image (..., H, W), each chunk with the halo its kernel
  needs and the boundary applied at the image's true edges only;
* ``apply``: a fully-convolutional network over one huge image (C, H, W) or a stack, each
  chunk with the halo the network's receptive field needs (from `corrnet.summary`), aligned
  to its total stride, equal to ``net(whole_image)``;
* ``predict`` / ``evaluate``: batch inference and accuracy over many images (N, C, H, W),
  the network shipped to the workers once.

It runs on any Dask scheduler: the default threads, or a ``dask.distributed`` cluster. Dask
is an optional extra: ``pip install corrnet[dask]``; ``import corrnet`` does not import it.

>>> import dask.array as da, numpy as np, corrnet, corrnet.dask
>>> X = da.from_array(np.eye(6), chunks=3)              # a "huge" image in 3x3 chunks
>>> corrnet.dask.box(X, 3)                              # lazy: nothing computed yet
dask.array<_filter_block, shape=(6, 6), dtype=float64, chunksize=(3, 3), chunktype=numpy.ndarray>
>>> bool(np.allclose(corrnet.dask.box(X, 3).compute(), corrnet.filters.box(np.eye(6), 3)))
True
"""

try:
    import dask.array as _dask_array
except ImportError as _err:  # pragma: no cover - the extra is installed with the tests
    raise ImportError("corrnet.dask needs Dask (dask.array): pip install corrnet[dask]") \
        from _err

from .batch import evaluate, predict
from .filtering import (
    box,
    convolve2d,
    corr2d,
    correlate,
    edge,
    emboss,
    gaussian,
    laplacian,
    prewitt,
    prewitt_x,
    prewitt_y,
    scharr,
    scharr_x,
    scharr_y,
    sharpen,
    sobel,
    sobel_x,
    sobel_y,
    unsharp,
)
from .tiling import apply
