"""pytest plugin: run neural-tangents' own test suite with NT imported through ntk_air's layer.

Loaded with `-p nt_upstream_plugin` (tools/nt_upstream on PYTHONPATH) by tools/nt_upstream/run.py.
At `pytest_configure`, before any of NT's test modules is collected, it calls
`ntk_air.nt_backend.compat.import_neural_tangents()`, so every `import neural_tangents` in NT's
tests gets the adapted module from `sys.modules`. It records each test's outcome and, for a
failure, the exception's last line into the JSON file named by NT_UPSTREAM_REPORT.

Environment:
  NT_UPSTREAM_REPORT        where to write {"tests": [{"id", "outcome", "error"}...]}
  NT_UPSTREAM_RNG=legacy    run with jax_threefry_partitionable=False, the random-number
                            stream NT 0.6.5's tests drew their data from (default: JAX's own)

NT's *test modules* (not NT) also use names JAX has since removed: `jax.tree_map` (test_utils'
assertAllClose, batching and empirical tests), `jax.core.Primitive` and `ad.zeros_like_p`
(rules_test). For this test session only, the plugin supplies them where missing
(`jax.tree_util.tree_map`, `jax.extend.core.Primitive`, and the placeholder primitive the layer
gave NT's rule tables), after NT itself was imported through the layer; the layer never sets
names on JAX's modules. They are listed in the report's meta.
"""

from __future__ import annotations

import json
import os

_RESULTS: dict[str, dict] = {}


def pytest_configure(config):
    import jax

    if os.environ.get("NT_UPSTREAM_RNG", "default") == "legacy":
        jax.config.update("jax_threefry_partitionable", False)
    from ntk_air.nt_backend import compat

    nt = compat.import_neural_tangents()
    config._nt_upstream = {
        "nt_file": nt.__file__,
        "applied": compat._STATE["applied"],
        "test_harness_names": _supply_names_nt_tests_import(),
    }


def _supply_names_nt_tests_import() -> list[str]:
    import sys

    import jax
    import jax.core
    import jax.extend.core
    import jax.tree_util
    from jax.interpreters import ad

    rules = sys.modules["neural_tangents._src.utils.rules"]
    placeholder = next(
        (p for p in rules.STRUCTURE_RULES if str(getattr(p, "name", "")).startswith("zeros_like")),
        None,
    )
    supplied = []
    for module, name, value in (
        (jax, "tree_map", jax.tree_util.tree_map),
        (jax.core, "Primitive", jax.extend.core.Primitive),
        (ad, "zeros_like_p", placeholder),
    ):
        if getattr(module, name, None) is None:
            setattr(module, name, value)
            supplied.append(f"{module.__name__}.{name}")
    return supplied


def _error_line(report) -> str:
    if isinstance(report.longrepr, tuple):  # a skip: (path, lineno, message)
        return str(report.longrepr[2])[:400]
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message.strip().splitlines()[0][:400] if crash.message.strip() else ""
    return str(report.longrepr).strip().splitlines()[-1][:400] if report.longrepr else ""


def _raised_at(report) -> str:
    """'file:line: source' of the innermost frame of a failure (where the exception was raised)."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is None:
        return ""
    import linecache

    source = linecache.getline(crash.path, crash.lineno).strip()
    path = crash.path.split("site-packages/")[-1].split("/src/")[-1]
    return f"{path}:{crash.lineno}: {source}"[:400]


def pytest_runtest_logreport(report):
    entry = _RESULTS.setdefault(
        report.nodeid, {"id": report.nodeid, "outcome": "passed", "seconds": 0.0}
    )
    entry["seconds"] = round(entry["seconds"] + report.duration, 3)
    if report.when == "call" and report.outcome == "skipped":
        entry["outcome"] = "skipped"
        entry["error"] = _error_line(report)
    elif report.failed:
        entry["outcome"] = "failed" if report.when == "call" else "error"
        entry.setdefault("error", _error_line(report))
        entry.setdefault("raised_at", _raised_at(report))
    elif report.skipped and report.when == "setup":
        entry["outcome"] = "skipped"
        entry["error"] = _error_line(report)


def pytest_collectreport(report):
    if report.failed:
        _RESULTS[report.nodeid] = {
            "id": report.nodeid,
            "outcome": "collection-error",
            "error": _error_line(report),
        }


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("NT_UPSTREAM_REPORT")
    if not path:
        return
    meta = getattr(session.config, "_nt_upstream", {})
    with open(path, "w") as f:
        json.dump({"meta": meta, "tests": list(_RESULTS.values())}, f, indent=1)
