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
# # Extending ntk_air: your own target rule, observable and kernel
#
# ntk_air's three central abstractions are open: a researcher adds to them in a few lines of
# their own code, without editing the library.
#
# 1. **A target rule** is a pair of pure functions, `targets.TargetRule(init, update)`
#    (optax-style): `init(u0, y) -> state` and `update(u, y, state, k) -> (ỹ(k), state)`. The
#    same rule runs in the kernel limit (`distill.self_distill`) and on a real network
#    (`training.train`), unchanged.
# 2. **A recorded observable** is a function of a `record.Snapshot` (step, predictions u,
#    target ỹ, test predictions, network parameters), given to `record.Record(fn=...)`: it is
#    evaluated inside the compiled loop at every recorded step.
# 3. **A kernel** is a function `kernel_fn(x1, x2=None) -> Kernel(nngp, ntk)`:
#    `kernels.from_pairwise(block_fn)` makes one from any pairwise function (with validation,
#    tiling and full-precision matmuls), `kernels.from_layers(layers.serial(...))` from
#    infinite-width layers. Every study (`studies.air`, `studies.distill`, …) takes it.
#
# The data are the clusterable model of the ℓ2 theorem with 25 % of the labels flipped
# (notebooks 1 and 2).

# %% [markdown]
# **Why float64.** The first code cell turns on JAX's 64-bit mode before any array exists: the
# kernel limit compares distances down to 10⁻⁶ after thousands of steps, which float32
# (eps ≈ 1.2·10⁻⁷) would blur. ntk_air computes in the dtype of its inputs (float64 here, also
# for the real network below).
#
# **Size.** The notebook runs in well under a minute on two CPU cores;
# `NTK_AIR_NOTEBOOK_SIZE=large` trains longer.

# %%
import os

import jax

jax.config.update("jax_enable_x64", True)  # first, before any JAX array exists

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from ntk_air import (
    data,
    kernels,
    studies,
)
from ntk_air import (
    distillation as distill,
)
from ntk_air import (
    distillation as targets,
)
from ntk_air import (
    dynamics as early_stopping,
)
from ntk_air import (
    kernels as layers,
)
from ntk_air import (
    networks as models,
)
from ntk_air import (
    networks as training,
)
from ntk_air.dynamics import Record
from ntk_air.plots.air import plot_u_curve
from ntk_air.plots.distill import plot_distill_curves
from ntk_air.spectral import linear_problem

SIZE = os.environ.get("NTK_AIR_NOTEBOOK_SIZE", "small")  # "small" (< 1 min on a CPU) or "large"
if SIZE not in ("small", "large", "ci"):  # "ci": the least work that runs every cell (tests)
    raise ValueError(f"NTK_AIR_NOTEBOOK_SIZE must be 'small', 'large' or 'ci', got {SIZE!r}")
STEPS = {"ci": 500, "small": 2_000}.get(SIZE, 10_000)  # kernel limit
NET_STEPS = {"ci": 100, "small": 500}.get(SIZE, 4_000)  # real network
WIDTH = {"ci": 128, "small": 512}.get(SIZE, 4096)
SEED = 0

ds = data.clusters(noise="flip", noise_rate=0.25, seed=SEED)
system = studies.kernel_system(ds, kernels.two_layer_relu_kernel_fn())  # H∞ and its eigensystem
problem = linear_problem(
    system.eig,
    ds.y,
    ds.y_clean,
    k_test_train=system.ntk_test,
    y_test_clean=ds.y_test_clean,
    kernel=system.ntk,
)
eta = 1.0 / float(system.eig.eigenvalues[0])
noise_norm = float(np.linalg.norm(ds.y - ds.y_clean))
print(f"n = {len(ds.y)}, ‖e‖ = {noise_norm:.3f}, η = 1/λ_max = {eta:.4f}")

# %% [markdown]
# ## 1. A target rule of your own
#
# R3 with hard targets, ỹ(k) = α ỹ(k−1) + (1 − α) sign(u(k)), reaches the clean labels
# (notebook 2); soft R3 (p = u) only filters. Between the two: a *tempered* moving target
# ỹ(k) = α ỹ(k−1) + (1 − α) tanh(β u(k)), ỹ(0) = y, which tends to hard R3 as β → ∞. The rule's
# state is the previous target. This is the whole rule:


# %%
def tempered_r3(alpha, beta):
    """ỹ(k) = α ỹ(k−1) + (1 − α) tanh(β u(k)), ỹ(0) = y."""

    def init(u0, y):
        return y  # the state: the previous target ỹ(k − 1)

    def update(u, y, previous, k):
        target = jnp.where(k == 0, previous, alpha * previous + (1 - alpha) * jnp.tanh(beta * u))
        return target, target

    return targets.TargetRule(init, update)


# %% [markdown]
# In the kernel limit, next to the library's rules. `self_distill` runs the affine rules on their
# fastest engines and a `TargetRule` of your own on the dense scan, one call for all of them:

# %%
rules = {
    "plain GD": targets.plain_gd(),
    "R3 soft α=0.9": targets.r3(0.9, hard=False),
    "R3 hard α=0.9": targets.r3(0.9, hard=True),
    "tempered R3 α=0.9, β=5": tempered_r3(0.9, 5.0),
}
run = distill.self_distill(
    problem, list(rules.values()), steps=STEPS, eta=eta, record=Record(every=10)
)
best_early_stop = float(early_stopping.u_curve(problem, steps=np.arange(STEPS + 1)).best_dist)

fig, ax = plt.subplots(figsize=(8, 4.5))
curves = [(label, run.steps, run.dist_train[i]) for i, label in enumerate(rules)]
plot_distill_curves(curves, noise_norm, best_early_stop, ax=ax, title="kernel limit (H∞)")
ax.set_yscale("log")
plt.show()
for i, label in enumerate(rules):
    print(
        f"{label:24s} final ‖u − ŷ‖ = {float(run.dist_train[i, -1]):.3g}, "
        f"test accuracy {float(run.accuracy_test[i]):.1%}"
    )

# %% [markdown]
# ## 2. A recorded observable of your own
#
# What does a rule do to the *targets*? Record, at every 10th step, how many training points
# have a target on the wrong side of the clean label, and how far the target is from ŷ. The
# function sees a `Snapshot` whose arrays are (n, C), C = 1 for ±1 labels:

# %%
y_clean_column = jnp.asarray(ds.y_clean)[:, None]


def target_quality(s):
    """Number of targets with the wrong sign, and ‖ỹ(k) − ŷ‖₂."""
    wrong = jnp.sum(jnp.sign(s.target) != y_clean_column)
    return {"wrong": wrong, "dist": jnp.linalg.norm(s.target - y_clean_column)}


record = Record(every=10, fn=target_quality)
run = distill.self_distill(problem, list(rules.values()), steps=STEPS, eta=eta, record=record)

fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
for i, label in enumerate(rules):
    axes[0].plot(np.asarray(run.steps) + 1, run.observed["wrong"][i], label=label)
    axes[1].plot(np.asarray(run.steps) + 1, run.observed["dist"][i], label=label)
axes[0].set_ylabel("targets with the wrong sign")
axes[1].set_ylabel("‖ỹ(k) − ŷ‖₂")
for ax in axes:
    ax.set_xscale("log")
    ax.set_xlabel("step k + 1")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The plain GD target is y itself: its 40 flipped labels stay wrong. The moving targets correct
# the flipped labels as the predictions cross zero; the hard and tempered ones then move all the
# way to ŷ, while the soft one stops at a spectral filter of y. (At β = 5 the tempered rule's
# curves lie on top of hard R3's; try β = 1.)
#
# ## 3. The same rule and observable on a real network
#
# `training.train` trains the theorem's two-layer network (first layer trained, readout
# frozen; `models.two_layer_network`) by full-batch gradient descent on ½‖f(θ, X) − ỹ(k)‖², with
# the targets from the very same rule objects, and evaluates the same `Record` (its `Snapshot`
# also carries the parameters θ(k)):

# %%
apply_fn, params = models.two_layer_network(WIDTH, ds.x, seed=SEED)
net = training.train(
    apply_fn,
    params,
    ds.x,
    ds.y,
    ds.y_clean,
    [rules["R3 hard α=0.9"], rules["tempered R3 α=0.9, β=5"]],
    steps=NET_STEPS,
    eta=eta,
    record=record,
    x_test=ds.x_test,
    y_test_clean=ds.y_test_clean,
)
for i, label in enumerate(["R3 hard α=0.9", "tempered R3 α=0.9, β=5"]):
    print(
        f"width {WIDTH}, {label:24s} final ‖u − ŷ‖ = {float(net.dist_train[i, -1]):.3g}, "
        f"wrong targets at the end {int(net.observed['wrong'][i, -1])}, "
        f"test accuracy {float(net.accuracy_test[i]):.1%}"
    )

# %% [markdown]
# ## 4. A kernel of your own
#
# Two ways. From any pairwise function of two blocks of rows — here the Laplace kernel
# exp(−‖a − b‖ / ℓ), which is not an NTK at all — with `kernels.from_pairwise`; and from
# infinite-width layers — here a two-layer erf network with biases — with `kernels.from_layers`.
# Either is a kernel function that every study takes:


# %%
def laplace(a, b, scale=1.0):
    """exp(−‖a − b‖₂ / scale) for a (t1, d) and b (t2, d) block of rows."""
    sq = jnp.sum(a**2, axis=1)[:, None] + jnp.sum(b**2, axis=1)[None, :] - 2 * a @ b.T
    return jnp.exp(-jnp.sqrt(jnp.maximum(sq, 0.0)) / scale)


my_kernels = {
    "H∞ (built in)": kernels.two_layer_relu_kernel_fn(),
    "Laplace (from_pairwise)": kernels.from_pairwise(laplace, name="laplace"),
    "erf network (from_layers)": kernels.from_layers(
        layers.serial(layers.dense(1.0, 0.1), layers.erf(), layers.dense(1.0, 0.1))
    ),
}
fig, axes = plt.subplots(1, len(my_kernels), figsize=(18, 4.2))
for ax, (name, kernel_fn) in zip(axes, my_kernels.items(), strict=True):
    study = studies.air(ds, kernel_fn)
    plot_u_curve(study.curve, ax=ax, title=name)
    mh = study.spectra
    print(
        f"{name:26s} modes holding 90 % of ŷ: {int(mh.clean.modes_holding[1]):3d}, of e: "
        f"{int(mh.noise.modes_holding[1]):3d};  best early stop ‖u − ŷ‖ = "
        f"{float(study.curve.best_dist):.3f}"
    )
fig.tight_layout()
plt.show()

# %% [markdown]
# And the whole self-distillation study on the kernel of your own, with the rule of your own
# added to the library's (`DistillConfig(extra_rules=...)`):

# %%
config = studies.DistillConfig(
    rules=("r3",), steps=STEPS, extra_rules=(("tempered R3", tempered_r3(0.9, 5.0)),)
)
distilled = studies.distill(ds, my_kernels["Laplace (from_pairwise)"], config)
for r in distilled.runs:
    print(f"{r.label:16s} engine {r.engine:12s} final ‖u − ŷ‖ = {r.final_dist:.3g}")
print(f"best early stop of plain GD: {float(distilled.plain_gd.best_dist):.3f}")
