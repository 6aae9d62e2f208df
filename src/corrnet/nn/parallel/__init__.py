"""Data-parallel training: ``corrnet.nn.parallel`` is ``torch.nn.parallel``.

    from corrnet.nn.parallel import DistributedDataParallel as DDP
"""

from .distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
