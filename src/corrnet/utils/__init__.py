"""Utilities under PyTorch's names: ``corrnet.utils.data`` is ``torch.utils.data``."""

from . import data
