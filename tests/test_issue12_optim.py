"""Issue 12's training API against PyTorch: RMSprop and Adagrad, the schedulers LambdaLR,
OneCycleLR and ReduceLROnPlateau (with MultiStepLR and ExponentialLR), gradient clipping and
the parameter/vector conversions. The same training trajectory (a small model with copied
weights, the same batches) runs in both, and the parameters and learning rates are compared
after every step."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from test_optim import (
    OPT,
    TOL,
    assert_params_close,
    assert_state_close,
    dtypes,
    make_params,
    run_both,
    seeds,
)

import corrnet as cn
from corrnet import nn, optim

# -- RMSprop and Adagrad, step by step -------------------------------------------------------


@OPT
@given(dtype=dtypes, seed=seeds, lr=st.sampled_from([1e-3, 0.01, 0.1]),
       alpha=st.sampled_from([0.5, 0.9, 0.99]), eps=st.sampled_from([1e-8, 1e-3]),
       weight_decay=st.sampled_from([0.0, 0.1]), momentum=st.sampled_from([0.0, 0.9]),
       centered=st.booleans(), maximize=st.booleans())
def test_issue12_rmsprop_matches_torch(dtype, seed, lr, alpha, eps, weight_decay, momentum,
                                       centered, maximize):
    kwargs = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                  centered=centered, maximize=maximize)
    cparams, tparams, copt, topt = run_both("RMSprop", kwargs, dtype, seed, steps=12)
    assert_params_close(cparams, tparams, dtype, f"RMSprop {kwargs}")
    assert_state_close(copt.state_dict()["state"], topt.state_dict()["state"], dtype)


@OPT
@given(dtype=dtypes, seed=seeds, lr=st.sampled_from([1e-3, 0.01, 0.5]),
       lr_decay=st.sampled_from([0.0, 0.1]), weight_decay=st.sampled_from([0.0, 0.1]),
       initial_accumulator_value=st.sampled_from([0.0, 0.5]),
       eps=st.sampled_from([1e-10, 1e-3]), maximize=st.booleans())
def test_issue12_adagrad_matches_torch(dtype, seed, lr, lr_decay, weight_decay,
                                       initial_accumulator_value, eps, maximize):
    kwargs = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps,
                  initial_accumulator_value=initial_accumulator_value, maximize=maximize)
    cparams, tparams, copt, topt = run_both("Adagrad", kwargs, dtype, seed, steps=12)
    assert_params_close(cparams, tparams, dtype, f"Adagrad {kwargs}")
    assert_state_close(copt.state_dict()["state"], topt.state_dict()["state"], dtype)


def test_issue12_optimizer_state_dict_round_trip():
    """A run interrupted by state_dict / load_state_dict into fresh optimizers ends where an
    uninterrupted torch run ends."""
    for name, kwargs in (("RMSprop", dict(momentum=0.5, centered=True)),
                         ("Adagrad", dict(lr_decay=0.01, initial_accumulator_value=0.1))):
        cparams, tparams = make_params("float64", 3)
        copt = getattr(optim, name)(cparams, **kwargs)
        topt = getattr(torch.optim, name)(tparams, **kwargs)
        rng = np.random.default_rng(0)
        for step in range(6):
            if step == 3:
                saved = copt.state_dict()
                copt = getattr(optim, name)(cparams, **kwargs)
                copt.load_state_dict(saved)
            for c, t in zip(cparams, tparams, strict=True):
                g = rng.standard_normal(tuple(c.shape))
                c.grad, t.grad = cn.tensor(g), torch.tensor(g)
            copt.step()
            topt.step()
        assert_params_close(cparams, tparams, "float64", name)


def test_issue12_optimizer_arguments_refused():
    params = [nn.Parameter(cn.zeros(2))]
    for name, kwargs in (("RMSprop", dict(alpha=-0.1)), ("RMSprop", dict(momentum=-1)),
                         ("RMSprop", dict(lr=-1)), ("Adagrad", dict(lr_decay=-1)),
                         ("Adagrad", dict(initial_accumulator_value=-1)),
                         ("Adagrad", dict(eps=-1))):
        with pytest.raises(ValueError):
            getattr(torch.optim, name)([torch.nn.Parameter(torch.zeros(2))], **kwargs)
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            getattr(optim, name)(params, **kwargs)


# -- training trajectories with schedulers and clipping ----------------------------------------


def _models(dtype, seed=0):
    """The same small network in corrnet and in torch (weights copied)."""
    cn.manual_seed(seed)
    cmodel = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    tmodel = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(),
                                 torch.nn.Linear(8, 3))
    cmodel.to(getattr(cn, dtype))
    tmodel.to(getattr(torch, dtype))
    with torch.no_grad():
        for c, t in zip(cmodel.parameters(), tmodel.parameters(), strict=True):
            t.copy_(torch.tensor(c.detach().numpy()))
    return cmodel, tmodel


TRAININGS = {
    "OneCycleLR SGD cos": ("SGD", dict(lr=0.1, momentum=0.9), "OneCycleLR",
                           dict(max_lr=0.5, total_steps=12)),
    "OneCycleLR SGD linear three_phase": (
        "SGD", dict(lr=0.1, momentum=0.8, nesterov=True), "OneCycleLR",
        dict(max_lr=[0.3], epochs=3, steps_per_epoch=4, anneal_strategy="linear",
             three_phase=True, div_factor=10.0, final_div_factor=100.0, pct_start=0.25)),
    "OneCycleLR Adam betas": ("Adam", dict(lr=1e-3), "OneCycleLR",
                              dict(max_lr=0.05, total_steps=12, base_momentum=0.8,
                                   max_momentum=0.9)),
    "OneCycleLR RMSprop momentum": ("RMSprop", dict(lr=1e-3, momentum=0.9), "OneCycleLR",
                                    dict(max_lr=0.01, total_steps=12)),
    "OneCycleLR no momentum cycle": ("Adagrad", dict(), "OneCycleLR",
                                     dict(max_lr=0.1, total_steps=12, cycle_momentum=False)),
    "LambdaLR RMSprop": ("RMSprop", dict(lr=0.01, centered=True), "LambdaLR",
                         dict(lr_lambda=lambda epoch: 0.9 ** epoch)),
    "MultiStepLR Adagrad": ("Adagrad", dict(lr=0.1), "MultiStepLR",
                            dict(milestones=[2, 5, 5], gamma=0.5)),
    "ExponentialLR SGD": ("SGD", dict(lr=0.2), "ExponentialLR", dict(gamma=0.8)),
    "ReduceLROnPlateau SGD": ("SGD", dict(lr=0.5), "ReduceLROnPlateau",
                              dict(patience=1, factor=0.5, threshold=0.05, cooldown=1)),
    "ReduceLROnPlateau max abs": ("Adam", dict(lr=0.05), "ReduceLROnPlateau",
                                  dict(mode="max", threshold_mode="abs", threshold=0.01,
                                       patience=0, min_lr=0.01)),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(TRAININGS))
def test_issue12_training_trajectory_matches_torch(case, dtype):
    opt_name, opt_kwargs, sched_name, sched_kwargs = TRAININGS[case]
    cmodel, tmodel = _models(dtype)
    copt = getattr(optim, opt_name)(cmodel.parameters(), **opt_kwargs)
    topt = getattr(torch.optim, opt_name)(tmodel.parameters(), **opt_kwargs)
    csched = getattr(optim.lr_scheduler, sched_name)(copt, **sched_kwargs)
    tsched = getattr(torch.optim.lr_scheduler, sched_name)(topt, **sched_kwargs)
    rng = np.random.default_rng(1)
    np_dtype = np.float32 if dtype == "float32" else np.float64
    plateau = sched_name == "ReduceLROnPlateau"
    for step in range(12):
        x = rng.standard_normal((5, 4)).astype(np_dtype)
        y = rng.standard_normal((5, 3)).astype(np_dtype)
        closs = ((cmodel(cn.tensor(x)) - cn.tensor(y)) ** 2).mean()
        tloss = ((tmodel(torch.tensor(x)) - torch.tensor(y)) ** 2).mean()
        copt.zero_grad()
        topt.zero_grad()
        closs.backward()
        tloss.backward()
        cnorm = nn.utils.clip_grad_norm_(cmodel.parameters(), max_norm=0.5)
        tnorm = torch.nn.utils.clip_grad_norm_(tmodel.parameters(), max_norm=0.5)
        np.testing.assert_allclose(cnorm.item(), tnorm.item(), **TOL[dtype])
        copt.step()
        topt.step()
        if plateau:  # a metric that stalls, so that the lr is reduced
            metric = round(float(tloss.item()), 1) if step % 3 else 1.0
            csched.step(metric)
            tsched.step(metric)
        else:
            csched.step()
            tsched.step()
        what = f"{case}, step {step}"
        assert_params_close(list(cmodel.parameters()), list(tmodel.parameters()), dtype, what)
        np.testing.assert_allclose(csched.get_last_lr(), tsched.get_last_lr(), rtol=1e-15,
                                   err_msg=what)
        for cgroup, tgroup in zip(copt.param_groups, topt.param_groups, strict=True):
            for key in ("momentum", "betas"):
                if key in tgroup:
                    np.testing.assert_allclose(cgroup[key], tgroup[key], rtol=1e-15,
                                               err_msg=f"{what}: {key}")


# -- schedulers: errors and state ----------------------------------------------------------------


def _pair(opt_name="SGD", **opt_kwargs):
    cparams, tparams = make_params("float64", 0, shapes=[(2,)])
    return (getattr(optim, opt_name)(cparams, lr=0.1, **opt_kwargs),
            getattr(torch.optim, opt_name)(tparams, lr=0.1, **opt_kwargs))


def test_issue12_one_cycle_refuses_stepping_past_the_end():
    for opt in _pair(momentum=0.9):
        lib = optim if isinstance(opt, optim.Optimizer) else torch.optim
        sched = lib.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=3)
        for _ in range(3):
            opt.step()
            sched.step()
        with pytest.raises(ValueError, match="Tried to step 4 times"):
            sched.step()


@pytest.mark.parametrize("kwargs, match", [
    (dict(max_lr=1.0), "total_steps OR"), (dict(max_lr=1.0, total_steps=0), "total_steps"),
    (dict(max_lr=1.0, epochs=2), "total_steps OR"),
    (dict(max_lr=1.0, epochs=0, steps_per_epoch=3), "epochs"),
    (dict(max_lr=1.0, total_steps=5, pct_start=1.5), "pct_start"),
    (dict(max_lr=1.0, total_steps=5, anneal_strategy="exp"), "anneal_strategy"),
    (dict(max_lr=[1.0, 2.0], total_steps=5), "max_lr"),
])
def test_issue12_one_cycle_arguments_refused(kwargs, match):
    copt, topt = _pair(momentum=0.9)
    with pytest.raises(ValueError, match=match):
        torch.optim.lr_scheduler.OneCycleLR(topt, **kwargs)
    with pytest.raises(ValueError, match=match):
        optim.lr_scheduler.OneCycleLR(copt, **kwargs)


def test_issue12_one_cycle_needs_momentum_or_betas():
    cparams, tparams = make_params("float64", 0, shapes=[(2,)])
    with pytest.raises(ValueError, match="momentum or beta1"):
        torch.optim.lr_scheduler.OneCycleLR(torch.optim.Adagrad(tparams), 1.0, 5)
    with pytest.raises(ValueError, match="momentum or beta1"):
        optim.lr_scheduler.OneCycleLR(optim.Adagrad(cparams), 1.0, 5)


def test_issue12_one_cycle_state_dict_resumes():
    """A OneCycleLR rebuilt and loaded from state_dict() mid-cycle continues torch's
    sequence of lrs and momenta."""
    copt, topt = _pair(momentum=0.9)
    kwargs = dict(max_lr=1.0, total_steps=10, three_phase=True)
    csched = optim.lr_scheduler.OneCycleLR(copt, **kwargs)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, **kwargs)
    for step in range(10):
        if step == 4:
            saved = csched.state_dict()
            copt.load_state_dict(copt.state_dict())
            csched = optim.lr_scheduler.OneCycleLR(copt, **kwargs)
            csched.load_state_dict(saved)
        copt.step()
        topt.step()
        csched.step()
        tsched.step()
        assert csched.get_last_lr() == tsched.get_last_lr(), step
        assert copt.param_groups[0]["momentum"] == topt.param_groups[0]["momentum"], step


def test_issue12_reduce_on_plateau_arguments_and_state():
    copt, topt = _pair()
    for lib, opt in ((torch.optim, topt), (optim, copt)):
        with pytest.raises(ValueError, match="Factor should be < 1.0"):
            lib.lr_scheduler.ReduceLROnPlateau(opt, factor=1.0)
        with pytest.raises(ValueError, match="mode"):
            lib.lr_scheduler.ReduceLROnPlateau(opt, mode="up")
        with pytest.raises(ValueError, match="threshold mode"):
            lib.lr_scheduler.ReduceLROnPlateau(opt, threshold_mode="pct")
        with pytest.raises(ValueError, match="min_lrs"):
            lib.lr_scheduler.ReduceLROnPlateau(opt, min_lr=[0.1, 0.2])
    csched = optim.lr_scheduler.ReduceLROnPlateau(copt, patience=0)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, patience=0)
    for metric in (1.0, 1.0, cn.tensor(0.5)):
        csched.step(metric)
        tsched.step(float(metric))
    saved = csched.state_dict()
    assert "optimizer" not in saved
    assert {k: v for k, v in saved.items()} == {k: v for k, v in tsched.state_dict().items()}
    fresh = optim.lr_scheduler.ReduceLROnPlateau(copt)
    fresh.load_state_dict(saved)
    assert fresh.best == 0.5 and fresh.patience == 0
    assert fresh.get_last_lr() == tsched.get_last_lr() == [0.1 * 0.1]


def test_issue12_lambda_lr_state_dict():
    class Decay:
        def __init__(self):
            self.rate = 0.5

        def __call__(self, epoch):
            return self.rate ** epoch

    copt, topt = _pair()
    cdecay, tdecay = Decay(), Decay()
    csched = optim.lr_scheduler.LambdaLR(copt, [cdecay])
    tsched = torch.optim.lr_scheduler.LambdaLR(topt, [tdecay])
    cdecay.rate = tdecay.rate = 0.25
    assert csched.state_dict()["lr_lambdas"] == tsched.state_dict()["lr_lambdas"] == [
        {"rate": 0.25}]
    fresh_decay = Decay()
    fresh = optim.lr_scheduler.LambdaLR(copt, fresh_decay)
    fresh.load_state_dict(csched.state_dict())
    assert fresh_decay.rate == 0.25
    assert optim.lr_scheduler.LambdaLR(copt, lambda e: 1.0).state_dict()["lr_lambdas"] == [None]
    with pytest.raises(ValueError, match="Expected 1 lr_lambdas"):
        optim.lr_scheduler.LambdaLR(copt, [Decay(), Decay()])


# -- clipping and vector conversion ------------------------------------------------------------


def _grads_pair(values):
    cparams = [nn.Parameter(cn.tensor(np.zeros_like(v))) for v in values]
    tparams = [torch.nn.Parameter(torch.tensor(np.zeros_like(v))) for v in values]
    for c, t, v in zip(cparams, tparams, values, strict=True):
        c.grad, t.grad = cn.tensor(v), torch.tensor(v)
    return cparams, tparams


@pytest.mark.parametrize("norm_type", [1, 2.0, 3.5, math.inf, "inf", 0.5])
@pytest.mark.parametrize("max_norm", [0.1, 100.0])
def test_issue12_clip_grad_norm_matches_torch(norm_type, max_norm):
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(s).astype(np.float32) for s in [(3, 4), (5,), ()]]
    cparams, tparams = _grads_pair(values)
    ctotal = nn.utils.clip_grad_norm_(cparams, max_norm, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tparams, max_norm, norm_type=norm_type)
    assert str(ctotal.dtype) == str(ttotal.dtype) and ctotal.shape == ttotal.shape == ()
    np.testing.assert_allclose(ctotal.item(), ttotal.item(), rtol=1e-6)
    for c, t in zip(cparams, tparams, strict=True):
        np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_issue12_clip_grad_norm_edge_cases():
    # a single tensor, parameters without gradients, no gradients at all
    c = nn.Parameter(cn.ones(3))
    t = torch.nn.Parameter(torch.ones(3))
    assert nn.utils.clip_grad_norm_(c, 1.0).item() == torch.nn.utils.clip_grad_norm_(
        t, 1.0).item() == 0.0
    c.grad, t.grad = cn.full((3,), 4.0), torch.full((3,), 4.0)
    np.testing.assert_allclose(nn.utils.clip_grad_norm_(c, 1.0).item(),
                               torch.nn.utils.clip_grad_norm_(t, 1.0).item())
    np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), rtol=1e-6)
    # a non-finite norm: an error when asked, else the gradients are scaled by it
    for value in (np.inf, np.nan):
        cparams, tparams = _grads_pair([np.array([1.0, value], dtype=np.float32)])
        with pytest.raises(RuntimeError, match="non-finite"):
            torch.nn.utils.clip_grad_norm_(tparams, 1.0, error_if_nonfinite=True)
        with pytest.raises(RuntimeError, match="non-finite"):
            nn.utils.clip_grad_norm_(cparams, 1.0, error_if_nonfinite=True)
        ctotal = nn.utils.clip_grad_norm_(cparams, 1.0)
        ttotal = torch.nn.utils.clip_grad_norm_(tparams, 1.0)
        np.testing.assert_array_equal(ctotal.numpy(), ttotal.numpy())
        np.testing.assert_array_equal(cparams[0].grad.numpy(), tparams[0].grad.numpy())


def test_issue12_clip_grad_value_matches_torch():
    values = [np.linspace(-3, 3, 12).reshape(3, 4), np.array([0.5, -0.25])]
    cparams, tparams = _grads_pair(values)
    assert nn.utils.clip_grad_value_(cparams, 0.4) is None
    torch.nn.utils.clip_grad_value_(tparams, 0.4)
    for c, t in zip(cparams, tparams, strict=True):
        np.testing.assert_array_equal(c.grad.numpy(), t.grad.numpy())
    with pytest.raises(TypeError, match="clip_value"):
        nn.utils.clip_grad_value_(cparams, "0.4")


def test_issue12_parameters_vector_round_trip_matches_torch():
    cmodel, tmodel = _models("float64")
    cvec = nn.utils.parameters_to_vector(cmodel.parameters())
    tvec = torch.nn.utils.parameters_to_vector(tmodel.parameters())
    np.testing.assert_array_equal(cvec.detach().numpy(), tvec.detach().numpy())
    assert cvec.requires_grad and cvec.shape == tvec.shape
    new = np.arange(cvec.numel(), dtype=np.float64)
    nn.utils.vector_to_parameters(cn.tensor(new), cmodel.parameters())
    torch.nn.utils.vector_to_parameters(torch.tensor(new), tmodel.parameters())
    for c, t in zip(cmodel.parameters(), tmodel.parameters(), strict=True):
        np.testing.assert_array_equal(c.detach().numpy(), t.detach().numpy())
    with pytest.raises(TypeError, match="expected torch.Tensor"):
        nn.utils.vector_to_parameters(new, cmodel.parameters())
