"""Utilities under PyTorch's names: ``corrnet.utils.data`` is ``torch.utils.data``."""

from . import data
from .image import make_grid, save_image  # issue 14: torchvision.utils' picture helpers
