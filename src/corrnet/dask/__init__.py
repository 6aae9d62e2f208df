"""Scale-out on Dask (the extra ``pip install corrnet[dask]``): tiled network inference over
arrays larger than memory, `apply`. Dask itself is imported only when a function runs, so
``import corrnet.dask`` stays cheap and works without the extra."""

from .tiling import apply

__all__ = ["apply"]
