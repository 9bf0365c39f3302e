"""Empirical NTKs: every implementation against the Jacobian contraction, the Jacobian contraction
against a flattened forward-mode Jacobian, and finite width → infinite width limits."""

from __future__ import annotations

import functools
import itertools

import flax.linen as nn
import jax
import jax.monitoring
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from conftest import TOLERANCES, rel_fro
from ntk_air import networks as models
from ntk_air.empirical import empirical_ntk_fn, structured_mlp_ntk_fn, two_layer_ntk
from ntk_air.kernels import fc_kernel_fn, two_layer_relu
from ntk_air.networks import MLP
from ntk_air.networks._models import _mlp_params_from_stax, _two_layer_apply

REDUCTIONS = ["mean", "sum", "none"]


def _x(n, d, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _mlp_setup(activation="relu", out_dim=1, widths=(8, 8), w_std=1.4, b_std=0.3, seed=0, d=4):
    mlp = MLP(widths=widths, out_dim=out_dim, w_std=w_std, b_std=b_std, activation=activation)
    return mlp, _mlp_params(mlp, d, seed), (lambda p, x: mlp.apply({"params": p}, x))


def _mlp_params(mlp, d, seed=0):
    """N(0, 1) kernels and biases, the law of MLP.init (checked in test_models), drawn with numpy:
    jax.random would compile a new PRNG program for every parameter shape (seconds each)."""
    rng = np.random.default_rng(seed)
    sizes = (d, *mlp.widths, mlp.out_dim)
    layers = [(rng.normal(size=(a, b)), rng.normal(size=b)) for a, b in itertools.pairwise(sizes)]
    return _mlp_params_from_stax(layers)


def _two_layer_params(m, d, seed=0):
    """{'w': (m, d)} ~ N(0, 1), the law of TwoLayerReLU(m).init at κ = 1, drawn with numpy."""
    return {"w": np.random.default_rng(seed).normal(size=(m, d))}


def _flat_jacobian_ntk(apply_fn, params, x1, x2, reduction):
    """Independent reference: J = jacfwd of the raveled parameter vector, Θ = J1 J2ᵀ per output."""
    flat, unravel = ravel_pytree(params)

    @jax.jit
    def full_ntk(flat, x1, x2):
        def jac(x):
            j = jax.jacfwd(lambda v: apply_fn(unravel(v), x))(flat)  # (n, k, P) or (n, P)
            return j if j.ndim == 3 else j[:, None, :]

        return jnp.einsum("iap,jbp->ijab", jac(x1), jac(x2))

    full = np.asarray(full_ntk(flat, x1, x2))
    if jax.eval_shape(apply_fn, params, x1).ndim == 1:
        return full[:, :, 0, 0]
    if reduction == "none":
        return full
    trace = np.trace(full, axis1=2, axis2=3)
    return trace / full.shape[2] if reduction == "mean" else trace


class TinyConvNet(nn.Module):
    """A generic flax model (conv + LayerNorm + tanh + dense), not an MLP."""

    out_dim: int = 2

    @nn.compact
    def __call__(self, x):  # (n, 5, 5, 2)
        x = nn.Conv(3, (3, 3))(x)
        x = nn.LayerNorm()(x)
        x = jnp.tanh(x)
        return nn.Dense(self.out_dim)(x.reshape(x.shape[0], -1))


# ---------------------------------------------------------------------------------------------
# Implementations agree
# ---------------------------------------------------------------------------------------------


# For k = 1 every reduction computes the same (n1, n2) matrix: the default suite runs 'mean' only.
_K1_OTHER = pytest.mark.slow


@pytest.mark.parametrize(
    ("out_dim", "reduction"),
    [(3, "mean"), (3, "sum"), (3, "none"), (1, "mean")]
    + [pytest.param(1, r, marks=_K1_OTHER) for r in ("sum", "none")],
)
@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_mlp_implementations_equal_jacobian(x64, activation, out_dim, reduction):
    mlp, params, apply_fn = _mlp_setup(activation, out_dim)
    x1, x2 = _x(7, 4, 1), _x(5, 4, 2)
    ref = empirical_ntk_fn(apply_fn, output_reduction=reduction)(params, x1, x2)
    assert ref.shape == ((7, 5, out_dim, out_dim) if reduction == "none" else (7, 5))
    for impl in ("ntvp", "structured"):
        ntk_fn = empirical_ntk_fn(
            apply_fn, implementation=impl, output_reduction=reduction, model=mlp
        )
        assert rel_fro(ntk_fn(params, x1, x2), ref) < 1e-13, impl


@pytest.mark.parametrize(
    ("activation", "out_dim", "reduction"), [("relu", 3, "none"), ("erf", 1, "mean")]
)
def test_jacobian_contraction_equals_flattened_forward_jacobian(
    x64, activation, out_dim, reduction
):
    """The reference itself against jacfwd over the raveled parameter vector."""
    _, params, apply_fn = _mlp_setup(activation, out_dim)
    x1, x2 = _x(7, 4, 1), _x(5, 4, 2)
    ref = empirical_ntk_fn(apply_fn, output_reduction=reduction)(params, x1, x2)
    assert rel_fro(ref, _flat_jacobian_ntk(apply_fn, params, x1, x2, reduction)) < 1e-13


def test_reductions_relate_as_mean_sum_trace(x64):
    """'sum' = trace of 'none' over outputs; 'mean' = 'sum' / k (NT's trace_axes=(-1,))."""
    _, params, apply_fn = _mlp_setup("erf", out_dim=3)
    x = _x(6, 4)
    full = empirical_ntk_fn(apply_fn, output_reduction="none")(params, x)
    total = empirical_ntk_fn(apply_fn, output_reduction="sum")(params, x)
    mean = empirical_ntk_fn(apply_fn, output_reduction="mean")(params, x)
    np.testing.assert_allclose(total, np.trace(full, axis1=2, axis2=3), rtol=1e-13)
    np.testing.assert_allclose(mean, total / 3, rtol=1e-13)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_generic_flax_model_ntvp_equals_jacobian(x64, reduction):
    model = TinyConvNet(out_dim=2)
    x1 = np.random.default_rng(0).normal(size=(4, 5, 5, 2))
    x2 = np.random.default_rng(1).normal(size=(3, 5, 5, 2))
    params = model.init(jax.random.key(0), jnp.asarray(x1))["params"]

    def apply_fn(p, x):
        return model.apply({"params": p}, x)

    ref = empirical_ntk_fn(apply_fn, output_reduction=reduction)(params, x1, x2)
    if reduction == "none":
        assert rel_fro(ref, _flat_jacobian_ntk(apply_fn, params, x1, x2, reduction)) < 1e-13
    ntvp = empirical_ntk_fn(apply_fn, implementation="ntvp", output_reduction=reduction)
    assert rel_fro(ntvp(params, x1, x2), ref) < 1e-13


def test_two_layer_ntk_equals_jacobian_of_model(x64):
    x1, x2 = _x(7, 5, 0), _x(4, 5, 1)
    model, apply = _two_layer_apply(64, 0.5)
    variables = model.init(jax.random.key(0), jnp.asarray(x1))
    apply_fn = functools.partial(apply, variables["frozen"])
    for impl in ("jacobian", "ntvp"):
        ref = empirical_ntk_fn(apply_fn, implementation=impl)(variables["params"], x1, x2)
        assert ref.shape == (7, 4)
        assert rel_fro(two_layer_ntk(variables["params"], x1, x2), ref) < 1e-13
        assert rel_fro(two_layer_ntk(variables["params"]["w"], x1, x2), ref) < 1e-13
    structured = empirical_ntk_fn(None, implementation="structured", model=model)
    ref11 = empirical_ntk_fn(apply_fn)(variables["params"], x1)
    assert rel_fro(structured(variables["params"], x1), ref11) < 1e-13


def test_standard_parameterization_mlp_gets_its_own_kernel(x64):
    """The structured engine's closed forms are NTK parameterization's: for a standard-
    parameterized MLP, 'auto' equals the Jacobian contraction (it once took the structured rule
    and was off by O(1)), and 'structured' refuses it."""
    mlp = MLP(widths=(16,), parameterization="standard")
    x1 = _x(5, 4, 0)
    params = _mlp_params(mlp, 4)
    ref = empirical_ntk_fn(mlp, implementation="jacobian")(params, x1)
    assert rel_fro(empirical_ntk_fn(mlp)(params, x1), ref) < 1e-13
    with pytest.raises(ValueError, match="needs an MLP in NTK parameterization"):
        structured_mlp_ntk_fn(mlp)


# ---------------------------------------------------------------------------------------------
# Finite width → infinite width
# ---------------------------------------------------------------------------------------------


def test_two_layer_ntk_converges_to_h_infinity_like_inverse_sqrt_width(x64):
    """‖H(W) − H∞‖_F/‖H∞‖_F ≈ c/√m: err·√m stays within a factor 3 over m = 256 … 65536."""
    x = _unit(_x(8, 5))
    h_inf = two_layer_relu(x)
    widths = (256, 4096, 65536)
    errors = []
    for m in widths:
        per_seed = [
            rel_fro(two_layer_ntk(_two_layer_params(m, 5, seed=s), x), h_inf) for s in range(3)
        ]
        errors.append(np.mean(per_seed))
    errors = np.asarray(errors)
    assert np.all(np.diff(errors) < 0), errors
    scaled = errors * np.sqrt(widths)
    assert scaled.max() / scaled.min() < 3.0, scaled
    # each 16× width step shrinks the error by ≈ 4 (generous band [2, 8])
    ratios = errors[:-1] / errors[1:]
    assert np.all((ratios > 2) & (ratios < 8)), ratios


@pytest.mark.parametrize(("activation", "w_std", "b_std"), [("relu", 1.4, 0.1), ("erf", 1.5, 0.2)])
def test_wide_mlp_entk_at_init_approaches_infinite_width_kernel(x64, activation, w_std, b_std):
    """eNTK of `models.MLP` (NTK parameterization = NT stax) at initialization → the infinite-width
    kernel fc_kernel_fn(2, ...).ntk: the relative error (mean over 4 seeds) falls like c/√width —
    fitted log-log slope in [-0.8, -0.3] over widths 64 … 4096 (measured -0.50, -0.54) and
    err·√width within a factor 3 (measured 1.5×). 'auto' takes the structured rule here."""
    x = _x(6, 4)
    limit = fc_kernel_fn(2, activation, w_std, b_std)(x).ntk
    widths = (64, 256, 1024, 4096)
    errors = []
    for w in widths:
        mlp = MLP(widths=(w, w), w_std=w_std, b_std=b_std, activation=activation)
        ntk_fn = empirical_ntk_fn(mlp, implementation="auto")
        members = [_mlp_params(mlp, 4, seed=s) for s in range(4)]
        assert ntk_fn.plan(members[0], x).implementation == "structured"
        errors.append(np.mean([rel_fro(ntk_fn(p, x), limit) for p in members]))
    slope = np.polyfit(np.log(widths), np.log(errors), 1)[0]
    assert -0.8 < slope < -0.3, (slope, errors)
    scaled = np.asarray(errors) * np.sqrt(widths)
    assert scaled.max() / scaled.min() < 3.0, scaled


def test_multi_output_mlp_entk_converges_to_kernel_times_identity(x64):
    """For k outputs the limit is Θ∞ ⊗ I_k: off-diagonal output blocks vanish like 1/√width."""
    x = _x(5, 3)
    limit = fc_kernel_fn(1, "erf", 1.3, 0.1)(x).ntk
    mlp = MLP(widths=(4096,), out_dim=2, w_std=1.3, b_std=0.1, activation="erf")
    full = structured_mlp_ntk_fn(mlp, output_reduction="none")(_mlp_params(mlp, 3), x)
    expected = np.einsum("ij,ab->ijab", limit, np.eye(2))
    assert rel_fro(full, expected) < 6.0 / np.sqrt(4096)  # as above; measured 0.014–0.021


# ---------------------------------------------------------------------------------------------
# Tiling, dtypes, symmetry / PSD, transformations
# ---------------------------------------------------------------------------------------------


def test_tiled_and_symmetric_paths_equal_untiled_jacobian(x64):
    """Tile size 4 divides neither n1 = 7 nor n2 = 11; x2=None (the symmetric fast path) must
    equal passing x1 twice. Reference: untiled Jacobian contraction with explicit x2."""
    mlp, params, apply_fn = _mlp_setup("relu", out_dim=2)
    x1, x2 = _x(7, 4, 1), _x(11, 4, 2)
    reference = empirical_ntk_fn(apply_fn, output_reduction="none")
    ref12, ref11 = reference(params, x1, x2), reference(params, x1, x1)
    for impl in ("jacobian", "ntvp", "structured"):
        untiled = empirical_ntk_fn(
            apply_fn, implementation=impl, output_reduction="none", model=mlp
        )
        tiled = empirical_ntk_fn(
            apply_fn, implementation=impl, output_reduction="none", model=mlp, tile_size=4
        )
        assert rel_fro(untiled(params, x1), ref11) < 1e-13, impl
        assert rel_fro(tiled(params, x1, x2), ref12) < 1e-13, impl
        assert rel_fro(tiled(params, x1), ref11) < 1e-13, impl
    w = _two_layer_params(32, 4)
    for tile_size in (3, 4, 6):
        np.testing.assert_allclose(
            two_layer_ntk(w, x1, x2, tile_size=tile_size), two_layer_ntk(w, x1, x2), rtol=1e-13
        )
    np.testing.assert_allclose(
        two_layer_ntk(w, x1, tile_size=3), two_layer_ntk(w, x1, x1), rtol=1e-13
    )


F32_VS_F64_TOL = 1e-5  # relative Frobenius; float32 eps ≈ 1.2e-7, a few hundred accumulated ops


def test_float32_matches_float64(x64):
    mlp, params, apply_fn = _mlp_setup("erf", out_dim=2, widths=(32, 32))
    x1, x2 = _x(6, 4, 1), _x(5, 4, 2)
    for impl in ("jacobian", "ntvp", "structured"):
        ntk_fn = empirical_ntk_fn(apply_fn, implementation=impl, model=mlp)
        k32 = ntk_fn(params, x1, x2, dtype="float32")
        k64 = ntk_fn(params, x1, x2, dtype="float64")
        assert k32.dtype == jnp.float32 and k64.dtype == jnp.float64
        assert rel_fro(k32, k64) < F32_VS_F64_TOL, impl
    w = _two_layer_params(256, 4)
    h32 = two_layer_ntk(w, x1, x2, dtype="float32")
    assert h32.dtype == jnp.float32
    assert rel_fro(h32, two_layer_ntk(w, x1, x2, dtype="float64")) < F32_VS_F64_TOL


def test_float32_params_follow_requested_dtype(x64):
    """Params and inputs are cast together: float32 params under float64 give a float64 NTK."""
    mlp, params, apply_fn = _mlp_setup()
    params32 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), params)
    out = empirical_ntk_fn(apply_fn)(params32, _x(3, 4), dtype="float64")
    assert out.dtype == jnp.float64


@pytest.mark.parametrize("impl", ["jacobian", "ntvp", "structured", "two-layer"])
def test_symmetric_and_psd(dtype, impl):
    n = 12
    x = _unit(_x(n, 4))
    if impl == "two-layer":
        params = _two_layer_params(128, 4)
        k = np.asarray(two_layer_ntk(params, x, dtype=dtype), np.float64)
    else:
        mlp, params, apply_fn = _mlp_setup("relu", out_dim=2, widths=(16, 16))
        k = np.asarray(
            empirical_ntk_fn(apply_fn, implementation=impl, model=mlp)(params, x, dtype=dtype),
            np.float64,
        )
    eps = TOLERANCES[dtype]["eps"]
    norm = np.linalg.norm(k, 2)
    assert np.abs(k - k.T).max() <= 10 * eps * norm
    assert np.linalg.eigvalsh((k + k.T) / 2).min() >= -n * eps * norm


# Eager 'jacobian' compiles ~140 primitives one by one (≈ 5 s on 2 cores): slow only.
@pytest.mark.parametrize(
    "impl", [pytest.param("jacobian", marks=pytest.mark.slow), "ntvp", "structured"]
)
def test_jit_matches_eager(x64, impl):
    mlp, params, apply_fn = _mlp_setup("erf", out_dim=2)
    x1, x2 = _x(3, 4, 1), _x(2, 4, 2)
    ntk_fn = empirical_ntk_fn(apply_fn, implementation=impl, model=mlp)
    jitted = ntk_fn(params, x1, x2)
    with jax.disable_jit():
        eager = ntk_fn(params, x1, x2)
    np.testing.assert_allclose(jitted, eager, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("impl", ["ntvp", "structured", "two-layer"])
def test_vmap_over_parameter_sets_matches_loop(x64, impl):
    """An ensemble of networks in one call: vmap over stacked params = one call per member."""
    x1, x2 = _x(4, 4, 1), _x(3, 4, 2)
    if impl == "two-layer":
        members = [_two_layer_params(16, 4, seed=s)["w"] for s in range(3)]

        def ntk_fn(w, a, b):
            return two_layer_ntk(w, a, b)
    else:
        mlp, _, apply_fn = _mlp_setup("erf", out_dim=2)
        members = [_mlp_params(mlp, 4, seed=s) for s in range(3)]
        ntk_fn = empirical_ntk_fn(apply_fn, implementation=impl, model=mlp)
    stacked = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *members)
    batched = jax.vmap(ntk_fn, in_axes=(0, None, None))(stacked, x1, x2)
    looped = np.stack([ntk_fn(p, x1, x2) for p in members])
    assert batched.shape == looped.shape == (3, 4, 3)
    np.testing.assert_allclose(batched, looped, rtol=1e-13, atol=1e-14)


def test_second_call_does_not_retrace(x64):
    """A Python side effect inside apply_fn counts traces: the second call must not add any."""
    mlp, params, _ = _mlp_setup()
    traces = []

    def apply_fn(p, x):
        traces.append(x.shape)
        return mlp.apply({"params": p}, x)

    for impl in ("jacobian", "ntvp"):
        traces.clear()
        ntk_fn = empirical_ntk_fn(apply_fn, implementation=impl, tile_size=4)
        first = ntk_fn(params, _x(6, 4, 1), _x(5, 4, 2))
        n_first = len(traces)
        assert n_first > 0
        second = ntk_fn(params, _x(6, 4, 3), _x(5, 4, 4))
        assert len(traces) == n_first, impl
        assert not np.allclose(first, second)  # new data really went through


def test_structured_second_call_does_not_recompile(x64, monkeypatch):
    """No apply_fn to instrument: count activation traces and backend compilations instead."""
    traces = []

    def counting_erf(z):
        traces.append(z.shape)
        return jax.scipy.special.erf(z)

    monkeypatch.setitem(models.MLP_ACTIVATIONS, "erf", counting_erf)
    mlp, params, _ = _mlp_setup("erf")
    ntk_fn = structured_mlp_ntk_fn(mlp, tile_size=4)
    w2 = _two_layer_params(16, 4)
    inputs = [(_x(6, 4, s), _x(5, 4, s + 1)) for s in (1, 3)]
    inputs = [tuple(jnp.asarray(a) for a in pair) for pair in inputs]
    ntk_fn(params, *inputs[0])
    two_layer_ntk(w2, *inputs[0])
    n_first = len(traces)
    compiles = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        ntk_fn(params, *inputs[1])
        two_layer_ntk(w2, *inputs[1])
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert len(traces) == n_first
    assert compiles == []


def _matmul_precisions(closed_jaxpr) -> list:
    """The `precision` of every dot_general / conv in a jaxpr, nested jaxprs (jit, scan, map,
    custom_jvp, ...) included."""
    found = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name in ("dot_general", "conv_general_dilated"):
                found.append(eqn.params["precision"])
            for value in eqn.params.values():
                for sub in value if isinstance(value, tuple | list) else (value,):
                    if hasattr(sub, "eqns"):
                        walk(sub)
                    elif hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
                        walk(sub.jaxpr)

    walk(closed_jaxpr.jaxpr)
    return found


@pytest.mark.parametrize("impl", ["jacobian", "ntvp", "structured", "two-layer"])
def test_every_matmul_runs_at_highest_precision(x64, impl):
    """Every compiled entry point traces under precision 'highest', so GPUs do not run float32
    matmuls in TF32 (this cannot be seen in CPU numerics, hence a check of the program)."""
    x1, x2 = _x(5, 4, 1), _x(3, 4, 2)
    if impl == "two-layer":
        w = _two_layer_params(16, 4)["w"]
        jaxpr = jax.make_jaxpr(lambda w, a, b: two_layer_ntk(w, a, b, tile_size=2))(w, x1, x2)
    else:
        mlp, params, apply_fn = _mlp_setup("relu", out_dim=2)
        ntk_fn = empirical_ntk_fn(apply_fn, implementation=impl, model=mlp, tile_size=2)
        jaxpr = jax.make_jaxpr(ntk_fn)(params, x1, x2)
    precisions = _matmul_precisions(jaxpr)
    assert precisions, "no matmul found: the jaxpr walk is broken"
    highest = (jax.lax.Precision.HIGHEST, jax.lax.Precision.HIGHEST)
    assert all(p == highest for p in precisions), precisions
    # the check can fail: the same walk sees the default (None) outside the context
    assert _matmul_precisions(jax.make_jaxpr(lambda a, b: a @ b.T)(x1, x2)) == [None]


# ---------------------------------------------------------------------------------------------
# Clear errors
# ---------------------------------------------------------------------------------------------


def test_clear_errors(x64):
    mlp, params, apply_fn = _mlp_setup()
    w = _two_layer_params(8, 4)
    bad = _x(5, 4)
    bad[2, 1] = np.nan
    fns = [
        empirical_ntk_fn(apply_fn),
        empirical_ntk_fn(apply_fn, implementation="ntvp"),
        structured_mlp_ntk_fn(mlp),
        lambda p, a, b=None: two_layer_ntk(w, a, b),
    ]
    for fn in fns:
        with pytest.raises(
            ValueError, match=r"x1 has 1 non-finite entries; first at index \(2, 1\)"
        ):
            fn(params, bad)
        with pytest.raises(ValueError, match="x2 has 1 non-finite"):
            fn(params, _x(5, 4), bad)
        with pytest.raises(ValueError, match="x1 and x2 must have the same feature shape"):
            fn(params, _x(5, 4), _x(5, 3))
        with pytest.raises(ValueError, match="rank"):
            fn(params, np.ones(4))
    with pytest.raises(ValueError, match="must have rank 2"):
        structured_mlp_ntk_fn(mlp)(params, np.ones((2, 2, 4)))
    nan_params = jax.tree_util.tree_map(lambda a: a, params)
    nan_params["Dense_1"]["kernel"] = nan_params["Dense_1"]["kernel"].at[0, 0].set(jnp.nan)
    for fn in (empirical_ntk_fn(apply_fn), structured_mlp_ntk_fn(mlp)):
        with pytest.raises(ValueError, match=r"params\['Dense_1'\]\['kernel'\] has 1 non-finite"):
            fn(nan_params, _x(3, 4))
    with pytest.raises(ValueError, match="implementation must be one of"):
        empirical_ntk_fn(apply_fn, implementation="jvp")
    with pytest.raises(ValueError, match="output_reduction must be one of"):
        empirical_ntk_fn(apply_fn, output_reduction="trace")
    with pytest.raises(ValueError, match="needs model="):
        empirical_ntk_fn(apply_fn, implementation="structured")
    with pytest.raises(ValueError, match="tile_size"):
        empirical_ntk_fn(apply_fn, tile_size=0)
    with pytest.raises(ValueError, match="missing 'Dense_2'"):
        structured_mlp_ntk_fn(mlp)(
            {"Dense_0": params["Dense_0"], "Dense_1": params["Dense_1"]}, _x(3, 4)
        )
    with pytest.raises(ValueError, match="x1 has 3 features"):
        structured_mlp_ntk_fn(mlp)(params, _x(3, 3))
    with pytest.raises(ValueError, match="x1 has 3 features"):
        two_layer_ntk(w, _x(3, 3))
    with pytest.raises(ValueError, match="apply_fn must return"):
        empirical_ntk_fn(lambda p, x: jnp.ones((x.shape[0], 2, 2)))(params, _x(3, 4))
