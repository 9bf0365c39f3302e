"""ntk_air against neural-tangents 0.6.5 reference values (tests/fixtures/nt, float64).

The fixtures were written by tools/nt_reference/make_fixtures.py in a pinned side environment
(see tests/fixtures/nt/README.md); these tests do not need neural-tangents. Every comparison is a
relative Frobenius error against NT's value, in float64.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest

from conftest import rel_fro

FIXTURES = Path(__file__).parent / "fixtures" / "nt"
TOL = 1e-10  # both sides float64; observed agreement is ~1e-15

# NT's ReLU NTK on the diagonal of K(x, x) is only accurate to O(√eps): it takes arccos of a
# cosine that rounds to 1 − O(eps), so θ_ii ≈ 2e-8 instead of 0 and Σ̇ = (π − θ)/(2π) is off by
# ~3e-9 relative (measured against the exact θ = 0 recursion: NT 2e-9 … 7e-9, ntk_air similar).
# The diagonal of self-kernels is therefore compared at a √eps-level tolerance; every
# off-diagonal entry and every cross kernel K(x1, x2) at TOL.
RELU_SELF_DIAG_TOL = 1e-7


def _load(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / name) as f:
        return {k: f[k] for k in f.files}


FC = _load("fc_kernels.npz")
EMP = _load("empirical_mlp.npz")
FC_CONFIGS = list(range(len(FC["depth"])))


def _fc_id(i: int) -> str:
    return f"d{FC['depth'][i]}-{FC['activation'][i]}-W{FC['w_std'][i]:g}-b{FC['b_std'][i]:g}"


def _fc_kernel_fn(i: int):
    from ntk_air.kernels import fc_kernel_fn

    return fc_kernel_fn(
        int(FC["depth"][i]), str(FC["activation"][i]), float(FC["w_std"][i]), float(FC["b_std"][i])
    )


def test_fixtures_are_small_float64_and_distinct_inputs():
    """The reference data are what the README says: float64, x2 ≠ x1, not unit-normalized."""
    total = sum(p.stat().st_size for p in FIXTURES.glob("*.npz"))
    assert total < 1_000_000, total
    for data in (FC, EMP):
        for k, v in data.items():
            if v.dtype.kind == "f":
                assert v.dtype == np.float64, k
    assert FC["x1"].shape == (12, 7) and FC["x2"].shape == (9, 7)
    assert not np.allclose(np.linalg.norm(FC["x1"], axis=1), 1.0)
    assert set(FC["depth"]) == {0, 1, 2, 3} and set(FC["activation"]) == {"relu", "erf"}
    assert str(EMP["trace_axes_reduction"]) == "mean"


@pytest.mark.parametrize("i", FC_CONFIGS, ids=_fc_id)
def test_fc_kernel_cross_matches_neural_tangents(i, x64):
    """K(x1, x2), x2 ≠ x1: NNGP and NTK equal NT's stax kernel_fn to 1e-10."""
    k = _fc_kernel_fn(i)(FC["x1"], FC["x2"])
    assert k.nngp.dtype == np.float64
    assert rel_fro(k.nngp, FC["nngp_12"][i]) <= TOL
    assert rel_fro(k.ntk, FC["ntk_12"][i]) <= TOL


@pytest.mark.parametrize("i", FC_CONFIGS, ids=_fc_id)
def test_fc_kernel_self_matches_neural_tangents(i, x64):
    """K(x1, x1) via x2=None: NNGP everywhere, NTK off the diagonal to 1e-10 (diagonal: see top)."""
    k = _fc_kernel_fn(i)(FC["x1"])
    nngp, ntk = np.asarray(k.nngp), np.asarray(k.ntk)
    ref_nngp, ref_ntk = FC["nngp_11"][i], FC["ntk_11"][i]
    assert rel_fro(nngp, ref_nngp) <= TOL
    off = ~np.eye(len(ntk), dtype=bool)
    assert rel_fro(ntk[off], ref_ntk[off]) <= TOL
    relu_hidden = FC["activation"][i] == "relu" and FC["depth"][i] > 0
    diag_tol = RELU_SELF_DIAG_TOL if relu_hidden else TOL
    assert rel_fro(np.diag(ntk), np.diag(ref_ntk)) <= diag_tol


# ---------------------------------------------------------------------------------------------
# Empirical NTK of serial(Dense(16), act, Dense(16), act, Dense(k)) with NT's own parameters
# ---------------------------------------------------------------------------------------------

VARIANTS = [(str(a), int(k)) for a in EMP["activations"] for k in EMP["out_dims"]]
VARIANT_IDS = [f"{a}-k{k}" for a, k in VARIANTS]


def _mlp_and_params(act: str, k: int):
    from ntk_air.networks import MLP
    from ntk_air.networks._models import _mlp_params_from_stax

    tag = f"{act}_k{k}"
    n_layers = len(EMP["widths"]) + 1
    stax_params = [(EMP[f"{tag}_W{i}"], EMP[f"{tag}_b{i}"]) for i in range(n_layers)]
    mlp = MLP(
        widths=tuple(int(w) for w in EMP["widths"]),
        out_dim=k,
        w_std=float(EMP["w_std"]),
        b_std=float(EMP["b_std"]),
        activation=act,
    )
    return mlp, _mlp_params_from_stax(stax_params), tag


def _apply_fn(mlp):
    return lambda params, x: mlp.apply({"params": params}, x)


@pytest.mark.parametrize(("act", "k"), VARIANTS, ids=VARIANT_IDS)
def test_mlp_forward_matches_stax(act, k, x64):
    """models.MLP with NT's parameters computes NT's apply_fn outputs (same parameterization)."""
    mlp, params, tag = _mlp_and_params(act, k)
    for x, ref in ((EMP["x1"], EMP[f"{tag}_f1"]), (EMP["x2"], EMP[f"{tag}_f2"])):
        out = mlp.apply({"params": params}, x)
        assert out.shape == ref.shape
        assert rel_fro(out, ref) <= 1e-12
        np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-13)  # entry by entry too


@pytest.mark.parametrize(
    "implementation", ["jacobian", pytest.param("ntvp", marks=pytest.mark.slow)]
)
@pytest.mark.parametrize(("act", "k"), VARIANTS, ids=VARIANT_IDS)
def test_empirical_ntk_matches_neural_tangents(act, k, implementation, x64):
    """output_reduction='mean' = NT's default trace_axes=(-1,) (trace / k), for impl 1 and 3."""
    from ntk_air.empirical import empirical_ntk_fn

    mlp, params, tag = _mlp_and_params(act, k)
    ntk_fn = empirical_ntk_fn(
        _apply_fn(mlp), implementation=implementation, output_reduction="mean"
    )
    got11 = ntk_fn(params, EMP["x1"])
    got12 = ntk_fn(params, EMP["x1"], EMP["x2"])
    assert got11.shape == (10, 10) and got12.shape == (10, 6)
    for impl in (1, 3):
        assert rel_fro(got11, EMP[f"{tag}_ntk_mean_11_impl{impl}"]) <= TOL
        assert rel_fro(got12, EMP[f"{tag}_ntk_mean_12_impl{impl}"]) <= TOL


@pytest.mark.parametrize(
    "implementation", ["jacobian", pytest.param("ntvp", marks=pytest.mark.slow)]
)
@pytest.mark.parametrize("act", ["relu", "erf"])
def test_empirical_ntk_sum_and_none_match_neural_tangents(act, implementation, x64):
    """k = 3: 'none' = NT's untraced (n1, n2, k, k) kernel; 'sum' = k · NT's averaged one."""
    from ntk_air.empirical import empirical_ntk_fn

    k = 3
    mlp, params, tag = _mlp_and_params(act, k)
    f = _apply_fn(mlp)
    full = empirical_ntk_fn(f, implementation=implementation, output_reduction="none")
    got = full(params, EMP["x1"], EMP["x2"])
    assert got.shape == (10, 6, k, k)
    assert rel_fro(got, EMP[f"{tag}_ntk_full_12"]) <= TOL
    assert rel_fro(full(params, EMP["x1"]), EMP[f"{tag}_ntk_full_11"]) <= TOL
    summed = empirical_ntk_fn(f, implementation=implementation, output_reduction="sum")
    assert rel_fro(summed(params, EMP["x1"], EMP["x2"]), k * EMP[f"{tag}_ntk_mean_12_impl1"]) <= TOL


@pytest.mark.parametrize(("act", "k"), VARIANTS, ids=VARIANT_IDS)
def test_structured_mlp_ntk_matches_neural_tangents(act, k, x64):
    """The structured-derivative MLP eNTK equals NT's structured one (impl 3), untiled and
    tiled (NT's impl 1 and impl 3 agree to ~2e-16, checked by make_fixtures.py)."""
    from ntk_air.empirical import structured_mlp_ntk_fn

    mlp, params, tag = _mlp_and_params(act, k)
    ref12 = EMP[f"{tag}_ntk_mean_12_impl3"]
    ref11 = EMP[f"{tag}_ntk_mean_11_impl3"]
    for tile_size in (None, 4):  # 4 divides neither 10 nor 6: exercises padding
        ntk_fn = structured_mlp_ntk_fn(mlp, output_reduction="mean", tile_size=tile_size)
        assert rel_fro(ntk_fn(params, EMP["x1"], EMP["x2"]), ref12) <= TOL
        assert rel_fro(ntk_fn(params, EMP["x1"]), ref11) <= TOL
    if k > 1:
        full = structured_mlp_ntk_fn(mlp, output_reduction="none")(params, EMP["x1"], EMP["x2"])
        assert rel_fro(full, EMP[f"{tag}_ntk_full_12"]) <= TOL


def test_empirical_ntk_dtype_close_to_neural_tangents(dtype):
    """Both dtypes: the Jacobian engine agrees with NT (float64 values) to the dtype's accuracy."""
    from ntk_air.empirical import empirical_ntk_fn

    mlp, params, tag = _mlp_and_params("relu", 3)
    params = jax.tree_util.tree_map(lambda a: np.asarray(a, dtype), params)
    ntk_fn = empirical_ntk_fn(_apply_fn(mlp), implementation="jacobian", output_reduction="mean")
    got = ntk_fn(params, EMP["x1"].astype(dtype), EMP["x2"].astype(dtype))
    assert got.dtype == np.dtype(dtype)
    tol = 1e-6 if dtype == "float32" else TOL  # float32 measured 1.4e-7 on CPU (≈ eps)
    assert rel_fro(got, EMP[f"{tag}_ntk_mean_12_impl1"]) <= tol
