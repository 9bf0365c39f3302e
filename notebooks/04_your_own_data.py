# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Your own data: from an `.npz` file to an AIR report
#
# This notebook is the path for a data set of your own:
#
# 1. write it to an `.npz` file with the keys ntk_air reads (`x`, `y`, optional `y_clean`,
#    `x_test`, `y_test`);
# 2. load it with `ntk_air.data.from_npz`, and deal with input norms;
# 3. choose an architecture — the kernel that stands for your network — by looking at how well
#    each one aligns with your labels;
# 4. run the AIR study (`ntk_air.studies`, what `ntk-air air` computes): the spectrum, the
#    energy of clean labels and noise per eigenmode, the fitted fractions and the U-curve, as
#    a result pytree to plot and read — and, if you want files, write its report (`ntk_air.report`:
#    a JSON summary and figures, exactly as the command line writes them).
#
# As "your data" we take the raw 8×8 handwritten digits that scikit-learn ships (no download),
# a 3-vs-8 task with 20 % of the training labels flipped — exactly what you would do with, say,
# features extracted from your own images and labels from crowd workers.

# %% [markdown]
# **Why float64.** The first code cell turns on JAX's 64-bit mode before any array exists. The
# AIR report decomposes the kernel and raises (1 − ηλ_i) to powers over hundreds of thousands of
# steps; float32 (eps ≈ 1.2·10⁻⁷) would lose the small eigenvalues where the noise lives.
# ntk_air computes in the dtype of its inputs: float64 here (`from_npz` returns float64 arrays);
# the report records the dtype in its JSON.
#
# **Size.** Small by default (< 2 min on two CPU cores); `NTK_AIR_NOTEBOOK_SIZE=large` uses all
# the 3s and 8s and adds the 10-class task.

# %%
import os

import jax

jax.config.update("jax_enable_x64", True)  # first, before any JAX array exists

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from ntk_air import data, kernels, nt_backend, report, studies
from ntk_air.plots.air import (
    plot_eigenvalues,
    plot_fitted_fractions,
    plot_label_energy,
    plot_u_curve,
)

SIZE = os.environ.get("NTK_AIR_NOTEBOOK_SIZE", "small")  # "small" (< 2 min on a CPU) or "large"
if SIZE not in ("small", "large", "ci"):  # "ci": the least work that runs every cell (tests)
    raise ValueError(f"NTK_AIR_NOTEBOOK_SIZE must be 'small', 'large' or 'ci', got {SIZE!r}")


N_TRAIN = {"ci": 100, "small": 200}.get(SIZE)  # None: every 3 and 8 not used for testing
N_TEST = 60 if SIZE == "ci" else 120
WORK = Path(tempfile.mkdtemp(prefix="ntk_air_your_data_"))
print("working folder:", WORK)

# %% [markdown]
# ## 1. Write your data to an `.npz`
#
# The format is plain numpy arrays (loaded with `allow_pickle=False`, so no Python objects):
#
# | key | shape | meaning |
# |---|---|---|
# | `x` | (n, d) | training inputs |
# | `y` | (n,) or (n, C) | the labels you have (possibly noisy): ±1, or one-hot rows |
# | `y_clean` | same as `y` | optional: the ground truth ŷ, if you know it (for a study of noise) |
# | `x_test`, `y_test` | (n_test, d), (n_test[, C]) | optional pair: test inputs, clean labels |
#
# Without `y_clean`, ntk_air takes y as the truth and cannot split signal from noise; with it,
# the noise is e = y − ŷ. Here we corrupt the labels ourselves with `data.symmetric_flip`, which
# flips exactly 20 % of each class.

# %%
pixels, digit = load_digits(return_X_y=True)
keep = np.flatnonzero((digit == 3) | (digit == 8))
rng = np.random.default_rng(0)
keep = rng.permutation(keep)
test_rows, train_rows = keep[:N_TEST], keep[N_TEST:]
if N_TRAIN is not None:
    train_rows = train_rows[:N_TRAIN]
to_pm1 = lambda d: np.where(d == 3, 1.0, -1.0)  # noqa: E731  (3 → +1, 8 → −1)
y_clean = to_pm1(digit[train_rows])
y_noisy, corrupted = data.symmetric_flip(y_clean, 0.2, seed=0)

npz_path = WORK / "my_digits.npz"
np.savez(
    npz_path,
    x=pixels[train_rows],  # raw pixels 0..16, NOT unit norm — on purpose
    y=y_noisy,
    y_clean=y_clean,
    x_test=pixels[test_rows],
    y_test=to_pm1(digit[test_rows]),
)
print(
    f"wrote {npz_path.name}: {len(train_rows)} training rows ({int(corrupted.sum())} flipped), "
    f"{len(test_rows)} test rows"
)

# %% [markdown]
# ## 2. Load it, and mind the input norms
#
# `data.from_npz` checks every array (shapes, finiteness, no pickles) and returns a `Dataset`
# whose `info` records what it found — among them `max_norm_deviation` = max_i |‖x_i‖ − 1|. The
# theory (and H∞ = ρ(π − arccos ρ)/(2π)) assumes unit-norm inputs, and ntk_air never rescales
# your data behind your back: the two-layer kernel refuses non-unit rows and names the worst one.

# %%
raw = data.from_npz(npz_path)
print(f"{raw.name}: x {raw.x.shape}, y {raw.y.shape}, test {raw.x_test.shape}")
print(
    f"noisy rows found: {raw.info['n_corrupted']}; max |‖x‖ − 1| = "
    f"{raw.info['max_norm_deviation']:.3g}"
)
try:
    kernels.two_layer_relu(raw.x)
except ValueError as err:
    print("two_layer_relu refuses:", err)

# %% [markdown]
# Decide explicitly. Here we center the pixels (subtract the mean training image, so that the
# digits' shapes rather than their ink dominate the inner products) and ask `from_npz` to
# unit-normalize the rows: `normalize=True` (the CLI's `--normalize`).

# %%
mean_image = pixels[train_rows].mean(axis=0)
centered_path = WORK / "my_digits_centered.npz"
with np.load(npz_path) as f:
    arrays = dict(f)
arrays["x"] = arrays["x"] - mean_image
arrays["x_test"] = arrays["x_test"] - mean_image
np.savez(centered_path, **arrays)
ds = data.from_npz(centered_path, normalize=True)
print(f"after normalize=True: max |‖x‖ − 1| = {ds.info['max_norm_deviation']:.2e}")

fig, axes = plt.subplots(1, 8, figsize=(12, 1.8))
for ax, i in zip(axes, range(8), strict=True):
    ax.imshow(pixels[train_rows[i]].reshape(8, 8), cmap="gray_r")
    flag = " (flipped)" if corrupted[i] else ""
    ax.set_title(f"y={ds.y[i]:+.0f}{flag}", fontsize=8)
    ax.axis("off")
fig.suptitle("first training images and the labels you gave (3 → +1, 8 → −1)")
plt.show()

# %% [markdown]
# ## 3. Choose an architecture
#
# A kernel stands for an architecture trained in the NTK regime. Candidates:
#
# * `kernels.two_layer_relu_kernel_fn()` — H∞ of the theorem's two-layer network;
# * `kernels.fc_kernel_fn(depth=D, w_std=…, b_std=…)` — a deep fully connected network
#   (neural-tangents' conventions);
# * any kernel of your own: `kernels.from_layers(kernels.serial(...))` composes infinite-width
#   layers, `kernels.from_pairwise(block_fn)` turns any pairwise function into a kernel function
#   (notebook 5);
# * with the optional neural-tangents backend, any `stax` network, e.g. a CNN on the 8×8 images:
#   `nt_backend.kernel_fn_from_spec("cnn:depth=2,pool=flatten,shape=8x8x1")`.
#
# A quick guide to the choice is how much of the clean labels' energy sits in the top modes —
# the kernel–target alignment A(ŷ) = ⟨H, ŷŷᵀ⟩_F / (‖H‖_F ‖ŷŷᵀ‖_F), the number of modes holding
# 90 % of ‖ŷ‖², and the complexity ŷᵀH⁻¹ŷ (Arora et al.: a generalization bound grows with
# √(ŷᵀH⁻¹ŷ / n)) — and, with a known ŷ, the best early-stopping distance ‖u(k*) − ŷ‖ on test points.
# All of it comes from one eigendecomposition per kernel: `studies.air` computes it (here on
# 120 log-spaced steps up to 10⁶).

# %%
# name: (kernel function, its description for the report's JSON)
candidates = {
    "two-layer H∞": (kernels.two_layer_relu_kernel_fn(), {"arch": "two-layer-relu"}),
    "FC depth 1": (kernels.fc_kernel_fn(depth=1), {"arch": "fc", "depth": 1}),
    "FC depth 3, w 1.5, b 0.1": (
        kernels.fc_kernel_fn(depth=3, w_std=1.5, b_std=0.1),
        {"arch": "fc", "depth": 3, "w_std": 1.5, "b_std": 0.1},
    ),
}
cnn_spec = "cnn:channels=8,depth=2,pool=flatten,shape=8x8x1"
try:
    candidates["CNN (neural-tangents)"] = (
        nt_backend.kernel_fn_from_spec(cnn_spec),
        {"arch": cnn_spec, "backend": "neural-tangents"},
    )
except nt_backend.NeuralTangentsUnavailable as err:
    print(f"neural-tangents backend not available, comparing native kernels only:\n{err}")

print(
    f"{'architecture':26s} {'A(ŷ)':>7s} {'modes 90% ŷ':>12s} {'modes 90% e':>12s} {'ŷᵀH⁻¹ŷ':>10s} "
    f"{'best test dist':>15s}"
)
comparison, air = {}, {}
for name, (kernel_fn, _) in candidates.items():
    air[name] = studies.air(ds, kernel_fn, studies.AIRConfig(steps=1e6, num_steps=120))
    s, uc = air[name].spectra, air[name].curve
    comparison[name] = float(uc.test_best_dist)
    print(
        f"{name:26s} {float(s.clean.alignment):7.3f} {int(s.clean.modes_holding[1]):12d} "
        f"{int(s.noise.modes_holding[1]):12d} {float(s.clean.complexity):10.4g} "
        f"{float(uc.test_best_dist):15.3f}"
    )
choice = min(comparison, key=comparison.get)
print(f"\nbest early-stopped test distance: {choice}")

# %% [markdown]
# ## 4. The AIR study of the chosen kernel
#
# `studies.air(dataset, kernel_fn)` is what `ntk-air air` computes: the kernel of the training
# inputs and K(x_test, X), one eigendecomposition, and from it an `AIRStudy` — eigenvalues
# (descending), the label spectra of ŷ, e and y (energy per mode p_i(z) = (v_iᵀz)²/‖z‖², the
# modes holding 50/90/99 %, alignment and complexity), the log-spaced steps with ‖u(k) − ŷ‖₂ on
# train and test (linearized GD from u(0) = 0, η = 1/λ_max) and the best early stop, the fitted
# fractions F_z(k), the steps by which 50/90/99 % are fitted, and the half-lives. Its default
# horizon is where the noise is fitted (`early_stopping.noise_fit_horizon`). The figures are the
# report's, drawn here on our own axes by `ntk_air.plots`.

# %%
kernel_fn, kernel_config = candidates[choice]
study = studies.air(ds, kernel_fn)
title = f"{choice}, n = {study.data['n']}"
fig, axes = plt.subplots(1, 3, figsize=(17, 4.2))
plot_eigenvalues(study.eigenvalues, ax=axes[0], title=f"NTK spectrum ({title})")
plot_fitted_fractions(study.fitted, ax=axes[1], title="fitted fraction")
plot_u_curve(study.curve, ax=axes[2], title="U-curve of GD on noisy labels")
fig.tight_layout()
plt.show()
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
plot_label_energy(study.spectra, axes=axes, title=f"label energy per NTK mode ({title})")
fig.tight_layout()
plt.show()

lam, spectra, uc = np.asarray(study.eigenvalues), study.spectra, study.curve
print(f"data: {study.data['name']}, n = {study.data['n']}, d = {study.data['d']}")
print(
    f"kernel: {kernel_config}, dtype {lam.dtype}, η = {study.eta:.4g} "
    f"(η·λ_max = {study.eta * lam[0]:.3g})"
)
print(f"λ_max = {lam[0]:.4g}, λ_min = {lam[-1]:.3g}")
print("modes holding 50/90/99 % of the energy:")
for kind in ("clean", "noise", "noisy"):
    print(f"  {kind:6s} {np.asarray(getattr(spectra, kind).modes_holding).tolist()}")
fit = study.steps_to_fit["0.9"]
print(f"90 % fitted: clean labels by step {fit['clean']}, noise by step {fit['noise']}")
print(
    f"‖u(k) − ŷ‖ on train: start {float(uc.start_dist):.3f}, best {float(uc.best_dist):.3f} at "
    f"k = {float(uc.best_step):.0f}, end {float(uc.final_dist):.3f};  test: best "
    f"{float(uc.test_best_dist):.3f} at k = {float(uc.test_best_step):.0f}"
)

# %% [markdown]
# ## 5. The report, as files
#
# To keep the result, hand the study to the report layer, as the command line does:
# `report.write_air` writes `air.json` (every number above; arrays as lists) and four PNG figures
# into a `report.ReportWriter` folder, atomically, and `finish` writes its `manifest.json` last.
# It returns the summary it wrote, and `report.air_headlines` turns it into the rows of the
# results table that opens `index.md` in a full `ntk-air reproduce` report.

# %%
writer = report.ReportWriter(WORK / "air_report")
summary = report.write_air(writer, study, kernel=kernel_config)
manifest = writer.finish({"command": "air"})
print("files:", manifest["files"])
for quantity, value, meaning in report.air_headlines(summary):
    print(f"* {quantity}: {value}\n  {meaning}")

# %% [markdown]
# ## The same from the command line
#
# `ntk-air air DATA.npz` runs the same study and writes the same report; `--normalize` is the
# `normalize=True` above, and `--arch`, `--depth`, `--w-std`, `--b-std` choose the kernel
# (`--backend neural-tangents` with an architecture spec for the CNN). Run here through the
# current interpreter with the FC depth-3 kernel, it writes the same files as `report.write_air`
# above, and its summary line states the best early stop that `studies.air` finds for that
# kernel:

# %%
cli_dir = WORK / "air_cli"
cli_args = ["--arch", "fc", "--depth", "3", "--w-std", "1.5", "--b-std", "0.1"]
cmd = [
    sys.executable,
    "-m",
    "ntk_air",
    "air",
    str(centered_path),
    "--normalize",
    *cli_args,
    "--out",
    str(cli_dir),
    "--no-progress",
]
print("$ ntk-air air", " ".join(cmd[4:]))
done = subprocess.run(cmd, capture_output=True, text=True, check=False)
print(done.stdout or done.stderr)
assert done.returncode == 0, done.stderr
cli_files = sorted(p.name for p in cli_dir.iterdir())
print("files:", cli_files)
assert set(manifest["files"]) <= set(cli_files)
fc3 = studies.air(ds, candidates["FC depth 3, w 1.5, b 0.1"][0]).curve
best = f"best {float(fc3.best_dist):.4g} at k = {float(fc3.best_step):.0f}"
print("studies.air, same kernel:", best)
assert best in done.stdout

# %% [markdown]
# ## Multi-class labels
#
# One-hot labels (n, C) go through the same functions: energies sum over the C columns
# (‖v_iᵀZ‖² = Σ_c (v_iᵀz_c)²) and distances are Frobenius norms. At `SIZE = "large"` this cell
# runs the study on all ten digits with pair flips (class c → c + 1).

# %%
if SIZE == "large":
    ten = data.digits(binary=False, n_train=1000, n_test=797, noise="pair", noise_rate=0.2, seed=0)
    data.save_npz(ten, WORK / "digits10.npz")
    ten_study = studies.air(data.from_npz(WORK / "digits10.npz"), kernel_fn)
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.2))
    plot_label_energy(ten_study.spectra, axes=axes[:2], title="digits, 10 classes")
    plot_u_curve(ten_study.curve, ax=axes[2])
    fig.tight_layout()
    plt.show()
else:
    print("(set NTK_AIR_NOTEBOOK_SIZE=large to run the 10-class study)")

# %% [markdown]
# ## Clean up
#
# Everything was written under a temporary folder; remove it (or keep `WORK` to look at the
# files).

# %%
shutil.rmtree(WORK)
print("removed", WORK)
