"""The kernel during training (`studies.entk`, `ntk-air entk`): step 0 is the kernel computed
directly, the distance starts at 0 and grows, alignments match numpy, a wide network's eNTK
approaches its infinite-width kernel, checkpoints share one compilation, bad options fail in
one line."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import TOLERANCES, linalg_tol, rel_fro
from ntk_air import cli, data, kernels, studies
from ntk_air.empirical import empirical_ntk_fn
from ntk_air.networks import _models as models
from ntk_air.report import ReportWriter, write_entk
from ntk_air.report.entk import _entk_summary


def _digits(n=40, n_test=12, binary=False):
    return data.digits(binary=binary, n_train=n, n_test=n_test, noise_rate=0.25, seed=1)


def _numpy_alignment(K, z):
    K = np.asarray(K, np.float64)
    Z = np.asarray(z, np.float64)
    Z = Z[:, None] if Z.ndim == 1 else Z
    return np.trace(Z.T @ K @ Z) / (np.linalg.norm(K) * np.linalg.norm(Z.T @ Z))


def _plain_entk(apply_fn, params, x1, x2):
    """Θ = (1/k) Σ_a J_a(x1) J_a(x2)ᵀ from full Jacobians (jax.jacrev, flattened): a reference
    independent of the tiled engine."""

    def flat_jac(x):
        jac = jax.jacrev(lambda p: apply_fn(p, x))(params)  # leaves (n, k, *shape)
        leaves = jax.tree_util.tree_leaves(jac)
        n, k = leaves[0].shape[:2]
        return np.concatenate([np.asarray(a).reshape(n, k, -1) for a in leaves], axis=-1)

    j1, j2 = flat_jac(x1), flat_jac(x2)
    return np.einsum("iap,jap->ij", j1, j2) / j1.shape[1]


def test_step_zero_is_the_kernel_computed_directly(tmp_path, x64):
    """Θ at checkpoint 0 (result, entk.json, entk_kernels.npz) = the eNTK of θ_0 computed
    independently; its eigenvalues and alignments too; the distance at step 0 is exactly 0."""
    ds = _digits()
    net = studies.entk_network("mlp", ds, width=32, depth=1, seed=3)
    config = studies.EntkConfig(steps=5, checkpoints=(2, 5))
    study = studies.entk(ds, net.apply_fn, net.params, config, ntk_fn=net.ntk_fn)
    x, x_test = jnp.asarray(ds.x), jnp.asarray(ds.x_test)
    direct = _plain_entk(net.apply_fn, net.params, x, x)
    direct_test = _plain_entk(net.apply_fn, net.params, x_test, x)
    tol = TOLERANCES["float64"]["elementwise"]
    assert study.steps.tolist() == [0, 2, 5]
    assert rel_fro(study.ntk[0], direct) < tol
    assert rel_fro(study.ntk_test[0], direct_test) < tol
    assert study.kernel_distance[0] == 0.0 and study.kernel_distance_test[0] == 0.0

    writer = ReportWriter(tmp_path / "out")
    write_entk(writer, study, kernels=True)
    writer.finish({})
    s = json.loads((tmp_path / "out" / "entk.json").read_text())
    lam = np.sort(np.linalg.eigvalsh(direct))[::-1]
    np.testing.assert_allclose(s["eigenvalues"][0], lam, atol=linalg_tol("float64", 40) * lam[0])
    for kind, z in (("clean", ds.y_clean), ("noise", ds.y - ds.y_clean), ("noisy", ds.y)):
        assert s["alignment"][kind][0] == pytest.approx(_numpy_alignment(direct, z), rel=1e-10)
    assert s["kernel_distance"][0] == 0.0
    with np.load(tmp_path / "out" / "entk_kernels.npz") as f:
        assert rel_fro(f["ntk"][0], direct) < tol
        assert f["steps"].tolist() == [0, 2, 5]


def test_cli_entk_json_at_step_zero_equals_the_direct_kernel(tmp_path, capsys):
    """`ntk-air entk` end to end (float32): entk.json's step-0 eigenvalues and alignment are
    those of the eNTK of the same initialization computed directly; the plan is printed."""
    out = tmp_path / "e"
    args = ["entk", "--dataset", "digits", "--n-train", "30", "--n-test", "10", "--seed", "2"]
    args += ["--width", "32", "--depth", "1", "--steps", "3", "--checkpoints", "3", "--no-progress"]
    assert cli.main(args + ["--out", str(out), "--save-kernels"]) == 0
    printed = capsys.readouterr().out
    assert "eNTK: auto: structured" in printed and "fc_kernel_fn(depth=1" in printed
    s = json.loads((out / "entk.json").read_text())
    assert s["entk_plan"]["implementation"] == "structured" and s["dtype"] == "float32"
    ds = data.digits(n_train=30, n_test=10, seed=2)
    x32 = jnp.asarray(ds.x, jnp.float32)
    apply_fn, params = models.mlp_network((32,), x32, out_dim=10, seed=0)
    direct = _plain_entk(apply_fn, params, x32, x32)
    lam = np.sort(np.linalg.eigvalsh(direct))[::-1]
    np.testing.assert_allclose(s["eigenvalues"][0], lam, atol=linalg_tol("float32", 30) * lam[0])
    align = _numpy_alignment(direct, ds.y_clean)
    assert s["alignment"]["clean"][0] == pytest.approx(align, rel=1e-4)
    with np.load(out / "entk_kernels.npz") as f:
        assert rel_fro(f["ntk"][0], direct) < TOLERANCES["float32"]["elementwise"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and "entk_motion.png" in manifest["files"]
    assert set(json.loads((out / "timings.json").read_text())["seconds"]) == {"study", "report"}


def test_kernel_distance_is_zero_at_step_zero_and_grows_with_training(x64):
    ds = _digits(binary=True, n=30)
    net = studies.entk_network("mlp", ds, width=128, depth=2, seed=0)
    # η = 2 (η λ_max(Θ_0) ≈ 0.17): a steady descent. The default 1/λ_max(Θ_0) at this width
    # catapults (Θ_t grows past 2/η, the loss rises, then Θ_t shrinks back): not monotone.
    config = studies.EntkConfig(steps=100, checkpoints=(5, 20, 100), eta=2.0)
    study = studies.entk(ds, net.apply_fn, net.params, config, ntk_fn=net.ntk_fn)
    d = study.kernel_distance
    assert d[0] == 0.0
    assert 0 < d[1] < d[2] < d[3], d
    # the weights moved; the network fit the training labels better
    assert study.curves.weight_change[0] == 0 and study.curves.weight_change[-1] > 0
    assert study.curves.loss[-1] < study.curves.loss[0]
    # the recomputed distance from the stored kernels
    expected = [rel_fro(t, study.ntk[0]) for t in study.ntk]
    np.testing.assert_allclose(d, expected, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("binary", [True, False])
def test_alignment_matches_numpy(dtype, binary):
    """A(Θ, z) = ⟨Θ, zzᵀ⟩_F / (‖Θ‖_F ‖zzᵀ‖_F), the trace form for one-hot labels, at every
    checkpoint; and it is the alignment `spectrum` computes through the eigendecomposition."""
    ds = _digits(binary=binary, n=24, n_test=0)
    net = studies.entk_network("mlp", ds, width=16, depth=1)
    config = studies.EntkConfig(steps=20, num_checkpoints=4, dtype=dtype, eta=1.0)
    study = studies.entk(ds, net.apply_fn, net.params, config, ntk_fn=net.ntk_fn)
    assert study.ntk.dtype == np.dtype(dtype) and study.ntk_test is None
    rtol = 1e-4 if dtype == "float32" else 1e-12
    for t, K in enumerate(study.ntk):
        for kind, z in (("clean", ds.y_clean), ("noise", ds.y - ds.y_clean), ("noisy", ds.y)):
            got = float(getattr(study.alignment, kind)[t])
            assert got == pytest.approx(_numpy_alignment(K, z), rel=rtol)
            via_eigen = float(getattr(study.spectra, kind).alignment[t])
            assert got == pytest.approx(via_eigen, rel=100 * rtol)
    z = jnp.array([1.0, -1.0, 1.0, 1.0])
    assert float(studies.kernel_target_alignment(jnp.outer(z, z), z)) == pytest.approx(1.0)


def test_checkpoints_share_one_compilation(compile_counter):
    """Between the second checkpoint's kernel and the last one nothing compiles: Θ_t(X, X),
    Θ_t(X_test, X), the eigendecomposition and the measures reuse their programs."""
    ds = _digits(n=24, n_test=8)
    net = studies.entk_network("cnn", ds, channels=4, depth=1)
    counts, window = [], {}

    def progress(stage, done, total):
        if stage == "eNTK at step 1":
            window["counter"] = compile_counter()
            window["cm"] = window["counter"].__enter__()
        elif stage.startswith("eNTK at step") and "cm" in window:
            window["counter"].__exit__(None, None, None)
            counts.append(window["cm"].count)
            window["counter"] = compile_counter()
            window["cm"] = window["counter"].__enter__()

    config = studies.EntkConfig(steps=6, checkpoints=(1, 2, 4, 6))
    study = studies.entk(ds, net.apply_fn, net.params, config, ntk_fn=net.ntk_fn, progress=progress)
    window["counter"].__exit__(None, None, None)
    assert study.plan["implementation"] in ("jacobian", "ntvp")
    assert counts == [0, 0, 0], counts


@pytest.mark.slow
def test_cnn_entk_at_init_approaches_the_neural_tangents_kernel(x64):
    """models.ConvNet follows neural-tangents' conventions: its eNTK at init nears the NT
    infinite-width CNN kernel as the channels grow (flatten pooling, the CLI's default; with
    global pooling the readout's fan-in is only C and the fluctuations need C ≈ 512)."""
    from ntk_air import nt_backend

    if not nt_backend.is_available():
        pytest.skip("neural-tangents is not installed (the CNN's infinite-width kernel)")
    ds = _digits(binary=True, n=8, n_test=0)
    for pool in ("flatten",):
        errors = []
        for channels in (8, 128):
            net = studies.entk_network("cnn", ds, channels=channels, depth=2, pool=pool, b_std=0.1)
            theta = net.ntk_fn(net.params, jnp.asarray(ds.x))
            errors.append(rel_fro(theta, net.limit_kernel_fn(ds.x).ntk))
        assert errors[1] < 0.5 * errors[0] and errors[1] < 0.15, (pool, errors)


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_conv_as_matrix_products_equals_lax_conv(stride):
    cases = (((2, 8, 8, 3), (3, 3)), ((2, 7, 5, 2), (2, 3)), ((2, 40, 1), (3,)), ((2, 19, 2), (5,)))
    for shape, window in cases:
        h = jax.random.normal(jax.random.key(0), shape)
        kernel = jax.random.normal(jax.random.key(1), (*window, shape[-1], 4))
        sp = "HWD"[: len(window)]
        ref = jax.lax.conv_general_dilated(
            h,
            kernel,
            (stride,) * len(window),
            "SAME",
            dimension_numbers=(f"N{sp}C", f"{sp}IO", f"N{sp}C"),
        )
        out = models._conv_same(h, kernel, stride)
        assert out.shape == ref.shape and rel_fro(out, ref) < 1e-6


def test_the_theorem_network_and_its_limit():
    """arch 'two-layer-relu': the structured eNTK of the theorem's net; Θ_∞ = H∞."""
    ds = _digits(binary=True, n=16, n_test=0)
    net = studies.entk_network("two-layer-relu", ds, width=64)
    assert net.ntk_fn.plan(net.params, jnp.asarray(ds.x, jnp.float32)).implementation == (
        "structured"
    )
    study = studies.entk(
        ds,
        net.apply_fn,
        net.params,
        studies.EntkConfig(steps=4, num_checkpoints=3),
        ntk_fn=net.ntk_fn,
        limit_kernel_fn=net.limit_kernel_fn,
        limit_name=net.limit_name,
    )
    h_inf = np.asarray(kernels.two_layer_relu(ds.x))
    assert rel_fro(study.limit.ntk, h_inf) < 1e-6
    assert 0 < study.limit.distance[0] < 0.5
    with pytest.raises(ValueError, match="needs ±1 labels"):
        studies.entk_network("two-layer-relu", _digits(n=16))


def test_default_ntk_fn_and_explicit_checkpoints(x64):
    ds = _digits(binary=True, n=12, n_test=4)
    apply_fn, params = models.mlp_network((8,), ds.x)
    study = studies.entk(ds, apply_fn, params, studies.EntkConfig(steps=3, checkpoints=[3, 1]))
    assert study.steps.tolist() == [0, 1, 3] and study.limit is None
    assert study.plan["implementation"] in ("jacobian", "ntvp")  # no model given: not structured
    direct = empirical_ntk_fn(apply_fn)(params, ds.x)
    assert rel_fro(study.ntk[0], direct) < TOLERANCES["float64"]["elementwise"]
    with pytest.raises(ValueError, match="checkpoints must be whole steps in \\[0, 3\\]"):
        studies.EntkConfig(steps=3, checkpoints=[5])
    with pytest.raises(ValueError, match="need about .* GB > max_kernel_bytes"):
        studies.entk(ds, apply_fn, params, studies.EntkConfig(steps=3, max_kernel_bytes=1000))
    with pytest.raises(ValueError, match="not both"):
        studies.EntkConfig(eta=0.1, optimizer=object())


def _cli_error(args, capsys):
    try:
        code = cli.main(args)
    except SystemExit as exit_:  # argparse's refusal of a value its type does not parse
        code = exit_.code
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--arch", "two-layer-relu"], "needs ±1 labels"),
        (["--channels", "8"], "--channels does not apply to arch 'mlp'"),
        (["--arch", "cnn", "--width", "8", "--activation", "erf"], "--width does not apply"),
        (["--optimizer", "adam"], "--optimizer adam needs --eta"),
        (["--at", "50", "--steps", "10"], "--at must be whole steps in [0, 10]"),
        (["--arch", "cnn", "--input-shape", "7x7x1"], "--input-shape (7, 7, 1) holds 49 values"),
        (["--arch", "cnn", "--input-shape", "8by8"], "must be positive integers like 8x8x1"),
        (["--eta", "-1"], "--eta must be a finite number > 0"),
        (["--eta", "100"], "≥ 2/λ_max"),
        (["--steps", "0"], "steps must be an integer ≥ 1"),
        (["--n-train", "5000"], "digits has 1797 examples"),
    ],
)
def test_bad_options_fail_in_one_line(extra, message, tmp_path, capsys):
    base = ["entk", "--dataset", "digits", "--n-train", "20", "--n-test", "5", "--no-progress"]
    code, err = _cli_error(base + ["--out", str(tmp_path / "o")] + extra, capsys)
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("ntk-air entk: error:"), err
    assert message in err, err


def test_cnn_needs_an_input_shape_off_digits(tmp_path, capsys):
    code, err = _cli_error(["entk", "--arch", "cnn", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "needs input_shape for data set 'clusters'" in err


def test_label_energies_are_the_squared_projections_and_sum_to_the_norm(x64):
    """p_i(z) = (v_iᵀz)² / ‖z‖² on the eigenvectors of Θ_t (numpy eigh, independent of the
    library): each row sums to 1, times ‖z‖² it sums to ‖z‖², at every checkpoint."""
    ds = _digits(binary=True, n=24, n_test=0)
    net = studies.entk_network("mlp", ds, width=32, depth=1, seed=1)
    config = studies.EntkConfig(steps=30, checkpoints=(3, 30), eta=1.0)
    study = studies.entk(ds, net.apply_fn, net.params, config, ntk_fn=net.ntk_fn)
    for kind, z in (("clean", ds.y_clean), ("noise", ds.y - ds.y_clean), ("noisy", ds.y)):
        spec = getattr(study.spectra, kind)
        norm2 = float(np.sum(np.asarray(z, np.float64) ** 2))
        for t, K in enumerate(study.ntk):
            lam, v = np.linalg.eigh(np.asarray(K, np.float64))
            p = (v[:, ::-1].T @ np.asarray(z, np.float64)) ** 2  # descending eigenvalue order
            energy = np.asarray(spec.energy[t])
            assert float(np.sum(energy)) == pytest.approx(1.0, rel=1e-12)
            assert float(np.sum(energy) * spec.norm[t] ** 2) == pytest.approx(norm2, rel=1e-12)
            np.testing.assert_allclose(energy * norm2, p, atol=1e-9 * norm2)
    summary = _entk_summary(study)
    assert summary["label_norms"]["noisy"] == pytest.approx(np.linalg.norm(ds.y))
    np.testing.assert_allclose(np.sum(summary["energy_noise"], axis=1), 1.0, rtol=1e-12)


def test_wide_mlp_entk_at_init_is_close_to_the_fc_ntk(x64):
    """A wide MLP's eNTK at initialization is within a loose 10 % of fc_kernel_fn (each of
    3 seeds), and much closer than a narrow one's (mean over the same seeds)."""
    ds = _digits(binary=True, n=16, n_test=0)
    x = jnp.asarray(ds.x)
    errors = {}
    for width in (16, 2048):
        e = []
        for seed in range(3):
            net = studies.entk_network("mlp", ds, width=width, depth=2, seed=seed, b_std=0.1)
            e.append(rel_fro(net.ntk_fn(net.params, x), net.limit_kernel_fn(x).ntk))
        errors[width] = e
    assert max(errors[2048]) < 0.1, errors
    assert np.mean(errors[2048]) < 0.3 * np.mean(errors[16]), errors


def test_cli_on_user_npz_data_writes_the_documented_files(tmp_path, capsys):
    """`ntk-air entk DATA.npz`: entk.json has exactly the documented keys (`ENTK_KEYS` plus
    files/figures), index.md links them, the manifest is complete; the output path is checked
    before any work (a file in the way is refused at once)."""
    from ntk_air.report.entk import ENTK_KEYS

    ds = _digits(n=20, n_test=6)
    path = tmp_path / "mine.npz"
    data.save_npz(ds, path)
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    code, err = _cli_error(["entk", str(path), "--out", str(blocker), "--no-progress"], capsys)
    assert code == 2 and str(blocker) in err and len(err.splitlines()) == 1, err

    out = tmp_path / "o"
    args = ["entk", str(path), "--width", "16", "--depth", "1", "--steps", "4"]
    assert cli.main(args + ["--checkpoints", "3", "--no-progress", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "eNTK: auto:" in printed and "index.md" in printed
    s = json.loads((out / "entk.json").read_text())
    assert set(s) == set(ENTK_KEYS) | {"files", "figures"}
    assert s["checkpoints"] == [0, 1, 4] and len(s["eigenvalues"]) == 3
    assert np.asarray(s["energy_clean"]).shape == (3, 20)
    assert s["kernel_distance"][0] == 0.0 and len(s["kernel_distance_test"]) == 3
    assert s["limit"]["name"].startswith("fc_kernel_fn(depth=1")
    assert set(s["alignment"]) == {"clean", "noise", "noisy"}
    index = (out / "index.md").read_text()
    assert "incomplete" not in index and "kernel distance" in index
    for fig in s["figures"]:
        assert f"]({fig})" in index and (out / fig).stat().st_size > 0
    assert json.loads((out / "manifest.json").read_text())["complete"]
