"""``from corrnet.nn import functional as F``: every differentiable op of corrnet.functional,
plus the layer and loss functions (PyTorch's names, arguments and semantics).

The heavy ones are autograd Functions with a hand-written backward, each one vectorized pass
over the arrays: `linear`, `batch_norm`, `cross_entropy` / `nll_loss` (log-softmax fused with
the loss, so the gradient is ``softmax - target`` without materializing a log of a softmax).
`softmax` / `log_softmax` are ops of the tensor (``Tensor.softmax``); the rest are built from
tensor ops.
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import _args
from .. import devices as _devices
from .. import functional as _core
from ..autograd import Function, _as_array, _like, is_grad_enabled
from ..backend import INT, bool_, result_type
from ..functional import *  # noqa: F403
from ..kernels import batchnorm as _batchnorm
from ..ops import log_softmax_array
from ..tensor import Tensor, _rng, _wrap

__all__ = list(_core.__all__) + [
    "linear", "relu", "sigmoid", "tanh", "softmax", "log_softmax", "dropout", "batch_norm",
    "cross_entropy", "nll_loss", "mse_loss",
]
__all__ = list(dict.fromkeys(__all__))  # relu, sigmoid, tanh: in the core list, redefined here


def _check_tensor(value, op: str, name: str) -> None:
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(value).__name__}")


def _check_same_dtype(op: str, input: Tensor, **others) -> None:
    for name, t in others.items():
        if t is not None and t.dtype != input.dtype:
            raise RuntimeError(f"{op}: expected {name} to have the same dtype as input "
                               f"({input.dtype}), but got {t.dtype}")


# ---------------------------------------------------------------------------------------------
# linear
# ---------------------------------------------------------------------------------------------


class Linear(Function):
    """y = x @ weight.T + bias over the last dimension of x (any leading dimensions); bias
    broadcasts into y (its gradient is summed back to its shape by the engine)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        needs = ctx.needs_input_grad + (False,) * 3
        ctx.save_for_backward(x if needs[1] else None, weight if needs[0] else None)
        out = np.matmul(x, weight.T)  # (*, out) = (*, in) @ (in, out)
        if bias is not None:
            out += bias
        ctx.input_dims, ctx.has_bias = x.ndim, bias is not None
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_arrays
        grad_x = grad_weight = grad_bias = None
        grad = _devices.contiguous(grad)  # a broadcast gradient (of a sum) has 0 strides: BLAS
        out_features = grad.shape[-1]
        rows = grad.size // out_features if out_features else int(np.prod(grad.shape[:-1]))
        if x is not None:  # weight's gradient wanted: (out, in) = (out, M) @ (M, in)
            # M = prod of the leading dims, given explicitly: reshape(-1, 0) fails when a size
            # is 0 (0 features or an empty batch)
            grad_weight = grad.reshape(rows, out_features).T @ x.reshape(rows, x.shape[-1])
        if weight is not None:  # input's gradient wanted: (*, in) = (*, out) @ (out, in)
            grad_x = np.matmul(grad, weight)
        if len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]:
            grad_bias = grad  # (*, out), summed to the bias's shape by the engine
        return grad_x, grad_weight, grad_bias

    @staticmethod
    def backward_graph(ctx, grad):
        x, weight = ctx.saved_tensors  # the same products as backward, recorded
        grad_x = grad_weight = grad_bias = None
        out_features = grad.shape[-1]
        rows = int(np.prod(grad.shape[:-1], dtype=np.int64))
        if x is not None:  # (out, in) = (out, M) @ (M, in)
            grad_weight = grad.reshape(rows, out_features).t().matmul(
                x.reshape(rows, x.shape[-1]))
        if weight is not None:  # (*, in) = (*, out) @ (out, in)
            grad_x = grad.matmul(weight)
        if len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]:
            grad_bias = grad
        return grad_x, grad_weight, grad_bias

    @staticmethod
    def grad_fn_name(ctx):  # PyTorch's, by the path its linear takes
        if ctx.input_dims == 2:
            return "AddmmBackward0" if ctx.has_bias else "MmBackward0"
        if ctx.input_dims == 1 and not ctx.has_bias:
            return "SqueezeBackward4"
        return "ViewBackward0" if ctx.has_bias else "UnsafeViewBackward0"


def linear(input, weight, bias=None):
    """``input @ weight.T + bias``: input (*, in_features), weight (out_features, in_features),
    bias (out_features,) or any shape that broadcasts into the output; output
    (*, out_features). A 1-D weight (in_features,) gives a dot product over the last
    dimension, output (*,), and then takes only a 0-d bias, and none with a 2-D input (where
    PyTorch's addmm sees a 1-D mat2).

    >>> F.linear(corrnet.ones(2, 3), corrnet.ones(4, 3)).shape
    torch.Size([2, 4])
    """
    op = "linear"
    _check_tensor(input, op, "input")
    _check_tensor(weight, op, "weight")
    if bias is not None:
        _check_tensor(bias, op, "bias")
    if input.dim() == 0 or weight.dim() not in (1, 2):
        raise RuntimeError(f"{op}: expected input with at least 1 dimension and a 1-D or 2-D "
                           f"weight, got input of shape {tuple(input.shape)} and weight of "
                           f"shape {tuple(weight.shape)}")
    in_features = weight.shape[-1]
    if input.shape[-1] != in_features:
        rows = int(np.prod(input.shape[:-1], dtype=np.int64))
        raise RuntimeError(
            f"{op}: input of shape {tuple(input.shape)} has {input.shape[-1]} features in its "
            f"last dimension, but weight of shape {tuple(weight.shape)} expects {in_features} "
            f"(mat1 and mat2 shapes cannot be multiplied ({rows}x{input.shape[-1]} and "
            f"{in_features}x{weight.shape[0] if weight.dim() == 2 else 1}))"
        )
    _check_same_dtype(op, input, weight=weight, bias=bias)
    if input.dtype == bool_:
        raise NotImplementedError(f'{op}: "addmm_impl_cpu_" not implemented for \'Bool\' (bool '
                                  "input and weight); convert them with .float()")
    if weight.dim() == 1:  # a dot product over the last dimension
        if bias is not None and (bias.dim() > 0 or input.dim() == 2):  # PyTorch's addmm path
            raise RuntimeError(f"{op}: mat2 must be a matrix, got 1-D tensor (a 1-D weight of "
                               f"shape {tuple(weight.shape)} takes only a 0-d bias, and none "
                               f"with a 2-D input; got input {tuple(input.shape)} and bias "
                               f"{tuple(bias.shape)})")
        out = input.matmul(weight)
        return out if bias is None else out + bias
    if bias is not None:
        out_shape = tuple(input.shape[:-1]) + (weight.shape[0],)
        try:
            fits = np.broadcast_shapes(tuple(bias.shape), out_shape) == out_shape
        except ValueError:
            fits = False
        if not fits:
            raise RuntimeError(f"{op}: bias of shape {tuple(bias.shape)} does not broadcast to "
                               f"the output's shape {out_shape} (out_features="
                               f"{weight.shape[0]} of weight {tuple(weight.shape)})")
    return Linear.apply(input, weight, bias)


# ---------------------------------------------------------------------------------------------
# activations
# ---------------------------------------------------------------------------------------------


def relu(input, inplace=False):
    """max(input, 0); with ``inplace=True`` the result is written into `input`."""
    _check_tensor(input, "relu", "input")
    out = _core.relu(input)
    return input._inplace(out) if inplace else out


def sigmoid(input):
    """1 / (1 + exp(-input)), elementwise."""
    _check_tensor(input, "sigmoid", "input")
    return _core.sigmoid(input)


def tanh(input):
    """tanh(input), elementwise."""
    _check_tensor(input, "tanh", "input")
    return _core.tanh(input)


def _softmax_dim(op: str, input: Tensor, dim):
    if dim is None:  # PyTorch's legacy choice, with its warning
        warnings.warn(f"Implicit dimension choice for {op} has been deprecated. Change the call "
                      "to include dim=X as an argument.", UserWarning, stacklevel=3)
        return 0 if input.dim() in (0, 1, 3) else 1
    return dim


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """exp(input) / sum(exp(input)) along `dim` (computed stably).

    >>> F.softmax(corrnet.tensor([0., 0.]), dim=0)
    tensor([0.5000, 0.5000])
    """
    _check_tensor(input, "softmax", "input")
    return input.softmax(_softmax_dim("softmax", input, dim), dtype=dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """log(softmax(input)) along `dim`, in one stable pass."""
    _check_tensor(input, "log_softmax", "input")
    return input.log_softmax(_softmax_dim("log_softmax", input, dim), dtype=dtype)


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability `p` and scale the others by 1/(1-p) (training only).

    The mask is drawn from corrnet's generator (``corrnet.manual_seed``); in eval mode, or
    for p = 0, the input is returned as it is.
    """
    _check_tensor(input, "dropout", "input")
    p = _args.check_float("dropout", "p", p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    training = _args.check_bool("dropout", "train", training)
    if not training or p == 0 or input.numel() == 0:
        return input
    if not input.dtype.is_floating_point and p != 1:  # p = 1 zeroes any dtype, as PyTorch
        raise RuntimeError(f"dropout: expected a floating point input, got {input.dtype} "
                           "(only p=0 or p=1 keep an integer dtype)")
    np_dtype = input._data.dtype
    if p == 1:
        mask = np.zeros((), dtype=np_dtype)
    else:
        keep = _rng().random(input._data.shape, dtype=np.float64 if np_dtype == np.float64
                             else np.float32) < 1.0 - p
        mask = keep * np.asarray(1.0 / (1.0 - p), dtype=np_dtype)
    if not isinstance(input._data, np.ndarray):  # drawn on the host, then sent over
        mask = _devices.to_device(mask, input.device)
    out = input * _wrap(mask)
    return input._inplace(out) if inplace else out


# ---------------------------------------------------------------------------------------------
# batch normalization
# ---------------------------------------------------------------------------------------------


class NativeBatchNorm(Function):
    """Normalize each channel (axis 1) by the batch statistics (training) or by given ones."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
        channels = x.shape[1]
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, channels) + (1,) * (x.ndim - 2)
        if training and x.size == 0:  # an empty batch: an empty output, running stats kept
            centred, var = x, np.ones(channels, dtype=x.dtype)
        elif training:
            count = x.size // channels
            if _batchnorm.compiled(x, weight, bias):  # one compiled pass per channel
                mean, var, invstd, xhat, out = _batchnorm.forward_training(x, eps, weight,
                                                                           bias)
                centred = None
            else:
                mean = np.mean(x, axis=axes)
                centred = x - mean.reshape(shape)
                var = np.mean(np.square(centred), axis=axes)  # biased: used to normalize
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += (momentum * mean).astype(running_mean.dtype, copy=False)
            if running_var is not None:  # the running variance is unbiased (n / (n - 1))
                running_var *= 1 - momentum
                unbiased = var * (count / (count - 1)) if count > 1 else var
                running_var += (momentum * unbiased).astype(running_var.dtype, copy=False)
        elif (running_mean is not None and running_var is not None
              and _batchnorm.compiled(x, weight, bias, running_mean, running_var)):
            invstd = (1 / np.sqrt(running_var + eps)).astype(x.dtype, copy=False)
            xhat, out = _batchnorm.normalize(x, running_mean, invstd, weight, bias)
            centred = None
        else:
            centred = x - running_mean.reshape(shape)
            var = running_var
        if centred is not None:     # NumPy's passes (the compiled ones computed all of it)
            invstd = (1 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
            xhat = centred * invstd.reshape(shape)
            out = xhat * weight.reshape(shape) if weight is not None else xhat.copy()
            if bias is not None:
                out += bias.reshape(shape)
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.training, ctx.axes, ctx.shape = training, axes, shape
        # (C,): what the differentiable backward needs to rebuild x from xhat
        ctx.mean = (None if training and x.size == 0 else mean if training
                    else running_mean.copy())
        ctx.eps = eps
        return out

    @staticmethod
    def backward(ctx, grad):
        xhat, invstd, weight = ctx.saved_arrays
        axes, shape = ctx.axes, ctx.shape
        needs = ctx.needs_input_grad + (False,) * 3
        scale = invstd if weight is None else invstd * weight
        if _batchnorm.compiled(grad, xhat, weight):  # one compiled pass per channel
            sum_grad, sum_grad_xhat, grad_x = _batchnorm.backward(grad, xhat, scale,
                                                                  ctx.training, needs[0])
            return (grad_x, sum_grad_xhat if needs[1] else None,
                    sum_grad if needs[2] else None)
        sum_grad = np.sum(grad, axis=axes)  # (C,)
        sum_grad_xhat = np.sum(grad * xhat, axis=axes)  # (C,)
        grad_x = None
        if needs[0]:
            # (an empty batch, or no channels: nothing to divide)
            count = max(grad.size // grad.shape[1], 1) if grad.shape[1] else 1
            if ctx.training:  # the batch statistics depend on x too
                grad_x = (grad - (sum_grad / count).reshape(shape)
                          - xhat * (sum_grad_xhat / count).reshape(shape))
                grad_x *= scale.reshape(shape)
            else:
                grad_x = grad * scale.reshape(shape)
        return (grad_x, sum_grad_xhat if needs[1] else None, sum_grad if needs[2] else None)

    @staticmethod
    def backward_graph(ctx, grad):
        # backward's formula on Tensors; xhat and invstd are functions of x (in training),
        # so they are recomputed from x with recorded ops. x itself is rebuilt from xhat
        # (x = xhat / invstd + mean), not saved: the fast path keeps no extra activation.
        xhat_array, invstd_array, _ = ctx.saved_arrays
        axes, shape, count = ctx.axes, ctx.shape, grad.numel() // max(grad.shape[1], 1)
        if grad.numel() == 0:
            raise RuntimeError("NativeBatchNormBackward0 of an empty batch is not twice "
                               "differentiable in corrnet (create_graph=True)")
        needs = ctx.needs_input_grad + (False,) * 3
        weight = ctx.saved_tensors[2]
        x = ctx._node.tensor_of(xhat_array / invstd_array.reshape(shape)
                                + ctx.mean.reshape(shape).astype(xhat_array.dtype), 0)
        if ctx.training:
            centred = x - x.mean(dim=axes, keepdim=True)
            invstd = ((centred * centred).mean(dim=axes, keepdim=True) + ctx.eps) ** -0.5
        else:
            centred = x - _wrap(ctx.mean.reshape(shape).astype(xhat_array.dtype))
            invstd = _wrap(invstd_array.reshape(shape))
        xhat = centred * invstd
        sum_grad = grad.sum(dim=axes)  # (C,)
        sum_grad_xhat = (grad * xhat).sum(dim=axes)  # (C,)
        grad_x = None
        if needs[0]:
            scale = invstd if weight is None else invstd * weight.reshape(shape)
            if ctx.training:
                grad_x = (grad - (sum_grad / count).reshape(shape)
                          - xhat * (sum_grad_xhat / count).reshape(shape)) * scale
            else:
                grad_x = grad * scale
        return (grad_x, sum_grad_xhat if needs[1] else None, sum_grad if needs[2] else None)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalization over every dimension but the channels (dimension 1).

    training: normalize by the batch mean and (biased) variance, and update `running_mean`
    and `running_var` in place: ``running = (1 - momentum) * running + momentum * batch``,
    with the unbiased batch variance. Otherwise normalize by the running statistics.
    """
    op = "batch_norm"
    _check_tensor(input, op, "input")
    training = _args.check_bool(op, "training", training)
    momentum = _args.check_float(op, "momentum", momentum)  # None too is refused, as PyTorch
    eps = _args.check_float(op, "eps", eps)
    if input.dim() < 2:
        raise RuntimeError(f"{op}: expected input of shape (N, C, ...) with at least 2 "
                           f"dimensions, got shape {tuple(input.shape)}")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"{op}: expected a floating point input, got {input.dtype}")
    channels = input.shape[1]
    if channels == 0 and (weight is not None or bias is not None):
        # PyTorch's kernel fails on it ("select(): index 0 out of range"), as on nn.BatchNorm1d(0)
        raise IndexError(f"{op}: input of shape {tuple(input.shape)} has no channels to weight "
                         "or shift")
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is None:
            continue
        _check_tensor(t, op, name)
        running = name.startswith("running")  # weight and bias may have any shape
        if t.numel() != channels or (running and t.dim() != 1):
            raise RuntimeError(f"{op}: {name} should contain {channels} elements (one per channel "
                               f"of input {tuple(input.shape)}){' in 1-D' if running else ''}, "
                               f"got shape {tuple(t.shape)}")
        if t.dtype != input.dtype:
            raise RuntimeError(f"{op}: expected {name} to have the same dtype as input "
                               f"({input.dtype}), but got {t.dtype}")
        if running and t.requires_grad and is_grad_enabled():
            raise RuntimeError(f"The function 'native_batch_norm' is not differentiable with "
                               f"respect to argument '{name}'. This input cannot have "
                               "requires_grad True.")
    if training:
        # PyTorch counts the values per channel without the channels: N * prod(spatial)
        count = int(np.prod((input.shape[0],) + tuple(input.shape[2:]), dtype=np.int64))
        if count == 1:  # an empty batch (0) is allowed
            raise ValueError(f"Expected more than 1 value per channel when training, got input "
                             f"size {input.shape}")
        if eps <= 0:
            raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError(f"{op}: running_mean and running_var must be defined in "
                               "evaluation mode (training=False)")
        if eps < 0:
            raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")
    arrays = [None if t is None else t._data.reshape(-1) for t in (running_mean, running_var)]
    out = NativeBatchNorm.apply(input, None if weight is None else weight.reshape(-1),
                                None if bias is None else bias.reshape(-1), *arrays, training,
                                momentum, eps)
    if training:
        for t in (running_mean, running_var):
            if t is not None:
                t._bump_version()
    return out


# ---------------------------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------------------------

_REDUCTIONS = ("none", "mean", "sum")


def _reduction(reduction, size_average=None, reduce=None) -> str:
    if size_average is not None or reduce is not None:  # PyTorch's deprecated arguments
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "none" if not reduce else ("mean" if size_average else "sum")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction (expected 'none', "
                         "'mean' or 'sum')")
    return reduction


class NllLoss(Function):
    """The negative log-likelihood of class-index targets, optionally from logits (a fused
    log-softmax) and with label smoothing. Arrays: x (N, C, *d), target (N, *d).

    Per sample i (valid = target != ignore_index, w = class weights, s = smoothing):
        loss_i = valid_i * ((1 - s) w[t_i] (-logp[i, t_i]) + s/C sum_c w_c (-logp[i, c]))
    'mean' divides the sum by sum_i valid_i w[t_i] (as PyTorch).
    """

    @staticmethod
    def forward(ctx, x, target, weight, from_logits, ignore_index, reduction, smoothing):
        classes = x.shape[1]
        wshape = (1, classes) + (1,) * (x.ndim - 2)
        logp = log_softmax_array(x, 1) if from_logits else x
        valid = target != ignore_index
        index = np.expand_dims(np.where(valid, target, 0), 1)  # (N, 1, *d)
        picked = np.take_along_axis(logp, index, 1)[:, 0]  # (N, *d)
        coef = valid.astype(x.dtype)  # (N, *d): valid_i * w[t_i]
        if weight is not None:
            coef *= weight[index[:, 0]]
        with np.errstate(invalid="ignore"):
            per = np.where(valid, -(1 - smoothing) * coef * picked, 0).astype(x.dtype)
            if smoothing:
                spread = logp if weight is None else logp * weight.reshape(wshape)
                per -= np.where(valid, (smoothing / classes) * np.sum(spread, axis=1), 0).astype(
                    x.dtype)
        denom = coef.sum()
        if reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                out = _as_array(per.sum() / denom).astype(x.dtype, copy=False)
        elif reduction == "sum":
            out = _as_array(per.sum()).astype(x.dtype, copy=False)
        else:
            out = per
        ctx.save_for_backward(logp if from_logits else None)
        ctx.shape, ctx.dtype = x.shape, x.dtype
        ctx.index, ctx.valid, ctx.coef, ctx.denom = index, valid, coef, denom
        ctx.weight, ctx.from_logits, ctx.reduction, ctx.smoothing = (
            weight, from_logits, reduction, smoothing)
        return out

    @staticmethod
    def backward(ctx, grad):
        (logp,) = ctx.saved_arrays
        s, coef, valid = ctx.smoothing, ctx.coef, ctx.valid
        classes = ctx.shape[1]
        wshape = (1, classes) + (1,) * (len(ctx.shape) - 2)
        g = _as_array(grad)
        with np.errstate(invalid="ignore", divide="ignore"):
            if ctx.reduction == "mean":
                g = g / ctx.denom  # inf when every target is ignored: such samples get 0
            # (N, *d): the upstream gradient of each sample, 0 for ignored ones
            g = np.where(valid, g, 0).astype(ctx.dtype, copy=False)
            target_term = np.expand_dims((1 - s) * g * coef, 1)  # -d/dlogp[i, t_i]
        if ctx.from_logits:
            # d/dx of -sum_c q_c logp_c is softmax * sum_c q_c - q
            wsum = classes if ctx.weight is None else ctx.weight.sum()
            total = (1 - s) * coef + (s / classes) * wsum
            grad_x = np.exp(logp) * np.expand_dims(g * total, 1)
        else:
            grad_x = np.zeros(ctx.shape, dtype=ctx.dtype, like=_like(g))
        if s:
            spread = np.expand_dims(g * (s / classes), 1)
            grad_x -= spread if ctx.weight is None else spread * ctx.weight.reshape(wshape)
        current = np.take_along_axis(grad_x, ctx.index, 1)
        np.put_along_axis(grad_x, ctx.index, current - target_term, 1)
        return grad_x.astype(ctx.dtype, copy=False), None, None

    @staticmethod
    def backward_graph(ctx, grad):
        # backward's formula on Tensors: linear in grad, and a function of x only through
        # softmax(x) = exp(logp) (from logits), logp recorded as a log_softmax of x
        s, classes = ctx.smoothing, ctx.shape[1]
        wshape = (1, classes) + (1,) * (len(ctx.shape) - 2)
        zero = np.zeros((), dtype=ctx.dtype)
        g = grad
        if ctx.reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                g = g / _wrap(np.asarray(ctx.denom, dtype=ctx.dtype))
        g = _where_recorded(ctx.valid, g, zero)  # (N, *d): 0 for ignored samples
        picked = np.zeros(ctx.shape, dtype=ctx.dtype, like=_like(ctx.coef))  # one-hot of targets
        np.put_along_axis(picked, ctx.index, 1, 1)
        grad_x = -_wrap(picked) * (g * _wrap(((1 - s) * ctx.coef).astype(ctx.dtype))).unsqueeze(1)
        if ctx.from_logits:
            wsum = classes if ctx.weight is None else ctx.weight.sum()
            total = ((1 - s) * ctx.coef + (s / classes) * wsum).astype(ctx.dtype)
            softmax = _log_softmax_of_input(ctx, ctx.saved_arrays[0]).exp()
            grad_x = grad_x + softmax * (g * _wrap(total)).unsqueeze(1)
        if s:
            spread = (g * (s / classes)).unsqueeze(1)
            grad_x = grad_x - (spread if ctx.weight is None
                               else spread * _wrap(ctx.weight.reshape(wshape)))
        return grad_x, None, None

    grad_fn_name = "NllLossBackward0"


def _where_recorded(condition, a, b):
    from ..ops import Where

    return Where.apply(condition, a, b)


def _log_softmax_of_input(ctx, logp: np.ndarray) -> Tensor:
    """`logp`, the log-softmax over the classes of input 0 of ctx's node, as a Tensor
    recorded as that log-softmax (a differentiable backward's view of a fused op's
    intermediate, without computing it again)."""
    from ..autograd import Context, Node
    from ..ops import LogSoftmax

    node = ctx._node
    inner = Context()
    inner.save_for_backward(logp)
    inner._saved_owners, inner.axis, inner.needs_input_grad = (-1,), 1, (True,)
    recorded = Node(LogSoftmax, inner, node.next_nodes[:1], node.input_meta[:1], (0,))
    return _wrap(logp, grad_fn=recorded)


class CrossEntropyProbabilities(Function):
    """Cross entropy with class-probability targets (same shape as the logits)."""

    @staticmethod
    def forward(ctx, x, target, weight, reduction, smoothing):
        classes = x.shape[1]
        wshape = (1, classes) + (1,) * (x.ndim - 2)
        logp = log_softmax_array(x, 1)
        smoothed = target * (1 - smoothing) + smoothing / classes if smoothing else target
        q = smoothed if weight is None else smoothed * weight.reshape(wshape)
        per = -np.sum(q * logp, axis=1)
        if reduction == "mean":
            count = x.size / classes if classes else 0
            with np.errstate(invalid="ignore", divide="ignore"):
                out = _as_array(per.sum() / count).astype(x.dtype, copy=False)
            ctx.scale = 1 / count if count else np.nan
        elif reduction == "sum":
            out, ctx.scale = _as_array(per.sum()).astype(x.dtype, copy=False), 1
        else:
            out, ctx.scale = per, 1
        ctx.reduction = reduction
        ctx.save_for_backward(logp, q)
        ctx.weight, ctx.smoothing, ctx.wshape = weight, smoothing, wshape
        return out

    @staticmethod
    def backward(ctx, grad):
        logp, q = ctx.saved_arrays
        g = _as_array(grad) * ctx.scale
        g = np.expand_dims(g, 1) if g.ndim else g  # per sample ('none') or one scalar
        grad_x = g * (np.exp(logp) * np.sum(q, axis=1, keepdims=True) - q)
        grad_target = None
        if len(ctx.needs_input_grad) > 1 and ctx.needs_input_grad[1]:
            grad_target = -(1 - ctx.smoothing) * g * logp
            if ctx.weight is not None:
                grad_target = grad_target * ctx.weight.reshape(ctx.wshape)
        return grad_x, grad_target, None

    @staticmethod
    def backward_graph(ctx, grad):
        logp_array, q = ctx.saved_arrays
        if len(ctx.needs_input_grad) > 1 and ctx.needs_input_grad[1]:
            raise RuntimeError("cross_entropy with a target that requires grad is not twice "
                               "differentiable in corrnet (create_graph=True)")
        g = grad * float(ctx.scale)
        g = g.unsqueeze(1) if g.dim() else g
        softmax = _log_softmax_of_input(ctx, logp_array).exp()
        total = _wrap(np.sum(q, axis=1, keepdims=True))
        return g * (softmax * total - _wrap(q)), None, None

    @staticmethod
    def grad_fn_name(ctx):  # PyTorch's cross_entropy with probabilities ends in these ops
        return {"mean": "DivBackward1", "sum": "SumBackward0"}.get(ctx.reduction,
                                                                  "NegBackward0")


def _class_loss_inputs(op, input, target, weight):
    """Check the arguments of a classification loss; give (input, target) batched: (N, C, *d)
    and (N, *d), and whether an unbatched input was given a batch dimension."""
    _check_tensor(input, op, "input")
    _check_tensor(target, op, "target")
    if input.dim() == 0:
        raise ValueError(f"{op}: expected input of shape (C,), (N, C) or (N, C, d1, ...), got a "
                         "0-d tensor")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"{op}: expected a floating point input (logits), got {input.dtype}")
    classes = input.shape[0 if input.dim() == 1 else 1]
    if weight is not None:
        _check_tensor(weight, op, "weight")
        if weight.dim() != 1 or weight.shape[0] != classes:
            raise RuntimeError(f"{op}: weight should have one value for each of the {classes} "
                               f"classes, but got weight of shape {tuple(weight.shape)}")
        _check_same_dtype(op, input, weight=weight)
    unbatched = input.dim() == 1
    if unbatched:
        if not target.dtype.is_floating_point and target.dim() == 1:
            if target.shape[0] != 1:  # class indices: () or (1,) for one sample
                raise ValueError(f"For 1D input, 1D target must have size 1, but got target "
                                 f"size: {target.shape[0]}")
            target = target.reshape(())
        input = input.unsqueeze(0)
        target = target.unsqueeze(0)
    return input, target, unbatched, classes


def _check_class_targets(op, input, target, classes, ignore_index):
    if target.dtype.category != INT or target.dtype.name not in ("int64", "uint8"):
        raise RuntimeError(f"{op}: expected target dtype to be Long (int64) or Byte (uint8) "
                           f"class indices, but got {target.dtype}; convert it with .long()")
    if target.dim() != input.dim() - 1:
        if input.dim() == 2:
            raise RuntimeError(f"{op}: 0D or 1D target tensor expected for input of shape "
                               f"(N, C), got target of shape {tuple(target.shape)} "
                               "(multi-target not supported)")
        raise RuntimeError(f"{op}: expected target of shape {tuple(input.shape[:1])} + "
                           f"{tuple(input.shape[2:])}, got {tuple(target.shape)}")
    if target.shape[0] != input.shape[0]:
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target "
                         f"batch_size ({target.shape[0]}).")
    if tuple(target.shape[1:]) != tuple(input.shape[2:]):
        raise RuntimeError(f"{op}: expected target size {[input.shape[0], *input.shape[2:]]}, "
                           f"got {list(target.shape)}")
    labels = target._data
    bad = (labels != ignore_index) & ((labels < 0) | (labels >= classes))
    if bad.any():
        value = int(labels[bad].reshape(-1)[0])
        raise IndexError(f"{op}: Target {value} is out of bounds: class labels must lie in "
                         f"[0, {classes - 1}] for {classes} classes (input of shape "
                         f"{tuple(input.shape)})")


def _check_weight_grad(op, weight):
    if weight is not None and weight.requires_grad and is_grad_enabled():
        raise RuntimeError(f"{op}: is not differentiable with respect to argument 'weight' for "
                           "class-index targets; pass weight.detach()")


def _finish(out, unbatched, reduction):
    return out.squeeze(0) if unbatched and reduction == "none" else out


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """Cross entropy between logits `input` (N, C) or (N, C, d1, ...) or (C,) and `target`:
    class indices (N,) / (N, d1, ...) / () of dtype int64, or class probabilities of the
    input's shape. log-softmax is computed stably and fused with the loss.

    >>> F.cross_entropy(corrnet.zeros(1, 4), corrnet.tensor([2]))  # log(4)
    tensor(1.3863)
    """
    op = "cross_entropy"
    reduction = _reduction(reduction, size_average, reduce)
    ignore_index = _args.check_int(op, "ignore_index", ignore_index)
    label_smoothing = _args.check_float(op, "label_smoothing", label_smoothing)
    if label_smoothing > 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if not label_smoothing > 0.0:  # PyTorch smooths only when > 0: a negative or NaN is 0
        label_smoothing = 0.0
    x, t, unbatched, classes = _class_loss_inputs(op, input, target, weight)
    if t.dtype.is_floating_point:  # class probabilities
        if tuple(t.shape) != tuple(x.shape):
            raise RuntimeError(f"{op}: a floating point target holds class probabilities and "
                               f"must have the input's shape {tuple(input.shape)}, got "
                               f"{tuple(target.shape)} (class indices must be int64)")
        if ignore_index >= 0:
            raise RuntimeError(f"{op}: ignore_index is not supported for floating point "
                               "(probability) targets")
        dtype = result_type(x, t)
        out = CrossEntropyProbabilities.apply(x._cast(dtype), t._cast(dtype),
                                           None if weight is None else weight._data,
                                           reduction, float(label_smoothing))
        return _finish(out, unbatched, reduction)
    _check_class_targets(op, x, t, classes, ignore_index)
    _check_weight_grad(op, weight)
    out = NllLoss.apply(x, t._data, None if weight is None else weight._data, True,
                                ignore_index, reduction, float(label_smoothing))
    return _finish(out, unbatched, reduction)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log-likelihood of class indices: ``-input[i, target[i]]`` (weighted), where
    `input` holds log-probabilities (N, C) / (N, C, d1, ...) / (C,)."""
    op = "nll_loss"
    reduction = _reduction(reduction, size_average, reduce)
    ignore_index = _args.check_int(op, "ignore_index", ignore_index)
    x, t, unbatched, classes = _class_loss_inputs(op, input, target, weight)
    _check_class_targets(op, x, t, classes, ignore_index)
    _check_weight_grad(op, weight)
    out = NllLoss.apply(x, t._data, None if weight is None else weight._data, False,
                                ignore_index, reduction, 0.0)
    return _finish(out, unbatched, reduction)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error ``(input - target) ** 2``, reduced by 'mean' (default), 'sum' or
    'none'; the operands broadcast first. Without a weight, as PyTorch's kernel: in their
    promoted dtype, floating point only (as smooth_l1_loss's). `weight` (a tensor of the
    input's shape) multiplies each squared error, as PyTorch's Python code does it (integers
    and their promotion with the weight as its tensor ops have them), and 'mean' is then the
    weighted mean ``sum(weight * error) / sum(weight)``."""
    op = "mse_loss"
    reduction = _reduction(reduction, size_average, reduce)
    _elementwise_loss_inputs(op, input, target, weight)
    input, target = _broadcast_pair(op, input, target)
    if weight is None:
        input, target = _floating_loss(op, input, target)
    diff = input - target
    loss = diff * diff
    if weight is not None:
        loss = loss * weight
        if reduction == "mean":
            return loss.sum() / weight.sum()
    return _reduced(loss, reduction)


# ---------------------------------------------------------------------------------------------
# more of PyTorch's training ops: L1 / smooth L1 / Huber losses, hardtanh / relu6, one_hot
#
# Built from differentiable tensor ops; each piece's gradient at its kinks is PyTorch's (0 at
# |input - target| = 0; the linear piece's at |input - target| = beta or delta; 0 at
# hardtanh's limits).
# ---------------------------------------------------------------------------------------------

__all__ += ["l1_loss", "smooth_l1_loss", "huber_loss", "hardtanh", "relu6", "one_hot"]


def _elementwise_loss_inputs(op: str, input, target, weight=None) -> None:
    """The checks PyTorch's elementwise losses make: tensors, a weight of the input's shape;
    a warning where input and target differ in shape (they broadcast)."""
    _check_tensor(input, op, "input")
    _check_tensor(target, op, "target")
    if weight is not None:
        _check_tensor(weight, op, "weight")
        if tuple(weight.shape) != tuple(input.shape):
            raise ValueError(f"Weights and input must have the same size: weight of shape "
                             f"{tuple(weight.shape)}, input of shape {tuple(input.shape)}")
    if tuple(input.shape) != tuple(target.shape):
        warnings.warn(
            f"Using a target size ({target.shape}) that is different to the input size "
            f"({input.shape}). This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.", UserWarning, stacklevel=3)


def _broadcast_pair(op: str, input, target):
    """input and target expanded to their broadcast shape first, as PyTorch's losses do
    (so that a 0-d operand takes part in type promotion as a dimensioned one: a 0-d
    float32 input and a float16 target of shape (0,) give float32)."""
    try:
        shape = np.broadcast_shapes(tuple(input.shape), tuple(target.shape))
    except ValueError:
        raise RuntimeError(f"{op}: input of shape {tuple(input.shape)} and target of shape "
                           f"{tuple(target.shape)} do not broadcast") from None
    return input.broadcast_to(shape), target.broadcast_to(shape)


def _reduced(loss, reduction: str):
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


def _floating_loss(op: str, input, target):
    """The operands of smooth_l1_loss, huber_loss and mse_loss (without a weight) in their
    promoted dtype, floating point only (PyTorch's kernels have no integer version; they
    take a bool operand, cast)."""
    common = result_type(input, target)
    if not common.is_floating_point:
        raise RuntimeError(f'"{op}" not implemented for integer input and target ({input.dtype} '
                           f"of shape {tuple(input.shape)}, {target.dtype} of shape "
                           f"{tuple(target.shape)}); convert them with .float()")
    return input.to(common), target.to(common)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean absolute error ``|input - target|``, reduced by 'mean' (default), 'sum' or 'none';
    input and target broadcast (with a warning where their shapes differ). `weight` (of the
    input's shape) multiplies each error, and 'mean' is then ``sum(weight * error) /
    sum(weight)``, as mse_loss's. The gradient at input == target is 0.

    >>> F.l1_loss(corrnet.tensor([1., 2., 4.]), corrnet.tensor([1., 3., 2.]))
    tensor(1.)
    """
    op = "l1_loss"
    reduction = _reduction(reduction, size_average, reduce)
    _elementwise_loss_inputs(op, input, target, weight)
    input, target = _broadcast_pair(op, input, target)
    loss = (input - target).abs()
    if weight is not None:
        loss = loss * weight
        if reduction == "mean":
            return loss.sum() / weight.sum()
    return _reduced(loss, reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """``0.5 d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta``, d = input - target;
    beta = 0 is l1_loss (integers too); else floating point only (input or target), beta > 0.

    >>> F.smooth_l1_loss(corrnet.tensor([0.5, 3.]), corrnet.tensor([0., 0.]), reduction="none")
    tensor([0.1250, 2.5000])
    """
    op = "smooth_l1_loss"
    reduction = _reduction(reduction, size_average, reduce)
    _elementwise_loss_inputs(op, input, target)
    input, target = _broadcast_pair(op, input, target)
    if beta == 0:       # (PyTorch's l1_loss: integers too)
        return _reduced((input - target).abs(), reduction)
    input, target = _floating_loss(op, input, target)
    if beta < 0:
        raise RuntimeError(f"smooth_l1_loss does not support negative values for beta (got "
                           f"beta={beta})")
    diff = input - target
    size = diff.abs()
    # (NaN counts as near, as in PyTorch's kernels: its gradient is NaN there, where l1_loss's
    # is 0; and only the near differences are squared: an infinite one's square, even
    # unselected, would send NaN back through its gradient)
    near = (size >= beta).logical_not()
    quadratic = _where(near, diff, 0.0)
    return _reduced(_where(near, quadratic * quadratic * (0.5 / beta), size - 0.5 * beta),
                    reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """``0.5 d**2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``, d = input -
    target; delta > 0. Computed in the promoted dtype of input and target, returned in the
    input's (as PyTorch's kernel: float32 input, float64 target -> float32; an integer input
    with a floating target is refused). `weight` (of the input's shape) multiplies each
    loss, and 'mean' is then the plain mean of the products (unlike l1_loss's and mse_loss's
    weighted mean, as in PyTorch).

    >>> F.huber_loss(corrnet.tensor([0.5, 3.]), corrnet.tensor([0., 0.]), reduction="none")
    tensor([0.1250, 2.5000])
    """
    op = "huber_loss"
    reduction = _reduction(reduction)
    _elementwise_loss_inputs(op, input, target, weight)
    input, target = _broadcast_pair(op, input, target)
    result_dtype = input.dtype
    if not delta > 0:
        raise RuntimeError(f"huber_loss does not support non-positive values for delta (got "
                           f"delta={delta})")
    if not result_dtype.is_floating_point and result_type(input, target).is_floating_point:
        raise RuntimeError(f"huber_loss: result type {result_type(input, target)} can't be cast "
                           f"to the input's {result_dtype} (input of shape "
                           f"{tuple(input.shape)}); convert it with .float()")
    input, target = _floating_loss(op, input, target)
    diff = input - target
    size = diff.abs()
    near = (size >= delta).logical_not()
    quadratic = _where(near, diff, 0.0)     # (both as smooth_l1_loss's)
    loss = _where(near, quadratic * quadratic * 0.5, (size - 0.5 * delta) * delta)
    loss = loss.to(result_dtype)
    if weight is not None:
        loss = loss * weight
    return _reduced(loss, reduction)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """input clamped to [min_val, max_val]; its gradient 1 strictly inside, 0 at and beyond
    the limits (PyTorch's). Integers too, the limits truncated (not bool; not uint8 with a
    negative limit).

    >>> F.hardtanh(corrnet.tensor([-2., 0.5, 3.]))
    tensor([-1.0000,  0.5000,  1.0000])
    """
    op = "hardtanh"
    _check_tensor(input, op, "input")
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val cannot be greater than max_val (got min_val="
                         f"{min_val}, max_val={max_val})")
    if input.dtype == bool_:
        raise RuntimeError(f"Bool inputs not supported for {op} (input of shape "
                           f"{tuple(input.shape)})")
    if not input.dtype.is_floating_point:
        # integers: the limits truncated to integers first, as PyTorch converts them
        low, high = math.trunc(min_val), math.trunc(max_val)
        if input.dtype.name.startswith("uint") and min(low, high) < 0:
            raise RuntimeError(f"cannot do {op} on an unsigned type with negative limits "
                               f"(input {input.dtype} of shape {tuple(input.shape)}, "
                               f"min_val={min_val})")
        return _activation(input, inplace, lambda x: x.clamp(low, high))
    # three pieces, so that the gradient is 0 at the limits themselves (and 1 at NaN, which
    # passes through, as PyTorch's)
    return _activation(input, inplace, lambda x: _where(
        x <= min_val, min_val, _where(x >= max_val, max_val, x)))


def relu6(input, inplace=False):
    """min(max(input, 0), 6): hardtanh(input, 0, 6).

    >>> F.relu6(corrnet.tensor([-1., 3., 7.]))
    tensor([0., 3., 6.])
    """
    return hardtanh(input, 0.0, 6.0, inplace)


def one_hot(tensor, num_classes=-1):
    """(*, num_classes) int64: 1 at each index of `tensor` (int64, values in [0, num_classes)),
    0 elsewhere; num_classes=-1 takes the largest value + 1 (refused for an empty tensor, and
    so is any num_classes below 1 there). Not differentiable.

    >>> F.one_hot(corrnet.tensor([0, 2]))
    tensor([[1, 0, 0],
            [0, 0, 1]])
    """
    op = "one_hot"
    _check_tensor(tensor, op, "tensor")
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise TypeError(f"one_hot(): argument 'num_classes' (position 2) must be int, not "
                        f"{type(num_classes).__name__}")
    if tensor.dtype.name != "int64":
        raise RuntimeError(f"one_hot is only applicable to index tensor of type int64 (got "
                           f"{tensor.dtype} of shape {tuple(tensor.shape)})")
    indices = tensor._data
    if indices.size == 0 and num_classes <= 0:
        num_classes = -1
    if num_classes == -1:
        if indices.size == 0:
            raise RuntimeError(f"one_hot: can not infer the total number of classes from an "
                               f"empty tensor (of shape {tuple(tensor.shape)}); pass "
                               "num_classes")
        num_classes = int(indices.max()) + 1
    if indices.size and int(indices.min()) < 0:
        raise RuntimeError(f"one_hot: class values must be non-negative (got "
                           f"{int(indices.min())})")
    if indices.size and int(indices.max()) >= num_classes:
        raise RuntimeError(f"one_hot: class values must be smaller than num_classes (got "
                           f"{int(indices.max())}, num_classes={num_classes})")
    classes = _devices.to_device(np.arange(num_classes), tensor.device)
    # (*, num_classes) = (*, 1) == (num_classes,)
    return _wrap((indices[..., None] == classes).astype(np.int64))


# ---------------------------------------------------------------------------------------------
# issue 12: activations, normalizations, dropout2d, pixel shuffle, interpolate
#
# Built from differentiable tensor ops (so they are differentiable as far as those are); the
# new Functions, where composition would be inaccurate (expm1, log1p, erf) or slow
# (interpolate), are in _layer_ops.py.
# ---------------------------------------------------------------------------------------------

import math  # noqa: E402

from ..autograd import no_grad as _no_grad  # noqa: E402
from ..kernels import interpolate as _interp_tables  # noqa: E402
from ..tensor import where as _where  # noqa: E402
from . import _layer_ops  # noqa: E402

__all__ += [
    "leaky_relu", "elu", "gelu", "silu", "mish", "prelu", "hardswish", "softplus",
    "dropout2d", "layer_norm", "group_norm", "instance_norm", "local_response_norm",
    "pixel_shuffle", "pixel_unshuffle", "interpolate", "upsample", "upsample_nearest",
    "upsample_bilinear",
]


def _floating_input(op: str, input) -> None:
    _check_tensor(input, op, "input")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f'"{op}" not implemented for \'{input.dtype}\' input (of shape '
                           f"{tuple(input.shape)}); convert it with .float()")


def _activation(input, inplace, compute):
    """compute(input), or with ``inplace=True`` written into `input`. In place, the op is
    computed on a copy when gradients are recorded: its backward saves its input (as
    PyTorch's elu_ saves its result instead), which the write would otherwise overwrite."""
    if not inplace:
        return compute(input)
    source = input.clone() if input.requires_grad and is_grad_enabled() else input
    return input._inplace(compute(source))


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x where x > 0, else negative_slope * x.

    >>> F.leaky_relu(corrnet.tensor([-2., 3.]), 0.1)
    tensor([-0.2000,  3.0000])
    """
    _floating_input("leaky_relu", input)
    negative_slope = _args.check_float("leaky_relu", "negative_slope", negative_slope)
    return _activation(input, inplace,
                       lambda x: _where(x > 0, x, x * negative_slope))


def elu(input, alpha=1.0, inplace=False):
    """x where x > 0, else alpha * (exp(x) - 1) (exp(x) - 1 computed as expm1: exact near 0).

    >>> F.elu(corrnet.tensor([-1., 2.]))
    tensor([-0.6321,  2.0000])
    """
    _floating_input("elu", input)
    alpha = _args.check_float("elu", "alpha", alpha)
    # the exponential's branch sees 0 where x > 0: exp neither overflows there nor makes the
    # gradient NaN through the branch not taken. A NaN takes the exponential's branch: its
    # gradient is NaN, as PyTorch's elu backward gives it in its vectorized loop (every
    # element of a large tensor, on AVX2 and AVX-512 alike); only its scalar tail, the last
    # < 2 vectors' elements, takes x's branch there (1)
    return _activation(input, inplace, lambda x: _where(
        x > 0, x, _layer_ops.Expm1.apply(_where(x > 0, 0.0, x)) * alpha))


_SQRT1_2 = 0.7071067811865476           # 1 / sqrt(2)
_SQRT_2_OVER_PI = 0.7978845608028654    # sqrt(2 / pi)


def gelu(input, approximate="none"):
    """x * Phi(x), Phi the standard normal CDF: ``x * 0.5 * (1 + erf(x / sqrt(2)))``; with
    ``approximate='tanh'``, ``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))``.

    >>> F.gelu(corrnet.tensor([1.]))
    tensor([0.8413])
    """
    _floating_input("gelu", input)
    if approximate == "none":
        return input * 0.5 * (_layer_ops.Erf.apply(input * _SQRT1_2) + 1)
    if approximate == "tanh":
        inner = (input + input * input * input * 0.044715) * _SQRT_2_OVER_PI
        return input * 0.5 * (inner.tanh() + 1)
    raise RuntimeError(f"gelu: approximate argument must be either none or tanh, got "
                       f"{approximate!r}")


def silu(input, inplace=False):
    """x * sigmoid(x) (the swish).

    >>> F.silu(corrnet.tensor([0., 1.]))
    tensor([0.0000, 0.7311])
    """
    _floating_input("silu", input)
    return _activation(input, inplace, lambda x: x * x.sigmoid())


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta * x)) / beta; x itself where beta * x > threshold (log1p: exact
    where exp(beta * x) is small).

    >>> F.softplus(corrnet.tensor([0.]))
    tensor([0.6931])
    """
    _floating_input("softplus", input)
    beta = _args.check_float("softplus", "beta", beta)
    threshold = _args.check_float("softplus", "threshold", threshold)
    if input._data.dtype == np.float16:
        # in float32, as PyTorch's (exp overflows float16 from 11.09, below the threshold)
        return softplus(input.float(), beta, threshold).to(input.dtype)
    scaled = input * beta
    # the clamp keeps exp finite in the branch not taken (its gradient would be NaN); its
    # bound within the dtype (a threshold of 1e30 is no error); beyond exp's range the
    # formula is inf (and its gradient NaN), as PyTorch's
    limit = min(threshold, float(np.finfo(input._data.dtype).max))
    soft = _layer_ops.Log1p.apply(scaled.clamp(max=limit).exp()) / beta
    return _where(scaled > threshold, input, soft)


def mish(input, inplace=False):
    """x * tanh(softplus(x)).

    >>> F.mish(corrnet.tensor([1.]))
    tensor([0.8651])
    """
    _floating_input("mish", input)
    return _activation(input, inplace, lambda x: x * softplus(x).tanh())


def hardswish(input, inplace=False):
    """x * relu6(x + 3) / 6: 0 below -3, x above 3.

    >>> F.hardswish(corrnet.tensor([-4., 1., 4.]))
    tensor([-0.0000,  0.6667,  4.0000])
    """
    _floating_input("hardswish", input)
    # as three pieces, so that the gradient at the kinks is PyTorch's: 0 at -3, 1 at 3
    return _activation(input, inplace, lambda x: _where(
        x <= -3, x * 0, _where(x < 3, x * (x + 3) / 6, x)))


def prelu(input, weight):
    """x where x > 0, else weight * x, with one learnt slope (weight of 1 element) or one per
    channel (dimension 1 of the input).

    >>> F.prelu(corrnet.tensor([[-1., 1.]]), corrnet.tensor([0.25]))
    tensor([[-0.2500,  1.0000]])
    """
    op = "prelu"
    _floating_input(op, input)
    _check_tensor(weight, op, "weight")
    if weight.dim() > 1:
        raise RuntimeError(f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: "
                           f"ndim = {weight.dim()} (weight of shape {tuple(weight.shape)})")
    _check_same_dtype(op, input, weight=weight)
    count = weight.numel()
    if count == 1:  # the output has the input's shape (a 0-d input stays 0-d)
        weight = weight.reshape(())
    else:
        channels = input.shape[1] if input.dim() >= 2 else 1
        if count != channels:
            raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found "
                               f"parameter numbers = {count} and channel size = {channels} "
                               f"(input of shape {tuple(input.shape)}).")
        weight = weight.reshape((1, count) + (1,) * (input.dim() - 2))
    return _where(input > 0, input, weight * input)


def _feature_mask(input, p):
    """The mask of dropout2d: one Bernoulli(1 - p) draw per (sample, channel), scaled by
    1 / (1 - p), shape (N, C, 1, ...)."""
    np_dtype = input._data.dtype
    shape = tuple(input.shape[:2]) + (1,) * (input.dim() - 2)
    if p == 1:
        return np.zeros(shape, dtype=np_dtype)
    keep = _rng().random(shape, dtype=np.float64 if np_dtype == np.float64 else np.float32)
    return (keep < 1.0 - p) * np.asarray(1.0 / (1.0 - p), dtype=np_dtype)


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Channel-wise dropout: zero whole channels input[n, c] with probability `p` and scale
    the others by 1/(1-p) (training only). Meant for (N, C, H, W) input; a 3-D input is taken
    as (N, C, L) (with PyTorch's warning), other ranks are deprecated (a warning).

    >>> F.dropout2d(corrnet.ones(1, 2, 2, 2), p=0.5, training=False).shape
    torch.Size([1, 2, 2, 2])
    """
    op = "dropout2d"
    _check_tensor(input, op, "input")
    p = _args.check_float(op, "p", p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    training = _args.check_bool(op, "training", training)
    rank = input.dim()
    if rank not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {rank}-D input to dropout2d, which is deprecated and will "
            "result in an error in a future release. To retain the behavior and silence this "
            "warning, please use dropout instead. Note that dropout2d exists to provide "
            "channel-wise dropout on inputs with 2 spatial dimensions, a channel dimension, "
            "and an optional batch dimension (i.e. 3D or 4D inputs).", stacklevel=2)
    if rank == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D "
            "dropout behavior is desired - input is interpreted as shape (N, C, L), where C is "
            "the channel dim. This behavior will change in a future release to interpret the "
            "input as one without a batch dimension, i.e. shape (C, H, W). To maintain the 1D "
            "channel-wise dropout behavior, please switch to using dropout1d instead.",
            stacklevel=2)
    if not training or p == 0 or input.numel() == 0:
        return input
    if rank < 2:
        raise RuntimeError(f"Feature dropout requires at least 2 dimensions in the input "
                           f"(got input of shape {tuple(input.shape)})")
    if not input.dtype.is_floating_point and p != 1:
        raise RuntimeError(f"dropout2d: expected a floating point input, got {input.dtype}")
    out = input * _wrap(_devices.to_device(_feature_mask(input, p), input.device))
    return input._inplace(out) if inplace else out


def _normalize(x, axes, eps):
    """(x - mean) / sqrt(var + eps) over `axes` (biased variance)."""
    mean = x.mean(axes, keepdim=True)
    var = x.var(axes, correction=0, keepdim=True)
    return (x - mean) * (1 / (var + eps).sqrt())


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalize over the trailing dimensions `normalized_shape` (mean 0, biased variance 1
    per sample), then ``* weight + bias`` (each of shape normalized_shape).

    >>> F.layer_norm(corrnet.tensor([[1., 3.]]), [2])
    tensor([[-1.0000,  1.0000]])
    """
    op = "layer_norm"
    _floating_input(op, input)
    # a tuple or list of ints (PyTorch's functional form refuses a bare int, nn.LayerNorm
    # takes one)
    if not isinstance(normalized_shape, (tuple, list)):
        raise TypeError(f"layer_norm(): argument 'normalized_shape' (position 2) must be tuple "
                        f"of ints, not {_args.type_name(normalized_shape)}")
    normalized_shape = tuple(_args.check_int(op, "normalized_shape", n)
                             for n in normalized_shape)
    count = len(normalized_shape)
    if count == 0 or tuple(input.shape[input.dim() - count:]) != normalized_shape \
            or input.dim() < count:
        raise RuntimeError(f"Given normalized_shape={list(normalized_shape)}, expected input "
                           f"with shape [*, {', '.join(map(str, normalized_shape))}], but got "
                           f"input of size{list(input.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None:
            _check_tensor(t, op, name)
            if tuple(t.shape) != normalized_shape:
                raise RuntimeError(f"Expected {name} to be of same shape as normalized_shape, "
                                   f"but got {name} of shape {list(t.shape)} and "
                                   f"normalized_shape = {list(normalized_shape)}")
    _check_same_dtype(op, input, weight=weight, bias=bias)
    out = _normalize(input, tuple(range(-count, 0)), eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def _channel_affine(out, weight, bias):
    """out * weight + bias, weight and bias (C,) broadcast over dimension 1."""
    shape = (1, out.shape[1]) + (1,) * (out.dim() - 2)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Split the channels (dimension 1) into `num_groups` groups and normalize each group of
    each sample over its channels and positions, then a per-channel ``* weight + bias``.

    >>> F.group_norm(corrnet.tensor([[[1.], [3.]]]), 1).reshape(-1)
    tensor([-1.0000,  1.0000])
    """
    op = "group_norm"
    _floating_input(op, input)
    num_groups = _args.check_int(op, "num_groups", num_groups)
    if input.dim() < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received "
                           f"{input.dim()}")
    batch, channels = input.shape[:2]
    spatial = tuple(input.shape[2:])
    if num_groups <= 0 or channels % num_groups:
        raise RuntimeError(f"Expected number of channels in input to be divisible by "
                           f"num_groups, but got input of shape {list(input.shape)} and "
                           f"num_groups={num_groups}")
    per_group = channels // num_groups * int(np.prod(spatial, dtype=np.int64))
    if batch * channels // num_groups * int(np.prod(spatial, dtype=np.int64)) == 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input "
                         f"size {[batch * channels // num_groups, num_groups, *spatial]}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None:
            _check_tensor(t, op, name)
            if t.dim() != 1 or t.numel() != channels:
                raise RuntimeError(f"Expected {name} to be a vector of size equal to the number "
                                   f"of channels in input, but got {name} of shape "
                                   f"{list(t.shape)} and input of shape {list(input.shape)}")
    _check_same_dtype(op, input, weight=weight, bias=bias)
    grouped = input.reshape(batch, num_groups, per_group)   # (N, G, C/G * prod(spatial))
    out = _normalize(grouped, (2,), eps).reshape(tuple(input.shape))
    return _channel_affine(out, weight, bias)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Normalize each channel of each sample over its positions (PyTorch's way: batch
    normalization of the input seen as (1, N * C, ...)); with running statistics, update them
    by the mean over the batch of each sample's statistics.

    >>> F.instance_norm(corrnet.tensor([[[1., 3.]]])).reshape(-1)
    tensor([-1.0000,  1.0000])
    """
    op = "instance_norm"
    _check_tensor(input, op, "input")
    if input.dim() < 2:
        raise RuntimeError(f"{op}: expected input of shape (N, C, ...) with at least 2 "
                           f"dimensions, got shape {tuple(input.shape)}")
    if use_input_stats and int(np.prod(input.shape[2:], dtype=np.int64)) == 1:
        raise ValueError(f"Expected more than 1 spatial element when training, got input size "
                         f"{input.shape}")
    batch, channels = input.shape[:2]
    for name, t in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):
        if t is not None:
            _check_tensor(t, op, name)
            if t.numel() != channels:
                raise RuntimeError(f"{op}: {name} should contain {channels} elements (one per "
                                   f"channel of input {tuple(input.shape)}), got shape "
                                   f"{tuple(t.shape)}")
    flat = input.reshape((1, batch * channels) + tuple(input.shape[2:]))
    # As PyTorch's instance_norm: running statistics of any float dtype are used in the
    # input's (and keep their own: copy_ below); a weight and bias of another dtype only as
    # float32 with a float16 input (its mixed-dtype rule), else batch_norm's error.
    dtype = input.dtype if input.dtype.is_floating_point else None

    def per_instance(t, running):
        if t is None:
            return None
        t = (t.detach() if running else t).reshape(-1).repeat(batch)
        mixed = running or (dtype is not None and dtype.name == "float16"
                            and t.dtype.name == "float32")
        return t.to(dtype) if mixed and dtype is not None and t.dtype.is_floating_point else t

    repeated = [per_instance(t, True) for t in (running_mean, running_var)]
    out = batch_norm(flat, repeated[0], repeated[1], per_instance(weight, False),
                     per_instance(bias, False), use_input_stats, momentum, eps)
    if use_input_stats:
        with _no_grad():
            for t, updated in zip((running_mean, running_var), repeated, strict=True):
                if t is not None:
                    t.copy_(updated.reshape(batch, channels).mean(0).reshape(t.shape))
    return out.reshape(tuple(input.shape))


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """Divide each element by ``(k + alpha * mean of squares over `size` neighbouring
    channels) ** beta``; the channel window is centred (size // 2 before, (size - 1) // 2
    after) and zero-padded at the ends, as PyTorch.

    >>> F.local_response_norm(corrnet.ones(1, 1, 2), size=1, alpha=1.0, beta=1.0).reshape(-1)
    tensor([0.5000, 0.5000])
    """
    op = "local_response_norm"
    _floating_input(op, input)
    size = _args.check_int(op, "size", size)
    if input.dim() < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {input.dim()} "
                         f"dimensions, input of shape {tuple(input.shape)})")
    if size <= 0:
        raise ValueError(f"{op}: size must be a positive int, got {size}")
    if input.numel() == 0:
        return input
    batch, channels = input.shape[:2]
    positions = int(np.prod(input.shape[2:], dtype=np.int64))
    squares = (input * input).reshape(batch, 1, channels, positions)  # (N, 1, C, prod(spatial))
    squares = pad(squares, (0, 0, size // 2, (size - 1) // 2))  # noqa: F405 - corrnet.functional
    div = avg_pool2d(squares, (size, 1), stride=1)  # noqa: F405 - (N, 1, C, prod(spatial))
    div = (div.reshape(tuple(input.shape)) * alpha + k) ** beta
    return input / div


def _pixel_shuffle_args(op, input, factor, name):
    _check_tensor(input, op, "input")
    factor = _args.check_int(op, name, factor)
    if input.dim() < 3:
        raise RuntimeError(f"{op} expects input to have at least 3 dimensions, but got input "
                           f"with {input.dim()} dimension(s)")
    if factor <= 0:
        raise RuntimeError(f"{op} expects a positive {name}, but got {factor}")
    return factor


def pixel_shuffle(input, upscale_factor):
    """(*, C * r * r, H, W) -> (*, C, H * r, W * r): each group of r * r channels becomes an
    r x r block of pixels (r = upscale_factor).

    >>> F.pixel_shuffle(corrnet.arange(4.).reshape(1, 4, 1, 1), 2).reshape(2, 2)
    tensor([[0., 1.],
            [2., 3.]])
    """
    op = "pixel_shuffle"
    r = _pixel_shuffle_args(op, input, upscale_factor, "upscale_factor")
    *lead, channels, height, width = input.shape
    if channels % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be "
                           f"divisible by the square of upscale_factor, but input.size(-3)="
                           f"{channels} is not divisible by {r * r}")
    n = len(lead)
    x = input.reshape(*lead, channels // (r * r), r, r, height, width)  # (*, C, r, r, H, W)
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)             # (*, C, H, r, W, r)
    return x.reshape(*lead, channels // (r * r), height * r, width * r)


def pixel_unshuffle(input, downscale_factor):
    """(*, C, H * r, W * r) -> (*, C * r * r, H, W), the inverse of pixel_shuffle.

    >>> F.pixel_unshuffle(corrnet.arange(4.).reshape(1, 1, 2, 2), 2).reshape(-1)
    tensor([0., 1., 2., 3.])
    """
    op = "pixel_unshuffle"
    r = _pixel_shuffle_args(op, input, downscale_factor, "downscale_factor")
    *lead, channels, height, width = input.shape
    for what, index, size in (("height", -2, height), ("width", -1, width)):
        if size % r:
            raise RuntimeError(f"pixel_unshuffle expects {what} to be divisible by "
                               f"downscale_factor, but input.size({index})={size} is not "
                               f"divisible by {r}")
    n = len(lead)
    x = input.reshape(*lead, channels, height // r, r, width // r, r)  # (*, C, H, r, W, r)
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)            # (*, C, r, r, H, W)
    return x.reshape(*lead, channels * r * r, height // r, width // r)


_INTERPOLATE_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area",
                      "nearest-exact")
_MODE_RANK = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}


def _interpolate_sizes(op, input, size, scale_factor, recompute_scale_factor):
    """PyTorch's resolution of size / scale_factor: (output sizes, scales to interpolate with
    (None each where the sizes define them))."""
    dims = input.dim() - 2
    spatial = list(input.shape[2:])
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        if recompute_scale_factor:
            raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
        if isinstance(size, (list, tuple)):
            if len(size) != dims:
                raise ValueError(
                    f"Input and output must have the same number of spatial dimensions, but "
                    f"got input with spatial dimensions of {spatial} and output size of "
                    f"{size}. Please provide input tensor in (N, C, d1, d2, ...,dK) format and "
                    "output size in (o1, o2, ...,oK) format.")
            if not all(_args.is_int(s) for s in size):
                raise TypeError(f"expected size to be one of int or Tuple[int] or Tuple[int, "
                                f"int] or Tuple[int, int, int], but got size with types "
                                f"{[type(s) for s in size]}")
            sizes = [int(s) for s in size]
        else:
            sizes = [_args.check_int(op, "size", size)] * dims
        return sizes, [None] * dims
    if scale_factor is None:
        raise ValueError("either size or scale_factor should be defined")
    if isinstance(scale_factor, (list, tuple)):
        if len(scale_factor) != dims:
            raise ValueError(
                f"Input and scale_factor must have the same number of spatial dimensions, but "
                f"got input with spatial dimensions of {spatial} and scale_factor of shape "
                f"{scale_factor}. Please provide input tensor in (N, C, d1, d2, ...,dK) format "
                "and scale_factor in (s1, s2, ...,sK) format.")
        scales = [_args.check_float(op, "scale_factor", s) for s in scale_factor]
    else:
        scales = [_args.check_float(op, "scale_factor", scale_factor)] * dims
    products = [n * s for n, s in zip(spatial, scales, strict=True)]
    if not all(math.isfinite(p) and abs(p) < 2**63 for p in products):
        raise RuntimeError(f"{op}: value cannot be converted to type int64_t without overflow "
                           f"(scale_factor {scale_factor} for input sizes {spatial})")
    sizes = [int(math.floor(p)) for p in products]
    return sizes, ([None] * dims if recompute_scale_factor else scales)


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize the spatial dimensions of (N, C, L), (N, C, H, W) (or, for 'nearest' and
    'area', (N, C, D, H, W)) input to `size`, or by `scale_factor` (output size
    floor(input size * scale_factor)). Modes: 'nearest' (PyTorch's: source index
    floor(o * in / out)), 'nearest-exact' (floor((o + 0.5) * in / out)), 'linear' (3-D),
    'bilinear' and 'bicubic' (4-D), with or without `align_corners`, 'area' (adaptive average
    pooling), and ``antialias=True`` for bilinear / bicubic (Pillow's filters when
    downsampling). Without `recompute_scale_factor`, a given scale factor is also used to
    place the samples (as PyTorch). The backward is exact: each output's gradient goes back
    to its source pixels with the forward's weights.

    >>> F.interpolate(corrnet.tensor([[[1., 2.]]]), scale_factor=2, mode="linear")
    tensor([[[1.0000, 1.2500, 1.7500, 2.0000]]])
    """
    op = "interpolate"
    _check_tensor(input, op, "input")
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError("align_corners option can only be set with the interpolating "
                             "modes: linear | bilinear | bicubic | trilinear")
    elif align_corners is None:
        align_corners = False
    else:
        align_corners = _args.check_bool(op, "align_corners", align_corners)
    antialias = _args.check_bool(op, "antialias", antialias)
    rank = input.dim()
    if mode not in _INTERPOLATE_MODES or rank not in (3, 4, 5):
        raise NotImplementedError(
            f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {rank}D) for the "
            f"modes: nearest | linear | bilinear | bicubic | trilinear | area | nearest-exact "
            f"(got {mode})")
    sizes, scales = _interpolate_sizes(op, input, size, scale_factor, recompute_scale_factor)
    if antialias and not (mode in ("bilinear", "bicubic") and rank == 4):
        raise ValueError("Anti-alias option is restricted to bilinear, bicubic, and lanczos "
                         "modes and requires a 4-D tensor as input")
    expected = _MODE_RANK.get(mode)
    if expected is not None and expected != rank:
        raise NotImplementedError(f"Got {rank}D input, but {mode} mode needs {expected}D input")
    if mode == "trilinear":
        raise NotImplementedError("interpolate: mode 'trilinear' (5-D input) is not supported "
                                  "by corrnet")
    spatial = tuple(input.shape[2:])
    # (zero sizes left out: a table per output size is built even for an empty batch)
    if math.prod(max(n, 1) for n in list(input.shape[:2]) + sizes) > _args.INT64_MAX:
        raise RuntimeError(f"{op}: Storage size calculation overflowed with sizes="
                           f"{list(input.shape[:2]) + sizes}")
    if mode != "area" and (min(spatial, default=1) <= 0 or min(sizes) <= 0):
        raise RuntimeError(f"{op}: Input and output sizes should be greater than 0, but got "
                           f"input {spatial} output {tuple(sizes)}")
    if mode == "area":  # adaptive average pooling: an output size of 0 gives an empty result
        pool = {3: adaptive_avg_pool1d, 4: adaptive_avg_pool2d}.get(rank)  # noqa: F405
        if pool is None:
            raise NotImplementedError("interpolate: mode 'area' of 5-D input is not supported "
                                      "by corrnet")
        return pool(input, tuple(sizes))
    if mode not in ("nearest", "nearest-exact") and not input.dtype.is_floating_point:
        raise RuntimeError(f'"upsample_{mode}" not implemented for \'{input.dtype}\' input; '
                           "convert it with .float()")
    np_dtype = input._data.dtype
    tables = []
    for n, out_size, scale in zip(spatial, sizes, scales, strict=True):
        if mode in ("nearest", "nearest-exact"):
            table = _interp_tables.nearest_table(n, out_size, scale, mode == "nearest-exact",
                                                 shortcuts=rank == 4)
        elif antialias:
            table = _interp_tables.antialias_table(n, out_size, scale, align_corners,
                                                   mode == "bicubic", np_dtype)
        elif mode == "bicubic":
            table = _interp_tables.cubic_table(n, out_size, scale, align_corners, np_dtype)
        else:
            table = _interp_tables.linear_table(n, out_size, scale, align_corners, np_dtype)
        tables.append(None if antialias and out_size == n else table)
    # PyTorch's node name: UpsampleBilinear2DBackward0, UpsampleNearestExact1DBackward0, ...
    kind = {"nearest": "Nearest", "nearest-exact": "NearestExact", "linear": "Linear",
            "bilinear": "Bilinear", "bicubic": "Bicubic"}[mode]
    name = f"Upsample{kind}{rank - 2}D{'Aa' if antialias else ''}Backward0"
    # Where PyTorch's backward is not the adjoint of its forward (a scale factor that keeps a
    # size, say 1.3 on a width of 2, or doubles it, 2.3 on 2):
    grad_tables = None
    if mode == "bicubic" and not antialias and tuple(sizes) == spatial:
        # its bicubic backward copies the gradient when no axis changes size, although its
        # forward resamples with the scale factor
        grad_tables = (None,) * len(tables)
    elif mode == "nearest" and rank != 4:
        # its 1-D and 3-D 'nearest' backward takes the 2-D shortcuts (a kept axis copied, a
        # doubled one halved) that their forward does not
        grad_tables = tuple(_interp_tables.nearest_table(n, out_size, scale, False)
                            for n, out_size, scale in zip(spatial, sizes, scales, strict=True))
    return _layer_ops.Interpolate.apply(input, tuple(tables), name, grad_tables)


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """The deprecated name of `interpolate` (with PyTorch's warning)."""
    warnings.warn("nn.functional.upsample is deprecated. Use nn.functional.interpolate "
                  "instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    """The deprecated ``interpolate(mode='nearest')`` (with PyTorch's warning)."""
    warnings.warn("nn.functional.upsample_nearest is deprecated. Use "
                  "nn.functional.interpolate instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    """The deprecated ``interpolate(mode='bilinear', align_corners=True)`` (with PyTorch's
    warning)."""
    warnings.warn("nn.functional.upsample_bilinear is deprecated. Use "
                  "nn.functional.interpolate instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)
