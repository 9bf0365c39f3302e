"""Run neural-tangents 0.6.5's own tests against ntk_air's compatibility layer (make nt-upstream).

NT's tests ship in its source distribution on the package index, never in this repository: this
script downloads it at run time (`pip download --no-deps --no-binary :all:
neural-tangents==0.6.5`), checks its SHA-256, caches it under `.nt-upstream/` (git-ignored;
$NT_UPSTREAM_CACHE names another folder), extracts only `tests/` and `examples/` (so
`import neural_tangents` is the installed package), and runs pytest on them with
`nt_upstream_plugin`, which imports NT through `ntk_air.nt_backend.compat.import_neural_tangents()`
before any test module loads.

Every failure gets a category: a documented, expected limitation from `EXPECTED` (matched on the
error and on the line of NT that raised it), 'random numbers' (it fails with JAX's default
random-number stream and passes when rerun with `jax_threefry_partitionable=False`, the stream
NT 0.6.5's tests drew their data with), or 'unexplained'. The summary (counts per outcome and
category, each failing test id with its category, error and raising line; with `--compare`, the
tests fixed since an earlier summary) goes to tools/nt_upstream/results.json.

  python tools/nt_upstream/run.py                      # the suite NT ships (float32, 4 cases)
  python tools/nt_upstream/run.py --fast               # FAST_TESTS only (the test suite's)
  python tools/nt_upstream/run.py --rng legacy         # everything on NT's old random stream
  python tools/nt_upstream/run.py --compare OLD.json   # also list what passes now, failed then

NT's tests sample 4 cases per parameterized test (NT_NUM_GENERATED_CASES, their default) and run
in float32. Tests needing TensorFlow (NEEDS_TENSORFLOW) are not collected.
Exit status: 0 when every failure is explained, 1 otherwise, 2 when the source is unavailable.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NT_VERSION = "0.6.5"
SDIST = f"neural-tangents-{NT_VERSION}.tar.gz"
# The sdist the package index serves for neural-tangents 0.6.5 (checked when downloaded).
SDIST_SHA256 = "5565190e5b20c8578b2c8fbf1498ad9d8f6881c8c702e7af55189707a10843c3"
DEFAULT_CACHE = Path(os.environ.get("NT_UPSTREAM_CACHE") or ROOT / ".nt-upstream")
DEFAULT_OUT = HERE / "results.json"
# NT's tests that need what ntk_air leaves out: TensorFlow (the experimental TF-model NTK, and the
# examples that load data with tensorflow_datasets). They are not collected.
NEEDS_TENSORFLOW = (
    "tests/experimental",
    "tests/function_space_test.py",
    "tests/imdb_test.py",
    "tests/infinite_fcn_test.py",
    "tests/weight_space_test.py",
)
# A fast subset for the normal suite (tests/test_nt_upstream.py; ~30 s on 2 idle cores): the
# layer's two fixes in NT's predict tests (SciPy's eigvalsh in testMaxLearningRate;
# gradient_descent_mse built on a kernel traced by vmap, i.e. eval_context, in
# testNTKMeanCovPrediction), a few cheap stax tests, and one expected failure (a masking test on
# the gated structured-derivatives path) so that the categorization itself is exercised.
FAST_TESTS = (
    "tests/predict_test.py::PredictTest::testMaxLearningRate0",
    "tests/predict_test.py::PredictTest::testNTKMeanCovPrediction0",
    "tests/stax/requirements_test.py::DiagonalTest::test_diagonal_spatial0",
    "tests/stax/requirements_test.py::DiagonalTest::test_diagonal_spatial1",
    "tests/stax/requirements_test.py::DiagonalClassTest::test_diagonal_compose_is_associative",
    "tests/stax/elementwise_test.py::ABReluTest::test_ab_relu_relu0",
    "tests/stax/elementwise_test.py::ABReluTest::test_leaky_relu0",
    "tests/stax/elementwise_test.py::ABReluTest::test_abs0",
    "tests/stax/requirements_test.py::MaskingTest::test_mask_fc1",
)
FAST_EXPECTED_FAILURES = {
    "tests/stax/requirements_test.py::MaskingTest::test_mask_fc1": "gated: structured derivatives"
}


class Expected:
    """A documented, expected failure: its error and the line of NT that raised it (regexes)."""

    def __init__(self, category: str, raised_at: str, error: str, reason: str):
        self.category, self.reason = category, reason
        self.raised_at, self.error = re.compile(raised_at), re.compile(error)

    def matches(self, test: dict) -> bool:
        return bool(
            self.raised_at.search(test.get("raised_at", "")) and self.error.search(test["error"])
        )


EXPECTED = (
    Expected(
        "gated: structured derivatives",
        r"neural_tangents/_src/empirical\.py:\d+: .*ad\.linearize\(",
        r"linearize\(\) got multiple values for argument 'has_aux'",
        "NT's STRUCTURED_DERIVATIVES implementation (also the one NT's batching, masking and "
        "parallel tests use by default) calls JAX's private `ad.linearize(fn, *primals)`, whose "
        "calling convention changed; public APIs cannot rebuild it. ntk_air gates it "
        "(compat.GATES['structured-derivatives']) and offers 'jacobian', 'ntvp' and its own "
        "structured path",
    ),
    Expected(
        "gated: AUTO",
        r"neural_tangents/_src/empirical\.py:\d+: .*cost_analysis\(\)\[0\]",
        r"KeyError: 0",
        "NT's AUTO implementation reads `Compiled.cost_analysis()[0]`, now a dict, and also "
        "compiles the structured-derivatives path (compat.GATES['auto'])",
    ),
)
RNG_CATEGORY = "random numbers: NT's test data drawn with JAX's partitionable threefry"
RNG_REASON = (
    "jax ≥ 0.5 makes `jax_threefry_partitionable=True` the default, so `jax.random` draws other "
    "numbers from the same keys; these tests fail with the new data (their tolerances were tuned "
    "on the old draws) and pass when rerun with `jax_threefry_partitionable=False`"
)


def sdist_path(cache: Path) -> Path:
    """The cached sdist, downloaded (and its hash checked) if absent; raises RuntimeError."""
    path = cache / SDIST
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
            cmd += [f"neural-tangents=={NT_VERSION}", "-d", tmp, "--quiet"]
            cmd += ["--timeout", "20", "--retries", "1"]  # offline: fail fast
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            got = Path(tmp) / SDIST
            if r.returncode != 0 or not got.exists():
                raise RuntimeError(
                    f"cannot download the neural-tangents {NT_VERSION} source distribution "
                    f"({' '.join(cmd)}): {(r.stderr or r.stdout).strip()[-500:]}"
                )
            got.replace(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise RuntimeError(f"{path} has SHA-256 {digest}, expected {SDIST_SHA256}; delete it")
    return path


def extract_tests(sdist: Path, cache: Path) -> Path:
    """Extract tests/ and examples/ (not the package itself) into cache/src; return that root."""
    root = cache / "src"
    prefix = f"neural-tangents-{NT_VERSION}/"
    if not (root / "tests" / "test_utils.py").exists():
        with tarfile.open(sdist) as tar:
            members = [
                m
                for m in tar.getmembers()
                if m.name.startswith((prefix + "tests/", prefix + "examples/"))
                and (m.isfile() or m.isdir())
            ]
            for m in members:
                m.name = m.name[len(prefix) :]
            tar.extractall(root, members=members, filter="data")
    return root


def categorize(test: dict) -> str:
    for e in EXPECTED:
        if e.matches(test):
            return e.category
    return "unexplained"


def run_pytest(
    src: Path,
    modules,
    rng: str,
    extra: list[str],
    timeout: float,
    ntk_air: Path = ROOT,
    by_id: bool = False,
) -> dict:
    """pytest on `modules` (paths under src, or test ids with by_id) in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(src), str(ntk_air)])
        env["NT_UPSTREAM_REPORT"] = str(report)
        env["NT_UPSTREAM_RNG"] = rng
        env.setdefault("NT_NUM_GENERATED_CASES", "4")
        env.setdefault("JAX_PLATFORMS", "cpu")
        if by_id:
            targets = list(modules)
        else:
            targets = [str(src / m) for m in modules] if modules else [str(src / "tests")]
        ignores = [f"--ignore={src / p}" for p in NEEDS_TENSORFLOW]
        cmd = [sys.executable, "-m", "pytest", "-p", "nt_upstream_plugin", "-p", "no:cacheprovider"]
        cmd += [
            "-q",
            "-rN",
            "--rootdir",
            str(src),
            "-o",
            "addopts=",
            "-o",
            "python_files=*_test.py",
        ]
        cmd += ["-W", "ignore::DeprecationWarning", *ignores, *extra, *targets]
        r = subprocess.run(cmd, cwd=src, env=env, capture_output=True, text=True, timeout=timeout)
        if not report.exists():
            raise RuntimeError(f"pytest wrote no report (exit {r.returncode}): {r.stderr[-2000:]}")
        out = json.loads(report.read_text())
        out["pytest_exit"] = r.returncode
        out["pytest_tail"] = r.stdout.strip().splitlines()[-1:] if r.stdout.strip() else []
        return out


FAILED = ("failed", "error", "collection-error")


def summarize(
    raw: dict, rng_passes: set[str], compare: dict | None, compare_label: str | None = None
) -> dict:
    tests = sorted(raw["tests"], key=lambda t: t["id"])
    counts: dict[str, int] = {}
    categories: dict[str, int] = {}
    failures = []
    for t in tests:
        counts[t["outcome"]] = counts.get(t["outcome"], 0) + 1
        if t["outcome"] in FAILED:
            cat = categorize(t)
            if cat == "unexplained" and t["id"] in rng_passes:
                cat = RNG_CATEGORY
            categories[cat] = categories.get(cat, 0) + 1
            failures.append(
                {
                    "id": t["id"],
                    "category": cat,
                    "error": t.get("error", ""),
                    "raised_at": t.get("raised_at", ""),
                }
            )
    reasons = {e.category: e.reason for e in EXPECTED} | {RNG_CATEGORY: RNG_REASON}
    out = {
        "total": len(tests),
        "counts": counts,
        "failure_categories": categories,
        "category_reasons": {c: reasons.get(c, "not explained") for c in categories},
        "failures": failures,
        "passed": [t["id"] for t in tests if t["outcome"] == "passed"],
        "skipped": [
            {"id": t["id"], "reason": t.get("error", "")}
            for t in tests
            if t["outcome"] == "skipped"
        ],
    }
    if compare is not None:
        before = {f["id"]: f for f in compare["failures"]}
        now = {t["id"]: t["outcome"] for t in tests}
        out["compared_with"] = {"label": compare_label, **compare["meta"]}
        out["fixed_since"] = [
            {"id": i, "was": f["category"], "error_then": f["error"]}
            for i, f in sorted(before.items())
            if now.get(i) == "passed"
        ]
        out["new_failures_since"] = [f["id"] for f in failures if f["id"] not in before]
    return out


def meta(args, raw: dict) -> dict:
    import jax
    import jaxlib
    import numpy
    import scipy

    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "neural_tangents": NT_VERSION,
        "sdist_sha256": SDIST_SHA256,
        "versions": {
            "python": platform.python_version(),
            "jax": jax.__version__,
            "jaxlib": jaxlib.__version__,
            "numpy": numpy.__version__,
            "scipy": scipy.__version__,
        },
        "rng": args.rng,
        "rerun_on_legacy_rng": raw.get("meta", {}).get("rerun_on_legacy_rng"),
        "test_harness_names": raw.get("meta", {}).get("test_harness_names"),
        "generated_cases": os.environ.get("NT_NUM_GENERATED_CASES", "4"),
        "dtype": "float32 (NT's tests' default)",
        "modules": args.modules or ["tests (all but those needing TensorFlow)"],
        "not_collected_need_tensorflow": list(NEEDS_TENSORFLOW),
        "nt_imported_from": raw.get("meta", {}).get("nt_file"),
        "adaptations_applied": raw.get("meta", {}).get("applied"),
        "ntk_air": str(Path(args.ntk_air).resolve()),
        "pytest_exit": raw.get("pytest_exit"),
        "pytest_tail": raw.get("pytest_tail"),
    }


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--modules", nargs="*", default=None, help="paths or test ids under the sdist (tests/...)"
    )
    p.add_argument("--fast", action="store_true", help="only FAST_TESTS")
    p.add_argument(
        "--rng",
        choices=("default", "legacy"),
        default="default",
        help="default: JAX's random-number stream (failures rerun on the legacy one to "
        "attribute them); legacy: jax_threefry_partitionable=False throughout",
    )
    p.add_argument("--compare", default=None, help="an earlier results.json: list what is fixed")
    p.add_argument("--compare-label", default=None, help="what the earlier run was, in words")
    p.add_argument("--cache", default=str(DEFAULT_CACHE))
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--timeout", type=float, default=7200.0)
    p.add_argument("--ntk-air", default=str(ROOT), help="checkout whose ntk_air is used")
    p.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.fast:
        args.modules = list(FAST_TESTS)
    cache = Path(args.cache)
    try:
        src = extract_tests(sdist_path(cache), cache)
    except RuntimeError as err:
        print(f"nt-upstream: {err}", file=sys.stderr)
        return 2
    ntk_air = Path(args.ntk_air)
    raw = run_pytest(src, args.modules, args.rng, args.pytest_args, args.timeout, ntk_air)
    rng_passes: set[str] = set()
    if args.rng == "default":
        suspects = [
            t["id"]
            for t in raw["tests"]
            if t["outcome"] in FAILED and categorize(t) == "unexplained"
        ]
        if suspects:
            rerun = run_pytest(src, suspects, "legacy", [], args.timeout, ntk_air, by_id=True)
            rng_passes = {t["id"] for t in rerun["tests"] if t["outcome"] == "passed"}
        raw["meta"]["rerun_on_legacy_rng"] = {"tests": len(suspects), "passed": len(rng_passes)}
    compare = json.loads(Path(args.compare).read_text()) if args.compare else None
    summary = {"meta": meta(args, raw), **summarize(raw, rng_passes, compare, args.compare_label)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1) + "\n")
    cats = ", ".join(f"{k}: {v}" for k, v in sorted(summary["failure_categories"].items()))
    print(
        f"nt-upstream: {summary['total']} tests, {summary['counts']}; failures by category: "
        f"{cats or 'none'} -> {out}"
    )
    return 0 if "unexplained" not in summary["failure_categories"] else 1


if __name__ == "__main__":
    sys.exit(main())
