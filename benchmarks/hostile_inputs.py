# ruff: noqa: E501  (long argv lists and an embedded script, one case per line)
"""Hostile inputs, as a new user would try them: a fresh set of ≥ 200 bad or edge inputs through the
CLI and the Python API, each classified as a clear refusal, a correct result, or a failure
(traceback, crash, hang, silent wrong answer). Writes benchmarks/results/hostile_inputs.json.

    python benchmarks/hostile_inputs.py [--out FILE] [--timeout S] [--only PREFIX]

CLI cases run each in a fresh process (`python -m ntk_air ...`, so a segmentation fault or a hang
is caught and classified); API cases run in one subprocess per group. An outcome is good when the
command exits 0 with its outputs complete (manifest.json present for report folders), or exits 2
(1 for OS errors such as a full disk) with a one-line message on stderr and no traceback, and
nothing earlier and complete was destroyed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def _unit(n, d, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_files(tmp: Path) -> dict:
    """Every data file the cases use, written once."""
    f = {}
    x, xt = _unit(30, 5, 1), _unit(10, 5, 2)
    y = np.sign(x[:, 0] + 0.01)
    yc = y.copy()
    y[:5] *= -1
    yt = np.sign(xt[:, 0] + 0.01)

    def save(name, **arrays):
        path = tmp / name
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
        f[name] = str(path)

    save("good.npz", x=x, y=y, y_clean=yc, x_test=xt, y_test=yt)
    save("typo_key.npz", x=x, y=y, yclean=yc)
    save("extra_key.npz", x=x, y=y, meta=np.ones(3))
    save("no_x.npz", y=y)
    save("no_y.npz", x=x)
    save("nan_x.npz", x=np.where(np.eye(30, 5) > 0, np.nan, x), y=y)
    save("inf_y.npz", x=x, y=np.where(np.arange(30) == 3, np.inf, y))
    save("rank3_x.npz", x=x.reshape(30, 5, 1), y=y)
    save("rank1_x.npz", x=x[:, 0], y=y)
    save("len_mismatch.npz", x=x, y=y[:-1])
    save("clean_shape.npz", x=x, y=y, y_clean=yc[:-2])
    save("test_only_x.npz", x=x, y=y, x_test=xt)
    save("test_dim.npz", x=x, y=y, x_test=xt[:, :3], y_test=yt)
    save("nonunit.npz", x=3 * x, y=y, y_clean=yc)
    save("zero_row.npz", x=np.vstack([np.zeros((1, 5)), x[1:]]), y=y)
    save("string_x.npz", x=np.array(["a"] * 30), y=y)
    save("complex_x.npz", x=x.astype(complex), y=y)
    save("bool_x.npz", x=x > 0, y=y)
    save("int_y.npz", x=x, y=y.astype(int), y_clean=yc.astype(int))
    save("empty_x.npz", x=np.zeros((0, 5)), y=np.zeros(0))
    save(
        "onehot_bad.npz",
        x=x,
        y=np.eye(3)[np.arange(30) % 3] * 2,
        y_clean=np.eye(3)[np.arange(30) % 3] * 2,
    )
    save("huge_values.npz", x=x * 1e300, y=y)
    save("one_row.npz", x=x[:1], y=y[:1], y_clean=yc[:1])
    save("dup_rows.npz", x=np.vstack([x[:1]] * 30), y=y, y_clean=yc)
    save("kernel_in.npz", x=x)
    save("kernel_in_x2.npz", x=x, x2=xt)
    save("kernel_x2_dim.npz", x=x, x2=xt[:, :2])
    save("kernel_nan.npz", x=np.full((4, 3), np.nan))
    save("kernel_extra.npz", x=x, y=y)
    with open(tmp / "pickled.npz", "wb") as fh:
        np.savez(fh, x=np.array([{"a": 1}] * 3, dtype=object), y=np.ones(3))
    f["pickled.npz"] = str(tmp / "pickled.npz")
    good = Path(f["good.npz"]).read_bytes()
    for name, data in (
        ("empty.npz", b""),
        ("truncated.npz", good[: len(good) // 2]),
        ("text.npz", b"x,y\n1,2\n"),
        ("bitflip.npz", _flip(good)),
        ("zeros.npz", bytes(len(good))),
    ):
        (tmp / name).write_bytes(data)
        f[name] = str(tmp / name)
    np.save(tmp / "array.npy", x)
    f["array.npy"] = str(tmp / "array.npy")
    os.makedirs(tmp / "a_directory.npz", exist_ok=True)
    f["a_directory.npz"] = str(tmp / "a_directory.npz")
    (tmp / "a_file").write_text("I am a file")
    f["a_file"] = str(tmp / "a_file")
    f["missing.npz"] = str(tmp / "missing.npz")
    return f


def _flip(data: bytes) -> bytes:
    b = bytearray(data)
    b[b.index(b"\x00\x00\xf0\x3f") + 3] ^= 0x10  # inside the first 1.0 of an array: CRC fails
    return bytes(b)


def cli_cases(f: dict, out: Path) -> list[tuple[str, list[str]]]:
    """(name, argv) for the CLI."""
    o = str(out)
    small = ["--n-train", "40", "--n-test", "10", "--no-progress"]
    cases = []

    def c(name, *argv):
        cases.append((name, list(argv)))

    # data files
    for key in sorted(k for k in f if k.endswith((".npz", ".npy")) and not k.startswith("kernel")):
        c(f"air_file_{key}", "air", f[key], "--out", f"{o}/air_{key}", "--no-progress")
    c(
        "air_file_nonunit_normalize",
        "air",
        f["nonunit.npz"],
        "--normalize",
        "--out",
        f"{o}/n",
        "--no-progress",
    )
    c(
        "air_file_with_dataset",
        "air",
        f["good.npz"],
        "--dataset",
        "digits",
        "--out",
        f"{o}/x",
        "--no-progress",
    )
    c("air_file_with_seed", "air", f["good.npz"], "--seed", "2", "--out", f"{o}/x", "--no-progress")
    c(
        "air_file_with_noise_rate",
        "air",
        f["good.npz"],
        "--noise-rate",
        "0.1",
        "--out",
        f"{o}/x",
        "--no-progress",
    )
    c("air_builtin_normalize", "air", "--normalize", *small, "--out", f"{o}/x")
    # built-in data options
    for rate in ("-0.1", "1", "1.5", "nan", "inf", "abc", "0", "0.99"):
        c(f"air_noise_rate_{rate}", "air", "--noise-rate", rate, *small, "--out", f"{o}/r{rate}")
    for seed in ("-1", "4294967296", "99999999999999999999", "1.5", "0"):
        c(f"air_seed_{seed}", "air", "--seed", seed, *small, "--out", f"{o}/s{seed}")
    for n in ("0", "-5", "100000", "1", "2", "abc"):
        c(
            f"air_n_train_{n}",
            "air",
            "--dataset",
            "digits",
            "--n-train",
            n,
            "--no-progress",
            "--out",
            f"{o}/nt{n}",
        )
    for n in ("-1", "100000", "0"):
        c(f"air_n_test_{n}", "air", "--n-test", n, "--no-progress", "--out", f"{o}/ne{n}")
    for ds in ("clusters", "digits", "digits-binary", "mnist1d", "mnist1d-binary", "cifar10", ""):
        c(f"air_dataset_{ds or 'empty'}", "air", "--dataset", ds, *small, "--out", f"{o}/d{ds}")
    for noise in ("none", "flip", "pair", "gaussian", "symmetric", ""):
        c(
            f"air_noise_{noise or 'empty'}",
            "air",
            "--noise",
            noise,
            *small,
            "--out",
            f"{o}/z{noise}",
        )
    # steps / eta / force
    for steps in ("0", "-1", "0.5", "1", "1e12", "1e300", "nan", "inf"):
        c(f"air_steps_{steps}", "air", "--steps", steps, *small, "--out", f"{o}/st{steps}")
    for num in ("0", "1", "2", "-3", "100000"):
        c(
            f"air_num_steps_{num}",
            "air",
            "--num-steps",
            num,
            "--steps",
            "100",
            *small,
            "--out",
            f"{o}/ns{num}",
        )
    for eta in ("0", "-1", "nan", "inf", "1e-300", "100"):
        c(f"air_eta_{eta}", "air", "--eta", eta, *small, "--out", f"{o}/e{eta}")
    c("air_eta_force", "air", "--eta", "100", "--force", *small, "--out", f"{o}/ef")
    # kernel options
    for depth in ("-1", "0", "100000", "abc"):
        c(
            f"air_fc_depth_{depth}",
            "air",
            "--arch",
            "fc",
            "--depth",
            depth,
            *small,
            "--out",
            f"{o}/fd{depth}",
        )
    for w in ("0", "-1", "nan", "inf", "50"):
        c(
            f"air_fc_wstd_{w}",
            "air",
            "--arch",
            "fc",
            "--depth",
            "3",
            "--w-std",
            w,
            *small,
            "--out",
            f"{o}/w{w}",
        )
    c(
        "air_fc_deep_overflow",
        "air",
        "--arch",
        "fc",
        "--depth",
        "500",
        "--w-std",
        "4",
        *small,
        "--out",
        f"{o}/ov",
    )
    c("air_twolayer_depth", "air", "--depth", "3", *small, "--out", f"{o}/td")
    c("air_twolayer_wstd", "air", "--w-std", "2", *small, "--out", f"{o}/tw")
    c("air_twolayer_erf", "air", "--activation", "erf", *small, "--out", f"{o}/te")
    c("air_arch_unknown", "air", "--arch", "resnet", *small, "--out", f"{o}/au")
    c("air_arch_spec_native", "air", "--arch", "cnn:channels=8", *small, "--out", f"{o}/as")
    for t in ("0", "-3", "1", "7", "100000", "abc"):
        c(f"air_tile_{t}", "air", "--tile-size", t, *small, "--out", f"{o}/t{t}")
    c("air_dtype_float16", "air", "--dtype", "float16", *small, "--out", f"{o}/dt")
    c("air_dtype_float32", "air", "--dtype", "float32", *small, "--out", f"{o}/dt32")
    c("air_backend_unknown", "air", "--backend", "torch", *small, "--out", f"{o}/bu")
    # output paths
    c("air_out_is_file", "air", *small, "--out", f["a_file"])
    c("air_out_under_file", "air", *small, "--out", f["a_file"] + "/sub")
    c("air_out_dev_full", "air", *small, "--out", "/dev/full")
    c("air_out_proc", "air", *small, "--out", "/proc/ntk_air_out")
    c("air_out_empty", "air", *small, "--out", "")
    # distill
    for a in ("5", "-1", "nan", "inf", "1", "0.99"):
        c(
            f"distill_alpha_{a}",
            "distill",
            "--rule",
            "r3",
            "--alpha",
            a,
            "--steps",
            "20",
            *small,
            "--out",
            f"{o}/da{a}",
        )
    for b in ("-1", "2", "nan"):
        c(
            f"distill_beta_{b}",
            "distill",
            "--rule",
            "bootstrap",
            "--beta",
            b,
            "--steps",
            "20",
            *small,
            "--out",
            f"{o}/db{b}",
        )
    for xi in ("0", "-2", "nan", "1e6"):
        c(
            f"distill_xi_{xi}",
            "distill",
            "--rule",
            "xi",
            "--xi",
            xi,
            "--rounds",
            "3",
            "--steps",
            "5",
            *small,
            "--out",
            f"{o}/dx{xi}",
        )
    for r in ("0", "-1", "nan", "inf"):
        c(
            f"distill_ridge_{r}",
            "distill",
            "--rule",
            "ridge-rounds",
            "--ridge",
            r,
            "--steps",
            "5",
            *small,
            "--out",
            f"{o}/dr{r}",
        )
    for s in ("0", "-1", "1000000000", "2.5"):
        c(f"distill_steps_{s}", "distill", "--steps", s, *small, "--out", f"{o}/ds{s}")
    for re_ in ("0", "-1", "1000000"):
        c(
            f"distill_record_every_{re_}",
            "distill",
            "--record-every",
            re_,
            "--steps",
            "20",
            *small,
            "--out",
            f"{o}/dre{re_}",
        )
    for rd in ("-1", "1000000000"):
        c(
            f"distill_rounds_{rd}",
            "distill",
            "--rule",
            "ridge-rounds",
            "--rounds",
            rd,
            "--steps",
            "5",
            *small,
            "--out",
            f"{o}/drd{rd}",
        )
    c(
        "distill_ramp_0",
        "distill",
        "--schedule",
        "increasing",
        "--ramp",
        "0",
        "--steps",
        "20",
        *small,
        "--out",
        f"{o}/dramp",
    )
    c("distill_soft_and_hard", "distill", "--soft", "--hard", *small, "--out", f"{o}/dsh")
    c("distill_rule_unknown", "distill", "--rule", "r4", *small, "--out", f"{o}/dru")
    c(
        "distill_student_steps_neg",
        "distill",
        "--rule",
        "xi",
        "--student-steps",
        "-3",
        *small,
        "--out",
        f"{o}/dss",
    )
    c(
        "distill_save_pred_dir",
        "distill",
        "--steps",
        "10",
        "--save-predictions",
        f["a_directory.npz"],
        *small,
        "--out",
        f"{o}/dsp",
    )
    c(
        "distill_save_pred_under_file",
        "distill",
        "--steps",
        "10",
        "--save-predictions",
        f["a_file"] + "/p.npz",
        *small,
        "--out",
        f"{o}/dsp2",
    )
    c(
        "distill_save_pred_noext",
        "distill",
        "--steps",
        "10",
        "--rule",
        "r3",
        "--save-predictions",
        f"{o}/preds",
        *small,
        "--out",
        f"{o}/dsp3",
    )
    c("distill_eta_diverge", "distill", "--eta", "10", "--steps", "10", *small, "--out", f"{o}/de")
    c(
        "distill_file_onehot_bad",
        "distill",
        f["onehot_bad.npz"],
        "--steps",
        "10",
        "--no-progress",
        "--out",
        f"{o}/dob",
    )
    c(
        "distill_file_int_labels",
        "distill",
        f["int_y.npz"],
        "--steps",
        "10",
        "--rule",
        "r3",
        "--no-progress",
        "--out",
        f"{o}/dil",
    )
    # theorem
    theorem_base = {"--widths": ["--widths", "16"], "--steps": ["--steps", "10"]}
    for opt, vals in (
        ("--record-every", ("0", "-1")),
        ("--kappa", ("0", "-1", "nan", "inf")),
        ("--alpha", ("nan", "1", "-0.5", "5")),
        ("--seed", ("-1", "4294967296", "99999999999999999999")),
        ("--init-seed", ("-1", "4294967296")),
        ("--steps", ("0", "-5", "1000000000")),
        ("--widths", ("1", "0", "-4", "7", "abc", "100000000")),
        ("--network-dtype", ("float16",)),
    ):
        base = [a for key, pair in theorem_base.items() if key != opt for a in pair]
        for v in vals:
            c(
                f"theorem_{opt.strip('-')}_{v}",
                "theorem",
                opt,
                v,
                *base,
                "--no-harder",
                "--no-progress",
                "--out",
                f"{o}/th{opt}{v}",
            )
    c(
        "theorem_odd_widths_harder",
        "theorem",
        "--widths",
        "15",
        "--steps",
        "10",
        "--no-progress",
        "--out",
        f"{o}/tho",
    )
    c(
        "theorem_out_file",
        "theorem",
        "--widths",
        "16",
        "--steps",
        "5",
        "--no-harder",
        "--no-progress",
        "--out",
        f["a_file"],
    )
    # kernel
    for key in (
        "good.npz",
        "kernel_in.npz",
        "kernel_in_x2.npz",
        "kernel_x2_dim.npz",
        "kernel_nan.npz",
        "kernel_extra.npz",
        "empty.npz",
        "truncated.npz",
        "pickled.npz",
        "array.npy",
        "a_directory.npz",
        "missing.npz",
        "bitflip.npz",
        "string_x.npz",
    ):
        c(f"kernel_in_{key}", "kernel", f[key], "--out", f"{o}/k_{key}")
    c("kernel_out_dir", "kernel", f["kernel_in.npz"], "--out", f["a_directory.npz"])
    c("kernel_out_under_file", "kernel", f["kernel_in.npz"], "--out", f["a_file"] + "/k.npz")
    # A FIFO stands for any non-regular file (as root, `--out /dev/full` once replaced the device).
    fifo = str(out.parent / "a_fifo")
    if not os.path.exists(fifo):
        os.mkfifo(fifo)
    c("kernel_out_fifo", "kernel", f["kernel_in.npz"], "--out", fifo)
    c(
        "kernel_fc_overflow",
        "kernel",
        f["kernel_in.npz"],
        "--arch",
        "fc",
        "--depth",
        "400",
        "--w-std",
        "5",
        "--out",
        f"{o}/kov",
    )
    c(
        "kernel_fc_deep_ok",
        "kernel",
        f["kernel_in.npz"],
        "--arch",
        "fc",
        "--depth",
        "100000",
        "--w-std",
        "1",
        "--out",
        f"{o}/kdeep",
    )
    c("kernel_twolayer_nonunit", "kernel", f["nonunit.npz"], "--out", f"{o}/knu")
    c("kernel_no_out", "kernel", f["kernel_in.npz"])
    # reproduce
    c(
        "reproduce_sections_unknown",
        "reproduce",
        "--sections",
        "air,foo",
        *small,
        "--out",
        f"{o}/ru",
    )
    c("reproduce_sections_empty", "reproduce", "--sections", ",", *small, "--out", f"{o}/re")
    c(
        "reproduce_file_theorem",
        "reproduce",
        f["good.npz"],
        "--sections",
        "air",
        "--no-progress",
        "--out",
        f"{o}/rft",
    )
    # generic
    c(
        "no_command",
    )
    c("unknown_command", "fit")
    c("air_unknown_option", "air", "--bogus", "1")
    return cases


def run_cli(name, argv, timeout) -> dict:
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [PY, "-m", "ntk_air", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "JAX_PLATFORMS": "cpu"},
        )
        code, err = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired:
        code, err = "timeout", ""
    seconds = time.perf_counter() - t0
    lines = [
        line
        for line in err.splitlines()
        if line.strip() and "UserWarning" not in line and not line.startswith("  warnings.warn")
    ]
    traceback = "Traceback" in err
    if code == "timeout":
        outcome = "hang"
    elif isinstance(code, int) and code < 0:
        outcome = f"crash (signal {-code})"
    elif traceback:
        outcome = "traceback"
    elif code == 0:
        outcome = "result"
    elif code in (1, 2) and lines:
        outcome = "refusal"
    else:
        outcome = f"unexpected exit {code}"
    return {
        "name": name,
        "argv": argv,
        "exit": code,
        "outcome": outcome,
        "seconds": round(seconds, 2),
        "stderr_last_line": lines[-1] if lines else "",
    }


API_SCRIPT = r"""
import json, math, sys, warnings
import numpy as np
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import ntk_air
from ntk_air import data, kernels, targets, distill, problem, eigen, dynamics, early_stopping, spectrum, rounds, record, studies, layers

warnings.simplefilter("ignore")
rng = np.random.default_rng(0)
x = rng.standard_normal((12, 4)); x /= np.linalg.norm(x, axis=1, keepdims=True)
y = np.sign(x[:, 0] + 0.01); yc = y.copy(); y[:2] *= -1
H = kernels.two_layer_relu(x); eig = eigen.eigensystem(H)
lp = problem.linear_problem(eig, y, yc)
cases = {}
def case(name, fn, expect_ok=None):
    cases[name] = fn
case("kernel_nan_input", lambda: kernels.two_layer_relu(np.full((3, 2), np.nan)))
case("kernel_int_input", lambda: kernels.fc_kernel_fn(1)(np.ones((3, 2), int)))
case("kernel_complex", lambda: kernels.fc_kernel_fn(1)(np.ones((3, 2)) * 1j))
case("kernel_object", lambda: kernels.fc_kernel_fn(1)(np.array([[{}]], dtype=object)))
case("kernel_string", lambda: kernels.fc_kernel_fn(1)(np.array([["a"]])))
case("kernel_rank1", lambda: kernels.two_layer_relu(np.ones(3)))
case("kernel_rank3", lambda: kernels.two_layer_relu(np.ones((2, 2, 2))))
case("kernel_empty", lambda: kernels.fc_kernel_fn(1)(np.zeros((0, 3))))
case("kernel_feature_mismatch", lambda: kernels.fc_kernel_fn(1)(np.ones((2, 3)), np.ones((2, 4))))
case("kernel_nonunit", lambda: kernels.two_layer_relu(2 * x))
case("kernel_depth_negative", lambda: kernels.fc_kernel_fn(-1))
case("kernel_depth_float", lambda: kernels.fc_kernel_fn(2.5))
case("kernel_depth_bool", lambda: kernels.fc_kernel_fn(True))
case("kernel_activation", lambda: kernels.fc_kernel_fn(1, "tanh"))
case("kernel_wstd_nan", lambda: kernels.fc_kernel_fn(1, "relu", float("nan")))
case("kernel_bstd_neg", lambda: kernels.fc_kernel_fn(1, "relu", 1.0, -1.0))
case("kernel_tile_zero", lambda: kernels.fc_kernel_fn(1, tile_size=0))
case("kernel_tile_float", lambda: kernels.fc_kernel_fn(1, tile_size=2.5))
case("kernel_dtype_bad", lambda: kernels.fc_kernel_fn(1, dtype="float16"))
case("kernel_overflow", lambda: kernels.fc_kernel_fn(300, "relu", 6.0)(x))
case("kernel_pairwise_not_callable", lambda: kernels.from_pairwise(3))
case("kernel_pairwise_bad_output", lambda: kernels.from_pairwise(lambda a, b: a)(x))
case("layers_dense_zero", lambda: layers.dense(0.0))
case("layers_repeat_negative", lambda: layers.repeat(layers.relu(), -2))
case("layers_serial_noncallable", lambda: layers.serial(3))
case("eigen_nonsquare", lambda: eigen.eigensystem(np.ones((3, 4))))
case("eigen_nonsymmetric", lambda: eigen.eigensystem(np.triu(np.ones((3, 3)))))
case("eigen_nan", lambda: eigen.eigensystem(np.full((2, 2), np.nan)))
case("eigen_float64_without_x64", lambda: (jax.config.update("jax_enable_x64", False), eigen.eigensystem(np.eye(2), dtype="float64")))
case("problem_y_shape", lambda: problem.linear_problem(eig, y[:-1], yc[:-1]))
case("problem_y_nan", lambda: problem.linear_problem(eig, np.where(np.arange(12) == 1, np.nan, y), yc))
case("problem_rank3_labels", lambda: problem.linear_problem(eig, np.ones((12, 2, 2))))
case("problem_test_without_kernel", lambda: problem.linear_problem(eig, y, yc, y_test_clean=yc))
case("problem_u0_without_f0", lambda: problem.linear_problem(eig, y, yc, u0=y, k_test_train=H))
case("problem_k_test_shape", lambda: problem.linear_problem(eig, y, yc, k_test_train=np.ones((3, 5))))
case("distill_alpha_nan", lambda: targets.r3(float("nan")))
case("distill_alpha_str", lambda: targets.r3("0.9"))
case("distill_schedule", lambda: targets.r1(0.5, schedule="cosine"))
case("distill_ramp", lambda: targets.r1(0.5, schedule="increasing", ramp=0))
case("distill_steps_negative", lambda: distill.self_distill(lp, targets.r3(0.9), steps=-1))
case("distill_steps_float", lambda: distill.self_distill(lp, targets.r3(0.9), steps=2.5))
case("distill_eta_diverge", lambda: distill.self_distill(lp, targets.r3(0.9), steps=3, eta=1e3))
case("distill_eta_nan", lambda: distill.self_distill(lp, targets.r3(0.9), steps=3, eta=float("nan")))
case("distill_engine_bad", lambda: distill.self_distill(lp, targets.r3(0.9), steps=3, engine="gpu"))
case("distill_engine_refuses", lambda: distill.self_distill(lp, targets.r3(0.9), steps=3, engine="closed-form"))
case("distill_rules_empty", lambda: distill.self_distill(lp, [], steps=3))
case("distill_rules_wrong_type", lambda: distill.self_distill(lp, 3, steps=3))
case("distill_clean_not_pm1", lambda: distill.self_distill(problem.linear_problem(eig, y, 0.5 * yc), targets.r1(0.5), steps=3))
case("distill_no_clean", lambda: distill.self_distill(problem.linear_problem(eig, y), targets.r1(0.5), steps=3))
case("distill_record_zero", lambda: record.Record(every=0))
case("distill_diverging_forced", lambda: distill.self_distill(lp, targets.plain_gd(), steps=5000, eta=3 / float(eig.eigenvalues[0]), force=True))
case("rounds_ridge_zero", lambda: rounds.xi_distill(1.0))
case("rounds_negative", lambda: rounds.distill_rounds(lp, rounds.ridge_rounds(0.1), rounds=-1))
case("rounds_student_steps", lambda: rounds.xi_distill(1.0, student_steps=-1))
case("dynamics_steps_negative", lambda: dynamics.gd_predictor(eig, y)(np.array([-1.0])))
case("dynamics_steps_fractional", lambda: dynamics.gd_predictor(eig, y)(np.array([1.5])))
case("dynamics_steps_nan", lambda: dynamics.gd_predictor(eig, y)(np.array([np.nan])))
case("dynamics_eta_zero", lambda: dynamics.gd_predictor(eig, y, eta=0.0))
case("dynamics_eta_diverge", lambda: dynamics.gd_predictor(eig, y, eta=1e3))
case("dynamics_overflow", lambda: dynamics.gd_predictor(eig, y, eta=3 / float(eig.eigenvalues[0]), force=True)(np.array([1e6])))
case("ucurve_no_steps", lambda: early_stopping.u_curve(lp))
case("ucurve_no_clean", lambda: early_stopping.u_curve(eig, y, steps=[1, 2]))
case("spectrum_zero_labels", lambda: spectrum.energy_per_mode(eig, np.zeros(12)))
case("spectrum_fractions", lambda: spectrum.label_spectrum(eig, y, fractions=(0.5, 1.5)))
case("spectrum_shape", lambda: spectrum.air_spectra(eig, y, y[:5]))
case("data_clusters_k", lambda: data.clusters(n_clusters=1, n_classes=2))
case("data_clusters_eps", lambda: data.clusters(eps0=-1))
case("data_clusters_delta", lambda: data.clusters(delta=2.0))
case("data_clusters_dim", lambda: data.clusters(dim=1))
case("data_clusters_seed_neg", lambda: data.clusters(seed=-1))
case("data_clusters_seed_huge", lambda: data.clusters(seed=2**64))
case("data_digits_pair", lambda: data.digits(binary=True, pair=(3, 3)))
case("data_digits_too_many", lambda: data.digits(n_train=5000))
case("data_mnist1d_neg", lambda: data.mnist1d(n_train=-1))
case("data_noise_rate", lambda: data.clusters(noise_rate=1.0))
case("data_noise_model", lambda: data.clusters(noise="salt"))
case("data_load_unknown", lambda: data.load("imagenet"))
case("data_load_bad_option", lambda: data.load("clusters", size=3))
case("data_subsample_too_many", lambda: data.subsample(data.clusters(), n_train=10**6))
case("data_from_arrays_rank", lambda: data.from_arrays(np.ones(3), np.ones(3)))
case("data_from_arrays_mismatch", lambda: data.from_arrays(np.ones((3, 2)), np.ones(4)))
case("data_unit_normalize_zero", lambda: data.unit_normalize(np.zeros((2, 3))))
case("studies_air_steps_array_neg", lambda: studies.air(data.clusters(n_per_cluster=5), kernels.two_layer_relu_kernel_fn(), studies.AIRConfig(steps=np.array([-1.0, 3.0]))))
case("studies_distill_rule", lambda: studies.distill(data.clusters(n_per_cluster=5), kernels.two_layer_relu_kernel_fn(), studies.DistillConfig(rules=("r9",))))
case("studies_theorem_widths", lambda: studies.TheoremConfig(widths=(1,)))
case("studies_theorem_alpha", lambda: studies.TheoremConfig(alpha=1.0))
out = {}
for name, fn in cases.items():
    jax.config.update("jax_enable_x64", True)
    try:
        r = fn()
        leaves = [a for a in jax.tree_util.tree_leaves(r) if hasattr(a, "dtype") and np.issubdtype(np.asarray(a).dtype, np.floating)]
        finite = all(np.isfinite(np.asarray(a)).all() for a in leaves)
        out[name] = {"outcome": "result" if finite else "silent non-finite result"}
    except (ValueError, TypeError, FileNotFoundError) as err:
        msg = str(err).splitlines()[0] if str(err) else ""
        out[name] = {"outcome": "refusal" if msg else "refusal without message", "error": type(err).__name__, "message": msg[:300]}
    except Exception as err:
        out[name] = {"outcome": "traceback", "error": type(err).__name__, "message": str(err)[:300]}
print(json.dumps(out))
"""


def run_api(timeout) -> list[dict]:
    proc = subprocess.run([PY, "-c", API_SCRIPT], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        return [
            {
                "name": "api_group",
                "outcome": f"crash (exit {proc.returncode})",
                "stderr": proc.stderr[-2000:],
            }
        ]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    return [{"name": f"api_{k}", **v} for k, v in results.items()]


GOOD = ("result", "refusal")

# Cases whose only right answer is a refusal: an invalid value, a damaged or ambiguous file, an
# option that does not apply, an output path that cannot be written, a numerically meaningless
# request. A result there is a silent wrong answer. (Other cases may either refuse clearly or
# compute a correct result: a long loop refused with its time estimate, an edge value computed.)
MUST_REFUSE = set(
    """
air_file_a_directory.npz air_file_array.npy air_file_bitflip.npz air_file_clean_shape.npz
air_file_complex_x.npz air_file_empty.npz air_file_empty_x.npz air_file_extra_key.npz
air_file_inf_y.npz air_file_len_mismatch.npz air_file_missing.npz air_file_nan_x.npz
air_file_no_x.npz air_file_no_y.npz air_file_pickled.npz air_file_rank1_x.npz air_file_rank3_x.npz
air_file_string_x.npz air_file_test_dim.npz air_file_text.npz air_file_truncated.npz
air_file_typo_key.npz air_file_zeros.npz air_file_with_dataset air_file_with_seed
air_file_with_noise_rate air_noise_rate_-0.1 air_noise_rate_1 air_noise_rate_1.5 air_noise_rate_nan
air_noise_rate_inf air_noise_rate_abc air_seed_-1 air_seed_1.5 air_n_train_0 air_n_train_-5
air_n_train_abc air_n_test_-1 air_dataset_cifar10 air_dataset_empty
air_noise_empty air_steps_0 air_steps_-1 air_steps_0.5 air_steps_nan air_steps_inf air_num_steps_0
air_num_steps_-3 air_eta_0 air_eta_-1 air_eta_nan air_eta_inf air_eta_100 air_fc_depth_-1
air_fc_depth_abc air_fc_wstd_-1 air_fc_wstd_nan air_fc_wstd_inf air_fc_deep_overflow
air_arch_unknown air_tile_0 air_tile_-3 air_tile_abc air_dtype_float16 air_backend_unknown
air_out_is_file air_out_under_file air_out_dev_full air_out_proc air_out_empty
distill_alpha_5 distill_alpha_-1 distill_alpha_nan distill_alpha_inf distill_beta_-1 distill_beta_2
distill_beta_nan distill_xi_-2 distill_xi_nan distill_xi_1e6 distill_ridge_0 distill_ridge_-1
distill_ridge_nan distill_ridge_inf distill_steps_0 distill_steps_-1 distill_steps_2.5
distill_record_every_0 distill_record_every_-1 distill_rounds_-1 distill_ramp_0
distill_soft_and_hard distill_rule_unknown distill_student_steps_neg distill_save_pred_dir
distill_save_pred_under_file distill_eta_diverge
theorem_record-every_0 theorem_record-every_-1 theorem_kappa_0 theorem_kappa_-1 theorem_kappa_nan
theorem_kappa_inf theorem_alpha_nan theorem_alpha_-0.5 theorem_alpha_5 theorem_seed_-1
theorem_seed_99999999999999999999 theorem_init-seed_-1 theorem_steps_0 theorem_steps_-5
theorem_widths_1 theorem_widths_0 theorem_widths_-4 theorem_widths_abc
theorem_network-dtype_float16 theorem_out_file
kernel_in_kernel_x2_dim.npz kernel_in_kernel_nan.npz
kernel_in_kernel_extra.npz kernel_in_empty.npz kernel_in_truncated.npz kernel_in_pickled.npz
kernel_in_array.npy kernel_in_a_directory.npz kernel_in_missing.npz kernel_in_bitflip.npz
kernel_in_string_x.npz kernel_out_dir kernel_out_under_file kernel_out_fifo kernel_fc_overflow
reproduce_sections_unknown reproduce_sections_empty unknown_command air_unknown_option
api_kernel_nan_input api_kernel_complex api_kernel_object api_kernel_string api_kernel_rank1
api_kernel_rank3 api_kernel_empty api_kernel_feature_mismatch api_kernel_depth_negative
api_kernel_depth_float api_kernel_depth_bool api_kernel_activation api_kernel_wstd_nan
api_kernel_bstd_neg api_kernel_tile_zero api_kernel_tile_float api_kernel_dtype_bad
api_kernel_overflow api_kernel_pairwise_not_callable api_kernel_pairwise_bad_output
api_layers_repeat_negative api_layers_serial_noncallable api_eigen_nonsquare
api_eigen_nonsymmetric api_eigen_nan api_problem_y_shape api_problem_y_nan
api_problem_rank3_labels api_problem_test_without_kernel api_problem_u0_without_f0
api_problem_k_test_shape api_distill_alpha_nan api_distill_alpha_str api_distill_schedule
api_distill_ramp api_distill_steps_negative api_distill_steps_float api_distill_eta_diverge
api_distill_eta_nan api_distill_engine_bad api_distill_engine_refuses api_distill_rules_empty
api_distill_rules_wrong_type api_distill_clean_not_pm1 api_distill_no_clean
api_distill_record_zero api_rounds_ridge_zero api_rounds_negative api_rounds_student_steps
api_dynamics_steps_negative api_dynamics_steps_nan api_dynamics_eta_zero api_dynamics_eta_diverge
api_ucurve_no_steps api_ucurve_no_clean api_spectrum_fractions api_spectrum_shape
api_data_clusters_k api_data_clusters_eps api_data_clusters_delta api_data_clusters_dim
api_data_clusters_seed_neg api_data_clusters_seed_huge api_data_digits_pair
api_data_digits_too_many api_data_mnist1d_neg api_data_noise_rate api_data_noise_model
api_data_load_unknown api_data_load_bad_option api_data_subsample_too_many
api_data_from_arrays_rank api_data_from_arrays_mismatch api_data_unit_normalize_zero
api_studies_air_steps_array_neg api_studies_distill_rule api_studies_theorem_widths
api_studies_theorem_alpha
""".split()
)

# Cases whose only right answer is a result (valid input): a refusal there is wrong.
MUST_SUCCEED = set(
    """
air_file_good.npz air_noise_rate_0 air_noise_rate_0.99 air_seed_0 air_n_train_2 air_dataset_clusters
air_dataset_digits air_dataset_digits-binary air_dataset_mnist1d air_dataset_mnist1d-binary
air_noise_none air_noise_flip air_noise_pair air_noise_gaussian air_steps_1 air_tile_1 air_tile_7
air_tile_100000 air_dtype_float32 distill_alpha_1 distill_alpha_0.99 distill_xi_0
kernel_in_kernel_in.npz kernel_in_kernel_in_x2.npz air_num_steps_2
""".split()
)


def judge(result: dict) -> dict:
    """The outcome against the case's expectation (MUST_REFUSE / MUST_SUCCEED)."""
    name, outcome = result["name"], result["outcome"]
    if outcome == "result" and name in MUST_REFUSE:
        result["outcome"] = "silent wrong answer (a refusal was due)"
    elif outcome == "refusal" and name in MUST_SUCCEED:
        result["outcome"] = "wrong refusal (valid input)"
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "hostile_inputs.json"))
    p.add_argument("--timeout", type=float, default=240.0, help="seconds per CLI case (a hang)")
    p.add_argument("--only", default=None, help="run only cases whose name starts with this")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="ntk_air_hostile_"))
    try:
        files = make_files(tmp)
        cases = cli_cases(files, tmp / "out")
        if args.only:
            cases = [c for c in cases if c[0].startswith(args.only)]
        results = []
        for i, (name, argv_) in enumerate(cases):
            r = judge(run_cli(name, argv_, args.timeout))
            results.append(r)
            print(
                f"[{i + 1}/{len(cases)}] {name}: {r['outcome']} ({r['seconds']} s) {r['stderr_last_line'][:120]}",
                flush=True,
            )
        if not args.only or args.only.startswith("api"):
            api = [judge(r) for r in run_api(args.timeout * 4)]
            results += api
            for r in api:
                print(f"{r['name']}: {r['outcome']} {r.get('message', '')[:120]}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    good = [r for r in results if r["outcome"] in GOOD]
    summary = {
        "cases": len(results),
        "good": len(good),
        "good_fraction": len(good) / max(1, len(results)),
        "by_outcome": {
            o: sum(r["outcome"] == o for r in results)
            for o in sorted({r["outcome"] for r in results})
        },
        "bad": [r for r in results if r["outcome"] not in GOOD],
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
        },
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"{len(good)}/{len(results)} good ({100 * summary['good_fraction']:.1f} %); bad: {[r['name'] for r in summary['bad']]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
