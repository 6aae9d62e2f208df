"""Layers and the Module system: ``from corrnet import nn``."""

from . import functional, init
from .container import Sequential
from .conv import Conv2d
from .module import Module
from .parameter import Parameter
from .pooling import AvgPool2d, MaxPool2d

__all__ = ["functional", "init", "Module", "Parameter", "Conv2d", "MaxPool2d", "AvgPool2d",
           "Sequential"]
