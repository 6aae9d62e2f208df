"""Tensor repr in PyTorch's format, so that notebooks print what they printed before.

The rules (PyTorch's print options, defaults): precision 4; floats whose values are all whole
print as ``19.``; scientific notation when the largest |value| is over 1e8, or the ratio of the
largest to the smallest non-zero |value| is over 1000, or (non-whole values) the smallest is
under 1e-4; lines wrap at 80 columns; more than 1000 elements are summarized with ``...`` and
three items at each edge.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

PRECISION = 4
THRESHOLD = 1000
EDGE_ITEMS = 3
LINE_WIDTH = 80
SCI_MODE = None  # None: chosen per tensor by the rules above; True / False: always / never

_PROFILES = {  # (precision, threshold, edgeitems, linewidth), as PyTorch's profiles
    "default": (4, 1000, 3, 80),
    "short": (2, 1000, 2, 80),
    "full": (4, math.inf, 3, 80),
}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None,
                     profile=None, sci_mode=None) -> None:
    """Set how tensors print, as ``torch.set_printoptions``: `precision` (digits after the
    point), `threshold` (more elements than this are summarized with ``...``), `edgeitems`
    (items kept at each edge of a summarized dimension), `linewidth` (where lines wrap),
    `profile` ('default', 'short' or 'full': presets the four, which the others then
    override) and `sci_mode` (True / False force scientific notation on / off; None, the
    default, and reset by every call, lets each tensor choose).

    >>> corrnet.set_printoptions(precision=2)
    >>> corrnet.tensor([1.12345])
    tensor([1.12])
    >>> corrnet.set_printoptions(profile="default")
    """
    global PRECISION, THRESHOLD, EDGE_ITEMS, LINE_WIDTH, SCI_MODE
    if profile is not None:
        if profile not in _PROFILES:  # PyTorch ignores an unknown profile; corrnet says so
            raise ValueError(f"set_printoptions(): profile must be 'default', 'short' or "
                             f"'full', got {profile!r}")
        PRECISION, THRESHOLD, EDGE_ITEMS, LINE_WIDTH = _PROFILES[profile]
    for name, value in (("precision", precision), ("edgeitems", edgeitems),
                        ("linewidth", linewidth)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 0):
            raise TypeError(f"set_printoptions(): `{name}` must be a non-negative int, got "
                            f"{value!r}")
    if threshold is not None and (not isinstance(threshold, (int, float))
                                  or isinstance(threshold, bool)):
        raise TypeError(f"set_printoptions(): `threshold` must be a number, got {threshold!r}")
    if sci_mode is not None and not isinstance(sci_mode, bool):
        raise TypeError(f"set_printoptions(): `sci_mode` must be True, False or None, got "
                        f"{sci_mode!r}")
    if precision is not None:
        PRECISION = precision
    if threshold is not None:
        THRESHOLD = threshold
    if edgeitems is not None:
        EDGE_ITEMS = edgeitems
    if linewidth is not None:
        LINE_WIDTH = linewidth
    SCI_MODE = sci_mode


def get_printoptions() -> dict:
    """The current print options, as keywords for `set_printoptions`."""
    return {"precision": PRECISION, "threshold": THRESHOLD, "edgeitems": EDGE_ITEMS,
            "linewidth": LINE_WIDTH, "sci_mode": SCI_MODE}


@contextlib.contextmanager
def printoptions(**kwargs):
    """Change the print options inside a ``with`` block only."""
    old = get_printoptions()
    set_printoptions(**kwargs)
    try:
        yield
    finally:
        set_printoptions(**old)


class _Formatter:
    """Chooses one width and one notation for every element of a tensor."""

    def __init__(self, values: np.ndarray):
        self.floating = values.dtype.kind == "f"
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        flat = values.reshape(-1)
        if not self.floating:
            for value in flat:
                self.max_width = max(self.max_width, len(self._plain(value)))
            return
        finite = flat[np.isfinite(flat) & (flat != 0)].astype(np.float64)
        if finite.size == 0:
            return
        absolute = np.abs(finite)
        low, high = absolute.min(), absolute.max()
        with np.errstate(over="ignore"):  # a subnormal `low` overflows the ratio: that is fine
            ratio = high / low
        self.int_mode = bool(np.all(finite == np.ceil(finite)))
        if self.int_mode:
            self.sci_mode = ratio > 1000.0 or high > 1.0e8
            if SCI_MODE is not None:
                self.sci_mode = SCI_MODE
            if not self.sci_mode:
                widths = [len(f"{v:.0f}") + 1 for v in finite]
        else:
            self.sci_mode = ratio > 1000.0 or high > 1.0e8 or low < 1.0e-4
            if SCI_MODE is not None:
                self.sci_mode = SCI_MODE
            if not self.sci_mode:
                widths = [len(f"{v:.{PRECISION}f}") for v in finite]
        if self.sci_mode:
            widths = [len(f"{v:.{PRECISION}e}") for v in finite]
        self.max_width = max(self.max_width, *widths)  # (PyTorch does not measure nan/inf)

    @staticmethod
    def _plain(value) -> str:
        if isinstance(value, (bool, np.bool_)):
            return "True" if value else "False"
        return str(int(value))

    @staticmethod
    def _plain_float(value) -> str:
        value = float(value)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.0f}."

    def width(self) -> int:
        return self.max_width

    def format(self, value) -> str:
        if not self.floating:
            text = self._plain(value)
        else:
            value = float(value)
            if math.isnan(value) or math.isinf(value):
                text = self._plain_float(value)
            elif self.sci_mode:
                text = f"{value:{self.max_width}.{PRECISION}e}"
            elif self.int_mode:
                text = f"{value:.0f}."
            else:
                text = f"{value:.{PRECISION}f}"
        return " " * (self.max_width - len(text)) + text


def _summarize(values: np.ndarray) -> np.ndarray:
    """The elements that a summarized print shows (edge items of each dimension)."""
    if values.ndim == 0:
        return values
    if values.shape[0] > 2 * EDGE_ITEMS:
        values = np.concatenate([values[:EDGE_ITEMS], values[-EDGE_ITEMS:]])
    return np.stack([_summarize(v) for v in values]) if values.ndim > 1 else values


def _format_vector(values, formatter, indent, summarize):
    element_width = formatter.width() + 2
    per_line = max(1, (LINE_WIDTH - indent) // element_width)
    if summarize and len(values) > 2 * EDGE_ITEMS:
        items = ([formatter.format(v) for v in values[:EDGE_ITEMS]] + [" ..."]
                 + [formatter.format(v) for v in values[-EDGE_ITEMS:]])
    else:
        items = [formatter.format(v) for v in values]
    lines = [items[i:i + per_line] for i in range(0, len(items), per_line)]
    text = (",\n" + " " * (indent + 1)).join(", ".join(line) for line in lines)
    return "[" + text + "]"


def _format(values, formatter, indent, summarize):
    ndim = values.ndim
    if ndim == 0:
        return formatter.format(values.item())
    if ndim == 1:
        return _format_vector(values, formatter, indent, summarize)
    if summarize and values.shape[0] > 2 * EDGE_ITEMS:
        parts = ([_format(values[i], formatter, indent + 1, summarize) for i in range(EDGE_ITEMS)]
                 + ["..."]
                 + [_format(values[i], formatter, indent + 1, summarize)
                    for i in range(len(values) - EDGE_ITEMS, len(values))])
    else:
        parts = [_format(v, formatter, indent + 1, summarize) for v in values]
    separator = "," + "\n" * (ndim - 1) + " " * (indent + 1)
    return "[" + separator.join(parts) + "]"


def _add_suffixes(text, suffixes, indent):
    pieces = [text]
    last_line = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if last_line + len(suffix) + 2 > LINE_WIDTH:
            pieces.append(",\n" + " " * indent + suffix)
            last_line = indent + len(suffix)
        else:
            pieces.append(", " + suffix)
            last_line += len(suffix) + 2
    pieces.append(")")
    return "".join(pieces)


def tensor_repr(t) -> str:
    from . import devices
    from .backend import get_default_dtype

    values = t._data
    prefix = "tensor("
    indent = len(prefix)
    suffixes = []
    if not isinstance(values, np.ndarray):  # on a device: printed from a host copy, with
        suffixes.append(f"device='{t.device}'")  # the device first, as PyTorch orders them
        values = devices.to_host(values)
    summarize = values.size > THRESHOLD
    if values.size == 0:
        body = "[]"
        if values.shape != (0,):
            suffixes.append(f"size={tuple(values.shape)}")
    else:
        shown = _summarize(values) if summarize else values
        body = _format(values, _Formatter(shown), indent, summarize)
    dtype = t.dtype
    if dtype.name not in (get_default_dtype().name, "int64", "bool"):
        suffixes.append(f"dtype={dtype!r}")
    elif values.size == 0 and dtype.name != get_default_dtype().name:
        suffixes.append(f"dtype={dtype!r}")
    requires_grad = t.requires_grad  # (first: brings a stale view's grad_fn up to date)
    if t.grad_fn is not None:
        suffixes.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif requires_grad:
        suffixes.append("requires_grad=True")
    text = _add_suffixes(prefix + body, suffixes, indent)
    if type(t).__name__ == "Parameter":
        text = "Parameter containing:\n" + text
    return text
