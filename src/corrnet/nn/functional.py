"""``from corrnet.nn import functional as F``: the differentiable ops of corrnet.functional."""

from ..functional import *  # noqa: F403
from ..functional import __all__  # noqa: F401
