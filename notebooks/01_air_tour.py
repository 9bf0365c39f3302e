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
# # A tour of Anisotropic Information Retrieval (AIR)
#
# A wide network trained by gradient descent fits the *informative* part of its labels first and
# the *noise* last. In the neural tangent kernel (NTK) regime this is linear algebra: write the
# kernel of the training inputs as H = Σ_i λ_i v_i v_iᵀ (λ_1 ≥ … ≥ λ_n). Gradient descent with
# step η from u(0) = 0 fits the label component along v_i by the factor 1 − (1 − ηλ_i)^k after
# k steps, so components along the top eigenvectors are fitted fast and the rest slowly.
# Real labels put their energy on the top eigenvectors; noise spreads over all of them.
# Dong, Hou, Lu & Zhang (arXiv 1910.01255) call this **AIR**, and draw from it that
# *distillation from an early-stopped teacher is early stopping*.
#
# This notebook walks through it with ntk_air, on the clusterable data of the ℓ2 theorem:
#
# 1. build two kernels — the theorem's two-layer H∞ and a deep fully connected NTK — and look at
#    their spectra;
# 2. project the clean labels ŷ, the noise e = y − ŷ and the noisy labels y on the eigenvectors;
# 3. watch the fitted fractions over time, and the U-shaped distance to the ground truth on train
#    and test points;
# 4. check that distillation from an early-stopped teacher equals early stopping;
# 5. explore noise rate, depth, width and step with sliders (in a live Jupyter session);
# 6. see the same picture on real data (handwritten digits).
#
# Every number is computed by this run; none is "the paper's".

# %% [markdown]
# **Why float64.** The first code cell turns on JAX's 64-bit mode before any array exists.
# The eigenvalues of an NTK span several orders of magnitude and the dynamics raise
# (1 − ηλ_i) to powers k ~ 10⁵: in float32 (eps ≈ 1.2·10⁻⁷) the small eigenvalues, and the
# noise modes that live there, drown in rounding. ntk_air computes in the dtype of its inputs
# (the data here are float64 arrays, so kernels, eigendecompositions and dynamics are float64);
# without x64, JAX would compute all of it in float32.
#
# **Size.** The notebook runs in well under two minutes on two CPU cores. Set the environment
# variable `NTK_AIR_NOTEBOOK_SIZE=large` before starting Jupyter (or edit `SIZE`) for more data.

# %%
import os

import jax

jax.config.update("jax_enable_x64", True)  # first, before any JAX array exists

import functools

import matplotlib.pyplot as plt
import numpy as np

from ntk_air import data, dynamics, empirical, kernels, networks, studies
from ntk_air.plots.air import plot_fitted_fractions, plot_label_energy, plot_u_curve

SIZE = os.environ.get("NTK_AIR_NOTEBOOK_SIZE", "small")  # "small" (< 2 min on a CPU) or "large"
if SIZE not in ("small", "large", "ci"):  # "ci": the least work that runs every cell (tests)
    raise ValueError(f"NTK_AIR_NOTEBOOK_SIZE must be 'small', 'large' or 'ci', got {SIZE!r}")
# Headless runs (the test suite sets NTK_AIR_NOTEBOOK_HEADLESS=1) draw static figures instead of
# interactive widgets.
HEADLESS = os.environ.get("NTK_AIR_NOTEBOOK_HEADLESS", "0") not in ("", "0")


if SIZE == "ci":
    CLUSTERS = dict(n_clusters=4, n_per_cluster=20, dim=20, eps0=0.25, n_test_per_cluster=20)
    DIGITS = dict(n_train=150, n_test=150)
elif SIZE == "small":
    CLUSTERS = dict(n_clusters=4, n_per_cluster=40, dim=20, eps0=0.25, n_test_per_cluster=40)
    DIGITS = dict(n_train=300, n_test=300)
else:
    CLUSTERS = dict(n_clusters=8, n_per_cluster=100, dim=40, eps0=0.25, n_test_per_cluster=100)
    DIGITS = dict(n_train=1000, n_test=797)
NOISE_RATE = 0.25
DEPTH = 4  # hidden layers of the deep fully connected NTK
SEED = 0

# %% [markdown]
# ## 1. Data: the clusterable model
#
# `ntk_air.data.clusters` draws K unit-norm cluster centres, points within ε0 of their centre
# (projected back to the unit sphere: the theory assumes ‖x‖ = 1), a label constant per cluster
# (±1), and then flips exactly a fraction ρ of each cluster's labels. It returns a `Dataset` with
# both the clean labels ŷ and the noisy labels y = ŷ + e. Rows are ordered cluster by cluster.

# %%
ds = data.clusters(noise="flip", noise_rate=NOISE_RATE, seed=SEED, **CLUSTERS)
y, y_clean = np.asarray(ds.y), np.asarray(ds.y_clean)
noise = y - y_clean
n = y.shape[0]
print(
    f"{ds.name}: n = {n} training points in d = {ds.x.shape[1]}, {ds.x_test.shape[0]} test points"
)
print(
    f"{CLUSTERS['n_clusters']} clusters, radius ε0 = {ds.info['eps0']}, half the minimum centre "
    f"distance δ = {ds.info['delta']:.3f}"
)
print(
    f"{ds.info['n_corrupted']} labels flipped ({ds.info['n_corrupted'] / n:.0%}); ‖e‖ = "
    f"{np.linalg.norm(noise):.3f}"
)

# %% [markdown]
# ## 2. Two kernels and their spectra
#
# A kernel is a *kernel function* `kernel_fn(x1, x2=None) -> Kernel(nngp, ntk)`:
#
# * **H∞**, the theorem's two-layer ReLU network with its readout frozen (only the first layer is
#   trained): H∞_ij = ρ_ij (π − arccos ρ_ij) / (2π), ρ_ij = x_i·x_j
#   (`kernels.two_layer_relu_kernel_fn`).
# * **A deep fully connected NTK** (`kernels.fc_kernel_fn(depth)`, neural-tangents' conventions:
#   `depth` hidden Dense + ReLU layers, then a readout), computed by the layer recursion.
#
# `studies.kernel_system` evaluates K(X, X) and K(X_test, X) and decomposes K(X, X) once
# (`eigen.eigensystem`, eigenvalues descending); every study below reuses that one
# decomposition: label spectra, trajectories at any step, test predictions.

# %%
kernel_fns = {
    "H∞ (two-layer ReLU)": kernels.two_layer_relu_kernel_fn(),
    f"FC NTK, depth {DEPTH}": kernels.fc_kernel_fn(depth=DEPTH, activation="relu"),
}
systems = {name: studies.kernel_system(ds, kf) for name, kf in kernel_fns.items()}

fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
for ax, (name, system) in zip(axes[:2], systems.items(), strict=True):
    im = ax.imshow(np.asarray(system.ntk), cmap="viridis")
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title(f"{name}: K(x_i, x_j)")
    ax.set_xlabel("j (ordered by cluster)")
    ax.set_ylabel("i")
for name, system in systems.items():
    lam = np.asarray(system.eig.eigenvalues)
    axes[2].semilogy(np.arange(1, n + 1), lam / lam[0], ".-", ms=3, label=name)
axes[2].axvline(CLUSTERS["n_clusters"], color="gray", ls=":", label="K = number of clusters")
axes[2].set_xlabel("mode i")
axes[2].set_ylabel("λ_i / λ_1")
axes[2].set_title("eigenvalue spectra")
axes[2].legend(fontsize=8)
axes[2].grid(True, which="both", alpha=0.3)
fig.tight_layout()
plt.show()
for name, system in systems.items():
    lam = np.asarray(system.eig.eigenvalues)
    print(
        f"{name:22s} λ_max = {lam[0]:.4g}, λ_min = {lam[-1]:.3g}, condition number "
        f"{lam[0] / lam[-1]:.3g}"
    )

# %% [markdown]
# Both spectra have a few large eigenvalues — one per cluster — and then a gap: the top
# eigenvectors are nearly constant on each cluster. That is where the clean labels live.

# %% [markdown]
# ## 3. Labels, noise and noisy labels on the eigenvectors
#
# For a label vector z, the energy in mode i is p_i(z) = (v_iᵀz)² / ‖z‖² and the cumulative
# energy of the top k modes is C_z(k) = Σ_{i≤k} p_i(z). The AIR study, `studies.air(dataset,
# kernel_fn)`, computes everything in sections 3–5 from the one decomposition and returns it as
# an `AIRStudy` pytree: the label spectra of ŷ, e and y (`spectrum.air_spectra`: energies, the
# number of modes holding 50/90/99 % of the energy, the kernel–target alignment
# ⟨H, zzᵀ⟩_F / (‖H‖_F ‖zzᵀ‖_F) and the complexity zᵀH⁻¹z of Arora et al.), the fitted fractions
# and the U-curve. It is what `ntk-air air` computes before writing its report. AIR, measured:
# C_ŷ(k) reaches ≈ 1 within a few modes, while the noise's C_e(k) grows roughly like k/n — noise
# is spread over the whole spectrum. Roughly, but not entirely: flipping labels *inside* a
# cluster changes the cluster's mean label, so part of e (here about a quarter of its energy)
# lies along the same top eigenvectors as ŷ. That part is fitted as fast as the signal, and no
# early stop can remove it — notebook 2 is about what can.

# %%
air = {name: studies.air(ds, kernel_fns[name], system=system) for name, system in systems.items()}
for name, study in air.items():
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    plot_label_energy(study.spectra, axes=axes, title=f"{name}: label energy per mode")
    fig.tight_layout()
    plt.show()

print(
    f"{'kernel':22s} {'labels':6s} {'modes for 50/90/99 %':>22s} {'alignment':>10s} {'zᵀH⁻¹z':>10s}"
)
for name, study in air.items():
    s = study.spectra
    for label, ls_ in (("ŷ", s.clean), ("e", s.noise), ("y", s.noisy)):
        holding = "/".join(str(int(m)) for m in np.asarray(ls_.modes_holding))
        print(
            f"{name:22s} {label:6s} {holding:>22s} {float(ls_.alignment):10.3f} "
            f"{float(ls_.complexity):10.4g}"
        )

# %% [markdown]
# ## 4. Fitted fractions over time
#
# Linearized gradient descent on ½‖u − y‖² from u(0) = 0, with step η = 1/λ_max (ntk_air's
# default), has the closed form u(k) = g_k(H) y with g_k(λ) = 1 − (1 − ηλ)^k. The fraction of a
# label vector z fitted after k steps is
#
# F_z(k) = ‖g_k(H) z‖² / ‖z‖² = Σ_i g_k(λ_i)² (v_iᵀz)² / ‖z‖²  (`dynamics.fitted_fractions`).
#
# Mode i is half fitted after k½ = log(1/2) / log|1 − ηλ_i| steps (`dynamics.gd_half_lives`).
# The study's steps are spaced logarithmically up to a horizon by which the noise is fitted
# (`dynamics.noise_fit_horizon`; `studies.AIRConfig(steps=…)` chooses others), so that
# the curves end fitted.

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), sharey=True)
for ax, (name, study) in zip(axes, air.items(), strict=True):
    plot_fitted_fractions(study.fitted, ax=ax, title=name)
    fit90 = study.steps_to_fit["0.9"]
    print(
        f"{name:22s} 90 % of ŷ fitted by step {fit90['clean']:8.0f}; 90 % of e only by step "
        f"{fit90['noise']:10.0f}"
    )
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 5. The U-curve on train and test points
#
# Since u(k) − ŷ = e + (I − ηH)^k (u(0) − y), the distance to the ground truth ‖u(k) − ŷ‖₂ first
# falls (the signal is fitted), reaches a minimum — the best early stop — and then climbs back to
# ‖e‖ as the noise is memorized. On test points the predictions follow from the same
# coefficients, f_k(x) = K(x, X) V φ_k(Λ) Vᵀ y with φ_k(λ) = (1 − (1 − ηλ)^k)/λ: no new solve per
# step (`dynamics.u_curve`, `dynamics.gd_predictor`; the study's `curve`).

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
for ax, (name, study) in zip(axes, air.items(), strict=True):
    plot_u_curve(study.curve, ax=ax, title=f"U-curve: {name}")
    ax.axhline(np.linalg.norm(noise), color="gray", ls=":", label="‖e‖ (memorized noise)")
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
for name, study in air.items():
    uc = study.curve
    print(
        f"{name:22s} train: start {float(uc.start_dist):.3f} → best {float(uc.best_dist):.3f} at "
        "k = "
        f"{float(uc.best_step):.0f} → end {float(uc.final_dist):.3f};  test: best "
        f"{float(uc.test_best_dist):.3f} "
        f"at k = {float(uc.test_best_step):.0f}, end {float(np.asarray(uc.test_dist)[-1]):.3f}"
    )
    assert float(uc.best_dist) < min(float(uc.start_dist), float(uc.final_dist))

# %% [markdown]
# ## 6. Distillation = early stopping
#
# Stop a teacher at step k: its training outputs u_T = g_k(H) y are the labels seen through a
# spectral filter — the "dark knowledge". Train a student from the same initialization to
# convergence on u_T: since u_T lies in the range of H, the student interpolates it, and on any
# input x, f_S(x) = K(x, X) H⁺ u_T = K(x, X) V φ_k(Λ) Vᵀ y = f_T(x). The student *is* the
# early-stopped teacher, on training and test points alike
# (`dynamics.distill_from_early_stopped_teacher`).

# %%
name = next(iter(air))
best_k = float(air[name].curve.best_step)
distilled = dynamics.distill_from_early_stopped_teacher(
    systems[name].eig, y, best_k, k_test_train=systems[name].ntk_test
)
teacher, student = distilled.teacher, distilled.student
gap_train = float(np.max(np.abs(np.asarray(teacher.train) - np.asarray(student.train))))
gap_test = float(np.max(np.abs(np.asarray(teacher.test) - np.asarray(student.test))))
print(f"{name}, teacher stopped at k = {best_k:.0f}:")
print(f"  max |student − teacher| on train points {gap_train:.2e}, on test points {gap_test:.2e}")
acc = float(np.mean(np.sign(np.asarray(student.test)) == np.asarray(ds.y_test_clean)))
print(f"  student's test accuracy against the clean labels: {acc:.1%}")
assert gap_train < 1e-8 and gap_test < 1e-8

fig, ax = plt.subplots(figsize=(5, 4.5))
ax.plot(np.asarray(teacher.test), np.asarray(student.test), ".", ms=4)
lims = [float(np.min(teacher.test)), float(np.max(teacher.test))]
ax.plot(lims, lims, "k:", lw=1)
ax.set_xlabel("early-stopped teacher f_T(x_test)")
ax.set_ylabel("converged student f_S(x_test)")
ax.set_title("distillation = early stopping (test points)")
plt.show()

# %% [markdown]
# ## 7. Explore: noise rate, depth, width and step
#
# The explorer below rebuilds the data and the kernel for a noise rate ρ, a depth and a width, and
# marks a step k on the curves. Width ∞ is the infinite-width NTK (`kernels.fc_kernel_fn`); a
# finite width m is the empirical NTK Θ = J Jᵀ of an actual randomly initialized network
# `networks.MLP` with `depth` hidden layers of width m (`empirical.structured_mlp_ntk_fn`), which
# tends to the infinite one as m grows. Any pairwise function of the inputs becomes a kernel
# function with `kernels.from_pairwise`, and then runs through `studies.air` like the built-in
# kernels. In a live Jupyter session the controls are sliders; run headless (as the test suite
# does) it draws one static figure.


# %%
@functools.lru_cache(maxsize=16)
def explorer_study(noise_rate, depth, width):
    """Data, kernel system and AIR study for one setting (cached: sliders revisit settings)."""
    d = data.clusters(noise="flip", noise_rate=noise_rate, seed=SEED, **CLUSTERS)
    if width == "∞":
        kf = kernels.fc_kernel_fn(depth=depth, activation="relu")
    else:
        mlp = networks.MLP(widths=(int(width),) * depth)
        params = mlp.init(jax.random.key(SEED), d.x)["params"]
        ntk_fn = empirical.structured_mlp_ntk_fn(mlp)
        kf = kernels.from_pairwise(lambda a, b: ntk_fn(params, a, b), name=f"MLP width {width}")
    system = studies.kernel_system(d, kf)
    return d, system, studies.air(d, kf, studies.AIRConfig(num_steps=200), system=system)


def draw_explorer(noise_rate=NOISE_RATE, depth=DEPTH, width="∞", log10_step=2.0):
    d, system, study = explorer_study(round(float(noise_rate), 3), int(depth), width)
    yc, yn = np.asarray(d.y_clean), np.asarray(d.y)
    k = float(np.round(10.0**log10_step))
    at_k = dynamics.gd_predictor(system.eig, yn, k_test_train=system.ntk_test)(k)
    train_dist = float(np.linalg.norm(np.asarray(at_k.train) - yc))
    test_acc = float(np.mean(np.sign(np.asarray(at_k.test)) == np.asarray(d.y_test_clean)))

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    s = study.spectra
    kk = np.arange(1, yc.shape[0] + 1)
    axes[0].plot(kk, np.asarray(s.clean.cumulative), label="ŷ")
    if noise_rate > 0:
        axes[0].plot(kk, np.asarray(s.noise.cumulative), label="e")
    axes[0].plot(kk, kk / kk[-1], "k:", label="k / n")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("top-k modes")
    axes[0].set_ylabel("C_z(k)")
    axes[0].set_title("cumulative energy")
    axes[0].legend()
    axes[0].grid(True, which="both", alpha=0.3)
    plot_fitted_fractions(study.fitted, ax=axes[1], title="fitted fractions")
    plot_u_curve(
        study.curve,
        ax=axes[2],
        title=f"U-curve; at k = {k:.0f}: train dist {train_dist:.2f}, test acc {test_acc:.0%}",
    )
    for ax in axes[1:]:
        ax.axvline(k, color="k", lw=1)
    fig.suptitle(f"ρ = {noise_rate:.2f}, depth {depth}, width {width}")
    fig.tight_layout()
    plt.show()


def widget_controls():
    """ipywidgets controls, or None where no live front end can render them."""
    if HEADLESS:
        return None
    try:
        import ipywidgets as widgets
    except ImportError:
        print("ipywidgets is not installed: showing a static figure (pip install ipywidgets).")
        return None
    return dict(
        noise_rate=widgets.FloatSlider(
            value=NOISE_RATE,
            min=0.0,
            max=0.45,
            step=0.05,
            description="noise ρ",
            continuous_update=False,
        ),
        depth=widgets.IntSlider(
            value=DEPTH, min=1, max=8, description="depth", continuous_update=False
        ),
        width=widgets.SelectionSlider(
            options=["64", "256", "1024", "4096", "∞"],
            value="∞",
            description="width",
            continuous_update=False,
        ),
        log10_step=widgets.FloatSlider(
            value=2.0,
            min=0.0,
            max=6.0,
            step=0.25,
            description="log10 step",
            continuous_update=False,
        ),
    )


controls = widget_controls()
if controls is None:
    draw_explorer()  # static fallback: the default setting
    draw_explorer(width="256", log10_step=1.0)  # and a finite-width network, stopped early
else:
    import ipywidgets as widgets

    widgets.interact(draw_explorer, **controls)

# %% [markdown]
# Things to try: at ρ = 0 the curve is no longer a U — there is nothing to memorize; at high ρ
# the optimum moves earlier and its distance grows; deeper ReLU kernels spread the clean labels
# over more modes; narrow networks (m = 64) give a noisier kernel whose top eigenvectors mix the
# clusters less cleanly.

# %% [markdown]
# ## 8. Real labels: handwritten digits
#
# The same study on scikit-learn's 8×8 digits (bundled, no download), as a binary task
# (even vs odd), unit-normalized, with 20 % of each digit's labels flipped. Real labels are not
# piecewise constant on tight clusters, so C_ŷ(k) rises more gradually — but still far faster
# than the noise's, and the U-curve is there.

# %%
dg = data.digits(binary=True, noise="flip", noise_rate=0.2, seed=SEED, **DIGITS)
study_d = studies.air(dg, kernels.fc_kernel_fn(depth=DEPTH, activation="relu"))
n_d = dg.y.shape[0]

fig, axes = plt.subplots(1, 3, figsize=(18, 4.2))
plot_label_energy(
    study_d.spectra, axes=axes[:2], title=f"digits (even vs odd), n = {n_d}, FC NTK depth {DEPTH}"
)
plot_u_curve(study_d.curve, ax=axes[2], title="U-curve on digits")
axes[2].axhline(
    np.linalg.norm(np.asarray(dg.y) - np.asarray(dg.y_clean)), color="gray", ls=":", label="‖e‖"
)
axes[2].legend(fontsize=8)
fig.tight_layout()
plt.show()
s_d, uc_d = study_d.spectra, study_d.curve
print(
    f"modes holding 90 % of the energy: ŷ {int(s_d.clean.modes_holding[1])}, e "
    f"{int(s_d.noise.modes_holding[1])} of {n_d}; "
    f"best early stop k = {float(uc_d.best_step):.0f}: train {float(uc_d.best_dist):.2f} vs end "
    f"{float(uc_d.final_dist):.2f}"
)

# %% [markdown]
# ## 9. From spectrum to generalization: predicted learning curves
#
# The same two ingredients — the kernel's eigenvalues and the target's coefficients per mode —
# predict the test error of kernel ridge regression with n training points (eigenlearning:
# Bordelon, Canatar & Pehlevan 2020; Canatar et al. 2021; Simon et al. 2023). The rows of the
# digits data are the population (uniform measure, N points): λ_i are the eigenvalues of K/N and
# v_i = u_iᵀŷ/√N. κ solves Σ_i λ_i/(λ_i + κ) + δ/κ = n, mode i is learnt by the fraction
# L_i = λ_i/(λ_i + κ), and the test MSE is E₀ Σ_i (1 − L_i)² v_i² with E₀ = n/(n − Σ_i L_i²).
# `studies.learning_curve_study` checks it against kernel ridge regression on seeded draws of n
# points, tested on the whole population (`ntk-air learning-curve` writes the same as a report).

# %%
from ntk_air.plots.learning_curve import plot_learnability, plot_test_error

LC_N = {"ci": (10, 30), "small": (10, 30, 100)}.get(SIZE, (10, 30, 100, 300, 1000))
LC_DRAWS = {"ci": 3, "small": 5}.get(SIZE, 20)
population = data.digits(n_test=0, seed=SEED, n_train=DIGITS["n_train"] + DIGITS["n_test"])
lc = studies.learning_curve_study(
    population,
    kernels.two_layer_relu_kernel_fn(),
    studies.LearningCurveConfig(n=LC_N, ridge=(0.0, 1e-3), draws=LC_DRAWS, modes=10),
)
fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
plot_test_error(lc, ax=axes[0], title=f"digits, N = {population.x.shape[0]}, H∞")
plot_learnability(lc, ax=axes[1])
fig.tight_layout()
plt.show()
for i, n_i in enumerate(LC_N):
    print(
        f"n = {n_i:>4}: test MSE predicted {float(lc.predicted.test_mse[i, 0]):.4f}, "
        f"measured {lc.measured.test_mse[i, 0].mean():.4f} (ridge 0, {LC_DRAWS} draws)"
    )

# %% [markdown]
# ## Where next
#
# * `ntk-air air` runs `studies.air` from the command line and writes the numbers (`air.json`),
#   these figures and a summary through `ntk_air.report` (notebook 4 does it on your own data).
# * Early stopping cannot remove the part of the noise that lies in the top eigenspace — flips
#   inside a cluster always put some there. Notebook 2 shows how self-distillation with hard
#   targets goes beyond early stopping, and checks the ℓ2 theorem on real networks.
# * Notebook 5 plugs in your own target rule, recorded observable and kernel.
# * `ntk-air learning-curve` writes section 9's prediction and measurement, with the cases the
#   theory misses and where it is known to fail.
