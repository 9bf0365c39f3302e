"""neural-tangents' own tests, and its `predict` on traced kernels, through ntk_air's layer.

`make nt-upstream` (tools/nt_upstream/run.py) runs NT 0.6.5's whole suite from its source
distribution, downloaded at run time and cached in `.nt-upstream/` (git-ignored, or
$NT_UPSTREAM_CACHE); NT's code and tests are never part of this repository. Here a few of its
tests run (run.py's FAST_TESTS): the two the layer fixed must pass, the gated one must fail for the
documented reason, and nothing may fail unexplained.

Skipped, with the reason, when neural-tangents is not installed or its source distribution can be
neither found in the cache nor downloaded (offline): the suite passes from a clean clone offline.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import rel_fro

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "tools" / "nt_upstream" / "run.py"

pytestmark = [
    pytest.mark.nt,
    pytest.mark.skipif(
        importlib.util.find_spec("neural_tangents") is None,
        reason="neural-tangents not installed (optional backend: pip install frozendict && "
        "pip install --no-deps neural-tangents==0.6.5)",
    ),
]


def _run_module():
    spec = importlib.util.spec_from_file_location("nt_upstream_run", RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # one fresh process, ~45 s of CPU on 2 cores
def test_fast_subset_of_neural_tangents_own_tests(tmp_path, capsys):
    """NT's own tests through the layer: testMaxLearningRate0 (SciPy's removed
    `eigvalsh(eigvals=)`) and testNTKMeanCovPrediction0 (`predict.gradient_descent_mse` built on
    a kernel traced by `vmap`: the eval_context adaptation) pass; the masking test on the gated
    structured-derivatives path fails with exactly that category; nothing fails unexplained."""
    run = _run_module()
    out = tmp_path / "results.json"
    # run.py's main in this process (its pytest on NT's tests still runs in a fresh one).
    code = run.main(["--fast", "--out", str(out), "--timeout", "600"])
    err = capsys.readouterr().err
    if code == 2:
        pytest.skip(f"neural-tangents' source distribution is unavailable: {err.strip()}")
    assert out.exists(), err[-3000:]
    summary = json.loads(out.read_text())
    unexplained = [f for f in summary["failures"] if f["category"] == "unexplained"]
    assert code == 0 and not unexplained, json.dumps(unexplained, indent=1)[:3000]
    assert summary["total"] == len(run.FAST_TESTS), summary["counts"]
    failed = {f["id"]: f["category"] for f in summary["failures"]}
    assert failed == run.FAST_EXPECTED_FAILURES, failed
    must_pass = set(run.FAST_TESTS) - set(run.FAST_EXPECTED_FAILURES)
    assert set(summary["passed"]) == must_pass, sorted(must_pass - set(summary["passed"]))


def test_nt_predict_on_traced_kernels_equals_the_closed_form(x64):
    """NT's `predict.gradient_descent_mse` built inside `jit` and `vmap` (its eigendecomposition
    runs under `jax.core.eval_context` on a traced kernel, which the layer's adaptation must let
    through) equals f(t) = y + exp(−t K / N)(f(0) − y), N = y.size (NT's normalization)."""
    import jax

    from ntk_air.nt_backend import import_neural_tangents

    nt = import_neural_tangents()
    rng = np.random.RandomState(0)
    n = 6
    a = rng.standard_normal((n, n))
    k = a @ a.T / n + 0.5 * np.eye(n)
    y = rng.standard_normal((n, 1))
    f0 = rng.standard_normal((n, 1))
    ts = np.array([0.0, 0.5, 3.0, 40.0])

    def closed_form(kernel):
        lam, v = np.linalg.eigh(kernel)
        decay = np.exp(-np.outer(ts, lam) / y.size)  # (len(ts), n)
        return y + np.einsum("ij,tj,jk->tik", v, decay, v.T @ (f0 - y))

    def predict(kernel, fx0):
        return nt.predict.gradient_descent_mse(kernel, y)(ts, fx0)

    got_jit = jax.jit(predict)(k, f0)
    got_vmap = jax.vmap(predict)(np.stack([k, 3.0 * k]), np.stack([f0, f0]))
    assert got_jit.shape == (len(ts), n, 1)
    assert rel_fro(got_jit, closed_form(k)) <= 1e-12
    assert rel_fro(got_vmap[0], closed_form(k)) <= 1e-12
    assert rel_fro(got_vmap[1], closed_form(3.0 * k)) <= 1e-12
