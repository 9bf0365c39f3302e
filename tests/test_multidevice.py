"""Sharded operators: 8 forced host devices and two jax.distributed processes give the
single-device results (each run in a subprocess, so XLA_FLAGS is set before JAX starts)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# Computes every sharded product, the top-k spectrum and a ridge solve on a given mesh; saves
# them as .npy files under OUT/<tag>_<name>.npy.
COMPUTE = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    from ntk_air import kernels
    from ntk_air.spectral import _matfree as matfree, _operators as operators, _topk as topk
    from ntk_air.distillation import self_distill
    from ntk_air.spectral import linear_problem
    from ntk_air.distillation import r3

    def compute(mesh, out, tag):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((203, 6))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        xt = x[:37] * 0.5 + x[37:74] * 0.5
        xt /= np.linalg.norm(xt, axis=1, keepdims=True)
        v = rng.standard_normal((203, 5))
        fn = kernels.two_layer_relu_kernel_fn()
        res = {}
        res["symmetric"] = operators.kernel_operator(fn, x, tile_size=19, mesh=mesh)(v)
        res["rows"] = operators.kernel_operator(
            fn, x, tile_size=19, symmetric=False, mesh=mesh)(v)
        res["rect"] = operators.kernel_operator(fn, xt, x, tile_size=11, mesh=mesh)(v)
        params = {"w": rng.standard_normal((6, 9)), "a": rng.standard_normal(9)}
        apply = lambda p, z: jnp.tanh(z @ p["w"]) @ p["a"]
        res["empirical"] = operators.empirical_kernel_operator(
            apply, params, x, tile_size=13, mesh=mesh)(v)
        K = np.asarray(fn(x).ntk)
        res["matrix"] = operators.matrix_operator(K, mesh=mesh)(v)
        op = operators.kernel_operator(fn, x, tile_size=19, mesh=mesh)
        top = topk.topk_eigensystem(op, 12, block_size=16)
        res["eigenvalues"] = top.eigenvalues
        res["projector"] = top.eigenvectors @ top.eigenvectors.T
        # The matrix-free self-distillation: the Krylov space of (y, ŷ) on the deflated
        # operator (every block re-orthogonalized), its Rayleigh–Ritz reduction, soft R3 on it;
        # with the row schedule (bitwise-equal products) and the symmetric one.
        y = np.sign(x[:, 0]) + (x[:, 0] == 0)
        y_clean = np.sign(x[:, 1]) + (x[:, 1] == 0)
        rows = operators.kernel_operator(fn, x, tile_size=19, symmetric=False, mesh=mesh)
        for name, o in (("", rows), ("sym_", op)):
            top_o = topk.topk_eigensystem(o, 12, block_size=16)
            krylov = matfree.deflated_krylov(o, top_o, np.stack([-y, y_clean], 1), 10)
            red = matfree.ritz_reduction(top_o, krylov)
            res[name + "ritz_values"] = red.eigenvalues
            res[name + "ritz_projector"] = red.eigenvectors @ red.eigenvectors.T
            problem = linear_problem(red, y, y_clean)
            eta = 1 / float(top_o.eigenvalues[0])
            res[name + "r3_soft_u"] = self_distill(
                problem, [r3(0.9, hard=False)], steps=300, eta=eta
            ).u_final
        for name, a in res.items():
            np.save(f"{out}/{tag}_{name}.npy", np.asarray(a))
    """
)

NAMES = (
    "symmetric",
    "rows",
    "rect",
    "empirical",
    "matrix",
    "eigenvalues",
    "projector",
    "ritz_values",
    "ritz_projector",
    "r3_soft_u",
    "sym_ritz_values",
    "sym_ritz_projector",
    "sym_r3_soft_u",
)
# The symmetric tile-pair schedule sums each product in another order on 8 devices (≈ 4e-16
# relative); the deflated Krylov space re-orthogonalizes every block, so the reduction and soft
# R3 on it stay equal to 1e-12 (4e-15 measured with the former default reduction).
TOLERANCES: dict = {}


def _run(script, env_extra, cwd):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one device unless asked
    env.update(PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", **env_extra)
    return subprocess.Popen(
        [sys.executable, "-c", script],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc, timeout=600):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return out


def _compare(tmp, tag_a, tag_b, tol=1e-12):
    for name in NAMES:
        limit = max(tol, TOLERANCES.get(name, tol))
        a = np.load(tmp / f"{tag_a}_{name}.npy")
        b = np.load(tmp / f"{tag_b}_{name}.npy")
        scale = max(np.max(np.abs(a)), 1e-300)
        assert np.max(np.abs(a - b)) / scale < limit, (name, np.max(np.abs(a - b)) / scale)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_eight_host_devices_and_two_processes_equal_one(tmp_path):
    """8 forced host devices in one process, and two jax.distributed processes of one device
    each, give the single-device results: one reference ("one", a mesh of one device) serves
    both comparisons, so the three processes run side by side."""
    eight = COMPUTE + textwrap.dedent(
        f"""
        assert jax.device_count() == 8, jax.devices()
        compute(operators.device_mesh(), {str(tmp_path)!r}, "eight")
        compute(operators.device_mesh(jax.devices()[:1]), {str(tmp_path)!r}, "one")
        """
    )
    port = _free_port()
    worker = COMPUTE + textwrap.dedent(
        """
        import os
        pid = int(os.environ["NTK_AIR_PID"])
        jax.distributed.initialize(f"localhost:{PORT}", num_processes=2, process_id=pid)
        assert jax.process_count() == 2 and jax.device_count() == 2
        compute(operators.device_mesh(), OUT, f"proc{pid}")
        jax.distributed.shutdown()
        """
    ).replace("PORT", str(port)).replace("OUT", repr(str(tmp_path)))
    flags = {"XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    procs = [_run(eight, flags, tmp_path)]
    procs += [_run(worker, {"NTK_AIR_PID": str(i)}, tmp_path) for i in (0, 1)]
    for p in procs:
        _finish(p)
    _compare(tmp_path, "eight", "one")
    _compare(tmp_path, "proc0", "one")
    _compare(tmp_path, "proc1", "one")
    _compare(tmp_path, "proc0", "proc1", tol=1e-300)  # every process got the same answer
