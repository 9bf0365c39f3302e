"""Write neural-tangents 0.6.5 eNTKs of generic models to tests/fixtures/nt/empirical_generic.npz.

Run with the pinned side environment's python (built by build_env.sh):

    .nt-env/bin/python tools/nt_reference/make_entk_fixtures.py [--out-dir tests/fixtures/nt]

Models are the pure-JAX functions of entk_models.py (shared with benchmarks/entk.py and the
tests), float64, at small sizes:

* cnn: two 3×3 SAME convolutions of 3 channels + ReLU, Dense(1); inputs 6×6×1.
* attention: residual 2-head self-attention (8 features) + Dense(1); inputs 4 tokens × 8.
* batchnorm_mlp: Dense(6) → batch normalization with the batch's statistics → ReLU → Dense(1);
  its examples are coupled, so NT is run WITHOUT vmap_axes (whole-batch Jacobians).

For each: NT's `empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0 or None,
implementation=1 and 3)` on (x1, None) and (x1, x2). See tests/fixtures/nt/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nt_import import import_neural_tangents  # noqa: E402

nt = import_neural_tangents(enable_x64=True)

import entk_models  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

CONFIGS = {
    # name: (model, example shape, init kwargs, vmap_axes)
    "cnn": ("cnn", (6, 6, 1), {"channels": 3}, 0),
    "attention": ("attention", (4, 8), {"heads": 2}, 0),
    "batchnorm_mlp": ("batchnorm_mlp", (5,), {"width": 6}, None),
}
N1, N2 = 5, 3


def rel_fro(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def main(argv=None):
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out-dir", default=os.path.join(repo, "tests", "fixtures", "nt"))
    args = p.parse_args(argv)
    out = dict(
        meta_neural_tangents=np.asarray(nt.__version__),
        meta_jax=np.asarray(jax.__version__),
        meta_numpy=np.asarray(np.__version__),
    )
    rng = np.random.default_rng(20240917)
    for i, (name, (model, shape, kwargs, vmap_axes)) in enumerate(CONFIGS.items()):
        params = entk_models.init_params(model, shape, seed=i, **kwargs)
        x1 = rng.normal(size=(N1, *shape))
        x2 = rng.normal(size=(N2, *shape))
        apply_fn = entk_models.APPLY[model]
        p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
        out.update(entk_models.flatten(params, prefix=f"{name}/p"))
        out[f"{name}/x1"], out[f"{name}/x2"] = x1, x2
        values = {}
        for impl in (1, 3):
            fn = jax.jit(
                nt.empirical_ntk_fn(
                    apply_fn, trace_axes=(-1,), vmap_axes=vmap_axes, implementation=impl
                )
            )
            values[impl] = (np.asarray(fn(x1, None, p64)), np.asarray(fn(x1, x2, p64)))
            out[f"{name}/ntk_11_impl{impl}"], out[f"{name}/ntk_12_impl{impl}"] = values[impl]
        check = max(rel_fro(values[3][j], values[1][j]) for j in (0, 1))
        assert check < 1e-12, (name, check)
        print(f"{name}: impl 3 vs impl 1 rel_fro {check:.2e}; shapes {values[1][0].shape}")
    assert all(v.dtype != np.float32 for v in out.values())
    path = os.path.join(args.out_dir, "empirical_generic.npz")
    np.savez_compressed(path, **out)
    print(f"wrote {path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
