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


# ---------------------------------------------------------------------------------------------
# Round three (issue 21): every case the independent set listed, and ≥ 150 more, grouped by class
# (security, data loss, hang, wrong refusal, traceback), each with its own expectation:
#   "refuse"  exit 2 (1 for an OS error) with one line on stderr, no traceback;
#   "succeed" exit 0 with a complete manifest.json where a report folder is written;
#   "either"  a clear refusal or a correct result;
# and, where given, a `check(case_dir)` that must hold afterwards (nothing outside --out touched,
# the earlier run intact, file modes, …). A case runs in its own folder under the temp dir.
# ---------------------------------------------------------------------------------------------

TINY = ["--n-train", "24", "--n-test", "8", "--no-progress"]
NOISY_TINY = ["--n-train", "24", "--n-val", "8", "--n-test", "8", "--epochs", "1", "--seeds", "2",
              "--methods", "plain", "--batch-size", "8", "--no-kernel-limit", "--no-progress"]  # fmt: skip
GOOD_AIR = ["air", "--n-train", "24", "--steps", "20", "--no-progress"]


def _tree(folder: Path) -> dict:
    """{relative path: bytes} of every regular file under `folder` (hidden ones excepted)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if (
            p.is_file()
            and not p.is_symlink()
            and not any(x.startswith(".") for x in rel.split("/"))
        ):
            out[rel] = p.read_bytes()
    return out


def _v3_files(tmp: Path) -> dict:
    f = {}
    rng = np.random.default_rng(3)
    x, xt = _unit(60, 6, 4), _unit(24, 6, 5)
    y3 = np.eye(3)[np.arange(60) % 3]
    yt3 = np.eye(3)[np.arange(24) % 3]
    for i, name in enumerate(
        [
            "/" + "../" * 3 + "TRAVERSAL",
            "../up",
            "a/b/c",
            "..",
            "",
            "x" * 300,
            "CON",
            "é/../ü",
            ".hidden",
            "name with spaces",
            "tab\tname",
            "~root",
        ]  # fmt: skip
    ):
        path = tmp / f"named_{i}.npz"
        np.savez(path, x=x, y=y3, x_test=xt, y_test=yt3, name=np.str_(name))
        f[f"named_{i}"] = str(path)
    np.savez(tmp / "one_class.npz", x=x, y=np.eye(3)[np.zeros(60, int)], x_test=xt,
             y_test=np.eye(3)[np.zeros(24, int)])  # fmt: skip
    f["one_class"] = str(tmp / "one_class.npz")
    np.savez(tmp / "no_test.npz", x=x, y=y3)
    f["no_test"] = str(tmp / "no_test.npz")
    yb = np.sign(x[:, 0] + 1e-3)
    np.savez(tmp / "binary.npz", x=x, y=yb, y_clean=yb, x_test=xt, y_test=np.sign(xt[:, 0] + 1e-3))
    f["binary"] = str(tmp / "binary.npz")
    np.savez(tmp / "k50.npz", x=_unit(50, 4, 6))
    f["k50"] = str(tmp / "k50.npz")
    big = _unit(400_000, 3, 7)
    np.savez(tmp / "k400k.npz", x=big)
    np.savez(tmp / "k100k.npz", x=big[:100_000])
    f["k400k"], f["k100k"] = str(tmp / "k400k.npz"), str(tmp / "k100k.npz")
    # a zip bomb: 70 000 equal unit rows compress to almost nothing, the kernel is 40 GB
    bomb = np.tile(np.array([[1.0, 0.0, 0.0]]), (70_000, 1))
    np.savez_compressed(tmp / "bomb.npz", x=bomb)
    f["bomb"] = str(tmp / "bomb.npz")
    # an .npy header claiming 10^10 entries with 8 bytes of data
    import io
    import zipfile

    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        hdr, {"descr": "<f8", "fortran_order": False, "shape": (100_000, 100_000)}
    )
    with zipfile.ZipFile(tmp / "huge_header.npz", "w") as z:
        z.writestr("x.npy", hdr.getvalue() + b"\0" * 8)
    f["huge_header"] = str(tmp / "huge_header.npz")
    fifo = tmp / "in_fifo.npz"
    if not fifo.exists():
        os.mkfifo(fifo)
    f["fifo"] = str(fifo)
    del rng
    return f


def _manifest_case(files_claim, victims=("a", "b", "c")):
    """A folder whose manifest claims `files_claim`; the next run must not delete the victims
    (inside or outside the folder)."""

    def setup(d: Path):
        out = d / "out"
        out.mkdir(parents=True)
        for v in victims:
            (out / v).write_text("user file")
        (d / "victim_outside").write_text("outside")
        (out / "manifest.json").write_text(json.dumps({"complete": True, "files": files_claim}))

    def check(d: Path):
        out = d / "out"
        gone = [v for v in victims if not (out / v).exists()]
        ok = not gone and (d / "victim_outside").exists()
        return ok, f"deleted {gone}" if gone else "outside file deleted" if not ok else ""

    return setup, check


def _earlier_run_setup(d: Path):
    """A complete earlier run in d/out (air, tiny)."""
    subprocess.run([PY, "-m", "ntk_air", *GOOD_AIR, "--out", str(d / "out")],
                   capture_output=True, timeout=600, env={**os.environ, "JAX_PLATFORMS": "cpu"})  # fmt: skip
    (d / "before.json").write_text(json.dumps({k: v.hex() for k, v in _tree(d / "out").items()}))


def _earlier_run_intact(d: Path):
    before = {k: bytes.fromhex(v) for k, v in json.loads((d / "before.json").read_text()).items()}
    now = _tree(d / "out")
    changed = sorted(k for k in before if now.get(k) != before[k])
    ok = bool(before) and not changed
    return ok, "" if ok else f"earlier run changed: {changed[:5]}"


def _complete_manifest(d: Path):
    m = d / "out" / "manifest.json"
    if not m.exists():
        return False, "no manifest"
    files = json.loads(m.read_text())["files"]
    missing = [f for f in files if not (d / "out" / f).is_file()]
    return not missing, f"manifest lists missing files {missing}" if missing else ""


def _nothing_outside(d: Path):
    ours = ("out", "before.json", "victim_outside", "a_file", "in.npz")  # the harness's own
    stray = [p.name for p in d.iterdir() if p.name not in ours]
    stray += [p.name for p in Path("/").iterdir() if "TRAVERSAL" in p.name]
    return not stray, f"written outside --out: {stray}" if stray else ""


def v3_cases(f: dict) -> list[dict]:
    """The round-three cases: dicts with name, group, argv (or api / special), expect, …."""
    cases = []

    def c(name, group, argv, expect="refuse", **kw):
        cases.append({"name": f"v3_{name}", "group": group, "argv": argv, "expect": expect, **kw})

    # --- security: names from data files never become paths; manifests never delete ---------
    for key in sorted(k for k in f if k.startswith("named_")):
        c(f"noisy_name_{key}", "security", ["noisy-labels", f[key], *NOISY_TINY], "succeed",
          check=_nothing_outside)  # fmt: skip
    for i, claim in enumerate(
        [
            "abc",
            ["../victim_outside"],
            ["/etc/hostname"],
            [".."],
            [123, None],
            {"a": 1},
            ["a/" + "../" * 2 + "victim_outside"],
            ["out/../victim_outside"],
            ["a", "b", "c"],
            "",
            ["./a"],
            ["a/"],
            ["\\a"],
            [" a"],
            ["a\u0000"],
        ]  # fmt: skip
    ):
        setup, check = _manifest_case(claim)
        expect_kept = claim != ["a", "b", "c"]  # a manifest listing them: the user's edits stay
        c(f"manifest_claim_{i}", "security", GOOD_AIR, "succeed", setup=setup,
          check=check if expect_kept else None)  # fmt: skip

    # a symlink named in the manifest, pointing outside
    def symlink_setup(d: Path):
        out = d / "out"
        out.mkdir(parents=True)
        (d / "victim_outside").write_text("outside")
        os.symlink(d / "victim_outside", out / "link.json")
        (out / "manifest.json").write_text(json.dumps({"files": ["link.json"]}))

    c("manifest_symlink_outside", "security", GOOD_AIR, "succeed", setup=symlink_setup,
      check=lambda d: ((d / "victim_outside").exists(), "symlink target deleted"))  # fmt: skip

    # --- data loss: refused runs keep the earlier run; collisions; modes; concurrency ---------
    for i, bad in enumerate(
        [
            ["--memory-budget", "-1"],
            ["--eta", "nan"],
            ["--num-steps", "1"],
            ["--steps", "-3"],
            ["--rank", "0", "--solver", "topk"],
            ["--noise-rate", "1.5"],
            ["--dataset", "bogus"],
            ["--tile-size", "0"],
            ["--arch", "resnet"],
            ["--seed", "-1"],
            ["--n-train", "0"],
            ["--dtype", "float16"],
            ["--w-std", "2"],
            ["--memory-budget", "nan"],
            ["--memory-budget", "1e-12"],
        ]  # fmt: skip
    ):
        c(f"refused_keeps_earlier_air_{i}", "data loss", ["air", *TINY, *bad], "refuse",
          setup=_earlier_run_setup, check=_earlier_run_intact)  # fmt: skip
    for i, bad in enumerate(
        [
            ["--alpha", "nan"],
            ["--rule", "r9"],
            ["--steps", "0"],
            ["--rounds", "-1"],
            ["--beta", "2"],
            ["--xi", "-1"],
            ["--record-every", "0"],
            ["--ridge", "0"],
        ]  # fmt: skip
    ):
        c(f"refused_keeps_earlier_distill_{i}", "data loss", ["distill", *TINY, *bad], "refuse",
          setup=_earlier_run_setup, check=_earlier_run_intact)  # fmt: skip
    c("refused_keeps_earlier_noisy_no_test", "data loss", ["noisy-labels", f["no_test"], *NOISY_TINY],
      "refuse", setup=_earlier_run_setup, check=_earlier_run_intact)  # fmt: skip
    c("refused_keeps_earlier_entk", "data loss", ["entk", "--steps", "0", *TINY], "refuse",
      setup=_earlier_run_setup, check=_earlier_run_intact)  # fmt: skip
    for target in (
        "distill.json",
        "manifest.json",
        "timings.json",
        "index.md",
        "distill_curves.png",
    ):
        c(f"save_predictions_collides_{target}", "data loss",
          ["distill", "--steps", "5", *TINY, "--save-predictions", f"@OUT@/{target}"], "refuse")  # fmt: skip
    c("save_predictions_beside_ok", "wrong refusal",
      ["distill", "--steps", "5", "--rule", "r3", *TINY, "--save-predictions", "@OUT@/preds.npz"],
      "succeed")  # fmt: skip
    for mask in (0o022, 0o027, 0o002):
        want = 0o666 & ~mask
        c(f"umask_{mask:03o}", "data loss", GOOD_AIR, "succeed", umask=mask,
          check=lambda d, want=want: (
              all((p.stat().st_mode & 0o777) == want for p in (d / "out").glob("*.json")),
              f"modes not {want:o}"))  # fmt: skip
    c("concurrent_two_runs", "data loss", GOOD_AIR, "succeed", concurrent=True,
      check=_complete_manifest)  # fmt: skip
    for t in (0.3, 1.0, 2.5):
        c(f"ctrl_c_at_{t}s", "data loss", GOOD_AIR, "interrupt", interrupt=t,
          setup=_earlier_run_setup, check=_earlier_run_intact)  # fmt: skip
    c("entk_out_is_file", "data loss", ["entk", "--steps", "5", *TINY, "--out", "@FILE@"])

    def input_copy(d: Path):
        shutil.copy(f["k50"], d / "in.npz")

    c("kernel_out_is_input", "data loss", ["kernel", "@DIR@/in.npz", "--out", "@DIR@/in.npz"],
      setup=input_copy, check=lambda d: (
          "x" in np.load(d / "in.npz").files, "the input was overwritten"))  # fmt: skip

    # --- hangs: estimates before work --------------------------------------------------------
    for key in ("k400k", "k100k", "bomb", "huge_header", "fifo"):
        c(f"kernel_{key}", "hang", ["kernel", f[key], "--out", "@OUT@.npz"])
    c("kernel_fc_deep_big", "hang", ["kernel", f["k100k"], "--arch", "fc", "--depth", "50",
                                     "--out", "@OUT@.npz"])  # fmt: skip
    c("kernel_small_time_limit", "hang", ["kernel", f["k50"], "--time-limit", "1e-9", "--out",
                                          "@OUT@.npz"])  # fmt: skip
    c("kernel_memory_budget_tiny", "hang", ["kernel", f["k50"], "--memory-budget", "1e-9",
                                            "--out", "@OUT@.npz"])  # fmt: skip
    for args in (["--steps", "1000000000"], ["--width", "200000", "--depth", "3"],
                 ["--width", "100000000"], ["--checkpoints", "100000", "--steps", "1000000"],
                 ["--depth", "10000"], ["--arch", "cnn", "--channels", "100000", "--dataset",
                  "digits"]):  # fmt: skip
        c("entk_" + "_".join(a.strip("-") for a in args), "hang", ["entk", *TINY, *args])
    for args in (["--epochs", "1000000000"], ["--seeds", "100000"], ["--widths", "100000000"],
                 ["--epochs", "100000", "--seeds", "1000"], ["--n-train", "100000000"]):  # fmt: skip
        c(
            "noisy_" + "_".join(a.strip("-") for a in args),
            "hang",
            ["noisy-labels", "--no-progress", *args],
        )
    c("theorem_steps_huge", "hang", ["theorem", "--steps", "1e12", "--no-progress"])
    c("distill_steps_huge", "hang", ["distill", "--steps", "1e9", *TINY])
    c("air_n_train_huge", "hang", ["air", "--dataset", "clusters", "--n-train", "10000000",
                                   "--no-progress"])  # fmt: skip

    # --- wrong refusals: valid inputs that must give a result ---------------------------------
    ok = "succeed"
    c("noisy_n_classes_2_n_test_20", "wrong refusal",
      ["noisy-labels", "--dataset", "digits", "--n-classes", "2", "--n-test", "20", "--n-train",
       "60", "--n-val", "20", "--epochs", "1", "--seeds", "2", "--methods", "plain",
       "--batch-size", "20", "--no-kernel-limit", "--no-progress"], ok)  # fmt: skip
    c("distill_alpha_space_then_file", "wrong refusal",
      ["distill", "--rule", "r3", "--alpha", "0.8", "0.9", f["binary"], "--steps", "10",
       "--no-progress"], ok)  # fmt: skip
    c(
        "distill_alpha_comma",
        "wrong refusal",
        ["distill", "--rule", "r1,r3", "--alpha", "0.5,0.9", "--steps", "10", *TINY],
        ok,
    )
    c(
        "distill_alpha_repeat",
        "wrong refusal",
        ["distill", "--rule", "r3", "--alpha", "0.5", "--alpha", "0.9", "--steps", "10", *TINY],
        ok,
    )
    c(
        "distill_rule_space_then_file",
        "wrong refusal",
        ["distill", "--rule", "r1", "r3", f["binary"], "--steps", "10", "--no-progress"],
        ok,
    )
    c("entk_at_comma", "wrong refusal", ["entk", "--at", "0,2,5", "--steps", "5", *TINY], ok)
    c(
        "entk_at_space_then_file",
        "wrong refusal",
        ["entk", "--at", "0", "2", f["binary"], "--steps", "5", "--no-progress"],
        ok,
    )
    c(
        "theorem_widths_comma",
        "wrong refusal",
        ["theorem", "--widths", "16,32", "--steps", "10", "--no-harder", "--no-progress"],
        ok,
    )
    c(
        "theorem_widths_space",
        "wrong refusal",
        ["theorem", "--widths", "16", "32", "--steps", "10", "--no-harder", "--no-progress"],
        ok,
    )
    for ds, n in (("clusters", 400), ("mnist1d", 800), ("digits", 1200), ("digits-binary", 700),
                  ("mnist1d-binary", 600)):  # fmt: skip
        c(
            f"air_large_n_{ds}_{n}",
            "wrong refusal",
            ["air", "--dataset", ds, "--n-train", str(n), "--steps", "20", "--no-progress"],
            ok,
        )
    c("air_digits_too_many", "wrong refusal", ["air", "--dataset", "digits", "--n-train", "5000",
                                              "--no-progress"])  # fmt: skip
    c("kernel_small", "wrong refusal", ["kernel", f["k50"], "--out", "@OUT@.npz"], ok)
    c("kernel_small_tiled_fc", "wrong refusal",
      ["kernel", f["k50"], "--arch", "fc", "--depth", "3", "--tile-size", "7", "--out",
       "@OUT@.npz"], ok)  # fmt: skip
    c("air_float32", "wrong refusal", ["air", "--dtype", "float32", *TINY, "--steps", "20"], ok)
    c("entk_defaults_small", "wrong refusal", ["entk", "--steps", "5", *TINY], ok)
    c("noisy_file_binary", "wrong refusal", ["noisy-labels", f["binary"], *NOISY_TINY], ok)
    c(
        "air_seed_max",
        "wrong refusal",
        ["air", "--seed", str(2**32 - 1), *TINY, "--steps", "20"],
        ok,
    )
    c(
        "noisy_time_limit_force",
        "wrong refusal",
        ["noisy-labels", "--dataset", "digits", *NOISY_TINY, "--time-limit", "1e-6", "--force"],
        ok,
    )

    # --- tracebacks / one-sentence refusals ------------------------------------------------
    c("entk_init_seed_neg", "traceback", ["entk", "--init-seed", "-1", "--steps", "5", *TINY])
    c(
        "entk_init_seed_huge",
        "traceback",
        ["entk", "--init-seed", str(2**40), "--steps", "5", *TINY],
    )
    c("entk_dataset_empty", "traceback", ["entk", "--dataset", "", "--steps", "5", *TINY])
    c("noisy_single_class", "traceback", ["noisy-labels", f["one_class"], *NOISY_TINY])
    c("noisy_dataset_empty", "traceback", ["noisy-labels", "--dataset", "", *NOISY_TINY])
    c("noisy_dataset_commas", "traceback", ["noisy-labels", "--dataset", ",", *NOISY_TINY])
    for opt, vals in (
        ("--lr", ("nan", "0", "-1", "inf")), ("--momentum", ("1", "-0.1", "nan")),
        ("--r1-alpha", ("1", "nan")), ("--r3-alpha", ("-1",)), ("--seeds", ("1", "0")),
        ("--epochs", ("0", "-1")), ("--batch-size", ("0", "100000")), ("--n-val", ("0",)),
        ("--warmup-epochs", ("-1", "1")), ("--n-classes", ("1", "0", "11")),
        ("--noise-rate", ("1", "-0.5", "nan")), ("--seed", ("-1",)), ("--widths", ("0", "a")),
        ("--time-limit", ("0", "-1", "nan")),
    ):  # fmt: skip
        for v in vals:
            c(f"noisy_{opt.strip('-')}_{v}", "traceback", ["noisy-labels", *NOISY_TINY, opt, v])
    for opt, vals in (
        ("--steps", ("0", "-1")), ("--checkpoints", ("1", "0")), ("--eta", ("0", "nan", "-1")),
        ("--width", ("0", "-5")), ("--depth", ("-1",)), ("--w-std", ("nan",)),
        ("--tile-size", ("0",)), ("--time-limit", ("0", "nan")), ("--at", ("-5", "0,-1", "a")),
    ):  # fmt: skip
        for v in vals:
            c(f"entk_{opt.strip('-')}_{v}", "traceback", ["entk", *TINY, "--steps", "5", opt, v]
              if opt != "--steps" else ["entk", *TINY, opt, v])  # fmt: skip
    for opt, vals in (
        ("--memory-budget", ("0", "-1", "nan", "inf")), ("--time-limit", ("0", "-1", "nan")),
        ("--tile-size", ("0", "-1")), ("--depth", ("-1",)),
    ):  # fmt: skip
        for v in vals:
            c(f"kernel_{opt.strip('-')}_{v}", "traceback", ["kernel", f["k50"], opt, v, "--out",
                                                             "@OUT@.npz"])  # fmt: skip
    for opt, vals in (("--alpha", ("0.8,nan", "0.8,", ",", "a,b")), ("--rule", ("r3,r9", "")),
                      ("--beta", ("-1,0.5",)), ("--xi", ("1,inf",))):  # fmt: skip
        for v in vals:
            c(f"distill_list_{opt.strip('-')}_{v or 'empty'}", "traceback",
              ["distill", *TINY, "--steps", "5", f"{opt}={v}"])  # fmt: skip
    for opt, vals in (("--widths", ("16,0", "16,a", "15,16")),):
        for v in vals:
            c(f"theorem_list_widths_{v}", "traceback",
              ["theorem", "--steps", "5", "--no-progress", f"{opt}={v}"])  # fmt: skip
    for env, expect in (
        ({"JAX_PLATFORMS": "cuda"}, "refuse"), ({"JAX_PLATFORMS": "tpu"}, "refuse"),
        ({"JAX_PLATFORMS": "bogus"}, "refuse"), ({"JAX_ENABLE_X64": "banana"}, "refuse"),
        ({"JAX_ENABLE_X64": ""}, "refuse"), ({"JAX_ENABLE_X64": "TRUE"}, "succeed"),
        ({"JAX_ENABLE_X64": "0"}, "succeed"), ({"PYTHONIOENCODING": "ascii"}, "succeed"),
        ({"PYTHONIOENCODING": "latin-1"}, "succeed"), ({"LANG": "C", "LC_ALL": "C"}, "succeed"),
    ):  # fmt: skip
        key = "_".join(f"{k}={v}" for k, v in env.items())
        c(f"env_{key}", "traceback", GOOD_AIR, expect, env=env)

    # --- round three, second pass (the independent set's open root causes) -----------------
    for env in ({"MPLBACKEND": "nosuchbackend"}, {"XLA_FLAGS": "--xla_this_flag_does_not_exist=1"},
                {"XLA_FLAGS": "garbage"}):  # fmt: skip
        key = "_".join(f"{k}={v}" for k, v in env.items())
        c(f"env_{key}", "traceback", GOOD_AIR, "refuse", env=env)
    c("env_XLA_FLAGS_valid", "wrong refusal", GOOD_AIR, "succeed",
      env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})  # fmt: skip
    for t in (4.0, 6.0):  # Ctrl-C during the run (start-up takes seconds on 2 shared cores)
        c(f"ctrl_c_at_{t}s", "data loss", ["air", "--dataset", "clusters", "--n-train", "2000",
                                          "--no-progress"], "interrupt", interrupt=t,
          setup=_earlier_run_setup, check=_earlier_run_intact)  # fmt: skip
    for cmd in ("air", "distill", "entk", "noisy-labels", "learning-curve", "predict"):
        c(f"{cmd.replace('-', '_')}_fifo", "hang", [cmd, f["fifo"], "--no-progress"])
    big = "500000"
    for name, argv in (
        ("air_num_steps_1e9", ["air", "--num-steps", "1e9"]),
        ("air_num_steps_int_1e9", ["air", "--num-steps", "1000000000"]),
        ("air_mnist1d_huge_dense", ["air", "--dataset", "mnist1d", "--n-train", big, "--solver",
                                    "dense"]),
        ("air_clusters_huge_auto", ["air", "--dataset", "clusters", "--n-train", big]),
        ("distill_mnist1d_huge_dense", ["distill", "--dataset", "mnist1d", "--n-train", big,
                                        "--solver", "dense"]),
        ("predict_clusters_huge", ["predict", "--dataset", "clusters", "--n-train", big]),
        ("predict_many_times_cov", ["predict", "--n-train", "1000", "--cov", "--time",
                                    ",".join(map(str, range(20000)))]),
        ("learning_curve_draws_1e9", ["learning-curve", "--draws", "1e9"]),
        ("learning_curve_mnist1d_huge", ["learning-curve", "--dataset", "mnist1d", "--n-train",
                                         big, "--n", "10"]),
    ):  # fmt: skip
        c(name, "hang", [*argv, "--no-progress"])
    return cases


API_V3 = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import numpy as np, jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
from ntk_air import checked, kernels, studies, report
from ntk_air import distillation as targets  # the 0.3 layout
from ntk_air.studies import EntkConfig
from ntk_air.studies import NoisyLabelsConfig
kf = kernels.two_layer_relu_kernel_fn()
x = np.random.default_rng(0).standard_normal((5, 3)); x /= np.linalg.norm(x, axis=1, keepdims=True)
x = jnp.asarray(x)
cases = {}
def case(name, expect, fn): cases[name] = (expect, fn)
R, S = "refuse", "succeed"
case("air_config_num_steps_1", R, lambda: studies.AIRConfig(num_steps=1))
case("air_config_force_int", R, lambda: studies.AIRConfig(force=1))
case("air_config_eta_nan", R, lambda: studies.AIRConfig(eta=float("nan")))
case("air_config_steps_neg_array", R, lambda: studies.AIRConfig(steps=np.array([-1.0, 2.0])))
case("air_config_steps_2d", R, lambda: studies.AIRConfig(steps=np.ones((2, 2))))
case("air_config_numpy_ok", S, lambda: studies.AIRConfig(eta=np.float32(0.1), num_steps=np.int64(5)))
case("distill_config_steps_0", R, lambda: studies.DistillConfig(steps=0))
case("distill_config_rules_str", R, lambda: studies.DistillConfig(rules="r3"))
case("distill_config_rules_bool", R, lambda: studies.DistillConfig(rules=True))
case("distill_config_alphas_nan", R, lambda: studies.DistillConfig(alphas=(float("nan"),)))
case("distill_config_soft_hard_off", R, lambda: studies.DistillConfig(soft=False, hard=False))
case("distill_config_schedule", R, lambda: studies.DistillConfig(schedule="cosine"))
case("distill_config_ramp_neg", R, lambda: studies.DistillConfig(ramp=-1.0))
case("distill_config_numpy_ok", S, lambda: studies.DistillConfig(alphas=(np.float32(0.5),), steps=np.int64(3)))
case("entk_config_checkpoints_neg", R, lambda: EntkConfig(checkpoints=[0, -5]))
case("entk_config_checkpoints_str", R, lambda: EntkConfig(checkpoints="abc"))
case("entk_config_test_str", R, lambda: EntkConfig(test="no"))
case("entk_config_eta_bool", R, lambda: EntkConfig(eta=True))
case("entk_config_ok", S, lambda: EntkConfig(steps=np.int64(10), checkpoints=np.array([0, 5])))
case("noisy_config_lr_bool", R, lambda: NoisyLabelsConfig(lr=True))
case("noisy_config_rates_np_ok", S, lambda: NoisyLabelsConfig(rates=(np.float32(0.2),)))
case("noisy_config_rates_scalar", R, lambda: NoisyLabelsConfig(rates=0.2))
case("noisy_config_rates_array_nan", R, lambda: NoisyLabelsConfig(rates=np.array([0.1, np.nan])))
case("noisy_config_seeds_bool", R, lambda: NoisyLabelsConfig(seeds=True))
case("noisy_config_widths_none", R, lambda: NoisyLabelsConfig(widths=None))
case("noisy_config_kernel_limit_int", R, lambda: NoisyLabelsConfig(kernel_limit=1))
case("noisy_config_momentum_np_ok", S, lambda: NoisyLabelsConfig(momentum=np.float64(0.5)))
case("theorem_config_widths_bool", R, lambda: studies.TheoremConfig(widths=(True, 4)))
case("theorem_config_widths_none", R, lambda: studies.TheoremConfig(widths=None))
case("theorem_config_alpha_np_ok", S, lambda: studies.TheoremConfig(alpha=np.float32(0.5)))
case("theorem_config_harder_str", R, lambda: studies.TheoremConfig(harder="no"))
case("targets_r3_hard_yes", R, lambda: targets.r3(0.9, hard="yes"))
case("targets_r1_lag_int", R, lambda: targets.r1(0.5, lag=1))
case("targets_r3_np_bool_ok", S, lambda: targets.r3(0.9, hard=np.bool_(True)))
case("studies_air_none", R, lambda: studies.air(None, kf))
case("studies_distill_str", R, lambda: studies.distill("clusters", kf))
case("studies_kernel_array", R, lambda: studies.kernel(np.ones((3, 3)), kf))
case("checked_run_nan", R, lambda: checked.run(jax.jit(lambda a: kf(a).ntk), x.at[0, 0].set(jnp.nan)))
case("checked_run_inf", R, lambda: checked.run(jax.jit(lambda a: kf(a).ntk), x.at[1, 1].set(jnp.inf)))
case("checked_run_norm2", R, lambda: checked.run(jax.jit(lambda a: kf(a).ntk), 2 * x))
case("checked_run_ok", S, lambda: checked.run(jax.jit(lambda a: kf(a).ntk), x))
case("checked_run_fc_nan", R, lambda: checked.run(jax.jit(lambda a: kernels.fc_kernel_fn(2)(a).ntk), x.at[0, 0].set(jnp.nan)))
def diag_exact():
    k = np.random.default_rng(1).integers(-8, 9, size=(5, 784)).astype(np.float64) / 64
    sq = (np.round(k * 64) ** 2).sum(1) / 64**2
    for t in (None, 2):
        h = kernels.two_layer_relu_kernel_fn(general=True, tile_size=t)(k).ntk
        if not (np.diag(np.asarray(h)) == sq / 2).all():
            raise AssertionError("diagonal of H∞ not exact")
    return h
case("kernel_diag_exact_784", S, diag_exact)
case("kernel_operator_tile_0", R, lambda: __import__("ntk_air.spectral", fromlist=["x"]).kernel_operator(kf, x, tile_size=0))
case("kernel_operator_tile_neg", R, lambda: __import__("ntk_air.spectral", fromlist=["x"]).kernel_operator(kf, x, tile_size=-2))
case("safe_file_name_traversal", S, lambda: None if report._files.safe_file_name("/" + "../" * 3 + "X") == "X" else 1 / 0)
out = {}
for name, (expect, fn) in cases.items():
    try:
        fn()
        outcome = "result"
    except (ValueError, TypeError) as err:
        outcome = "refusal" if str(err).strip() and "\n" not in str(err).strip() else "unclear refusal"
    except Exception as err:
        msg = str(err)
        outcome = "refusal" if name.startswith("checked_run") and ("NaN or inf" in msg or "unit norm" in msg) else f"traceback ({type(err).__name__}: {msg[:120]})"
    good = (outcome == "refusal") if expect == R else (outcome == "result")
    out[name] = {"outcome": outcome, "expect": expect, "good": good}
print(json.dumps(out))
"""


def run_v3_case(case: dict, root: Path, timeout: float) -> dict:
    """Run one round-three case in its own folder `root/name` and judge it."""
    import signal

    d = root / case["name"]
    d.mkdir(parents=True, exist_ok=True)
    out = d / "out"
    (d / "a_file").write_text("a file")
    argv = [
        a.replace("@OUT@", str(out)).replace("@FILE@", str(d / "a_file")).replace("@DIR@", str(d))
        for a in case["argv"]
    ]
    if "--out" not in argv and argv and argv[0] != "kernel":
        argv += ["--out", str(out)]
    if case.get("setup"):
        case["setup"](d)
    env = {**os.environ, "JAX_PLATFORMS": "cpu", **case.get("env", {})}
    cmd = [PY, "-m", "ntk_air", *argv]
    t0 = time.perf_counter()
    old_mask = os.umask(case["umask"]) if "umask" in case else None
    try:
        if case.get("concurrent"):
            procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=env) for _ in range(2)]  # fmt: skip
            results = [p.communicate(timeout=timeout) for p in procs]
            codes = [p.returncode for p in procs]
            code = 0 if 0 in codes and all(cd in (0, 2) for cd in codes) else max(codes)
            err = "\n".join(r[1] for r in results if r[1])
            err = "" if code == 0 else err
        elif case.get("interrupt") is not None:
            # a background job ignores SIGINT and children inherit that: start the child with
            # the default (a handled signal resets at exec), what a terminal's Ctrl-C meets
            previous = signal.signal(signal.SIGINT, signal.default_int_handler)
            try:
                p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)  # fmt: skip
            finally:
                signal.signal(signal.SIGINT, previous)
            time.sleep(case["interrupt"])
            p.send_signal(signal.SIGINT)
            _, err = p.communicate(timeout=timeout)
            code = p.returncode
        else:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
            code, err = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired:
        code, err = "timeout", ""
    finally:
        if old_mask is not None:
            os.umask(old_mask)
    seconds = time.perf_counter() - t0
    lines = [ln for ln in err.splitlines() if ln.strip() and "Warning" not in ln
             and not ln.startswith("  warnings.warn")]  # fmt: skip
    if code == "timeout":
        outcome = "hang"
    elif isinstance(code, int) and code < 0:
        outcome = f"crash (signal {-code})"
    elif "Traceback" in err:
        outcome = "traceback"
    elif code == 0:
        outcome = "result"
    elif code == 130:
        outcome = "interrupted" if len(lines) == 1 else "interrupted (not one line)"
    elif code in (1, 2) and lines:
        outcome = "refusal"
    else:
        outcome = f"unexpected exit {code}"
    expect = case["expect"]
    good = {
        "refuse": outcome == "refusal",
        "succeed": outcome == "result",
        "either": outcome in ("refusal", "result"),
        "interrupt": outcome in ("interrupted", "result"),
    }[expect]
    note = ""
    if good and outcome == "result" and (out.is_dir() and argv[0] != "kernel"):
        good, note = _complete_manifest(d)
    if good and case.get("check"):
        good, note = case["check"](d)
    return {
        "name": case["name"],
        "group": case["group"],
        "expect": expect,
        "argv": argv,
        "exit": code,
        "outcome": outcome
        if good
        else f"{outcome} — against expectation {expect}" + (f" ({note})" if note else ""),
        "good": bool(good),
        "seconds": round(seconds, 2),
        "stderr_last_line": lines[-1] if lines else "",
    }


def run_api_v3(timeout) -> list[dict]:
    proc = subprocess.run([PY, "-c", API_V3], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "JAX_PLATFORMS": "cpu"})  # fmt: skip
    if proc.returncode != 0:
        return [{"name": "v3_api_group", "group": "traceback", "good": False,
                 "outcome": f"crash (exit {proc.returncode})", "stderr": proc.stderr[-2000:]}]  # fmt: skip
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    return [{"name": f"v3_api_{k}", "group": "traceback" if v["expect"] == "refuse" else
             "wrong refusal", **v} for k, v in res.items()]  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "hostile_inputs.json"))
    p.add_argument("--timeout", type=float, default=240.0, help="seconds per CLI case (a hang)")
    p.add_argument("--only", default=None, help="run only cases whose name starts with this")
    p.add_argument("--group", default=None, help="round-three cases of this group only")
    p.add_argument(
        "--per-group", type=int, default=None, help="round three: the first N cases of each group"
    )
    p.add_argument("--skip-v3", action="store_true", help="skip the round-three cases")
    p.add_argument("--skip-v2", action="store_true", help="skip the earlier cases")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="ntk_air_hostile_"))
    try:
        files = make_files(tmp)
        cases = [] if args.skip_v2 else cli_cases(files, tmp / "out")
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
        if not args.skip_v2 and (not args.only or args.only.startswith("api")):
            api = [judge(r) for r in run_api(args.timeout * 4)]
            results += api
            for r in api:
                print(f"{r['name']}: {r['outcome']} {r.get('message', '')[:120]}", flush=True)
        for r in results:
            r["good"] = r["outcome"] in GOOD
        if not args.skip_v3:
            v3 = v3_cases(_v3_files(tmp))
            if args.only:
                v3 = [c for c in v3 if c["name"].startswith(args.only)]
            if args.group:
                v3 = [c for c in v3 if c["group"] == args.group]
            if args.per_group:
                v3 = [c for c in v3 if sum(
                    o["group"] == c["group"] for o in v3[: v3.index(c)]) < args.per_group]  # fmt: skip
            for i, case in enumerate(v3):
                r = run_v3_case(case, tmp / "v3", args.timeout)
                results.append(r)
                print(f"[v3 {i + 1}/{len(v3)}] {r['name']}: {r['outcome']} ({r['seconds']} s) "
                      f"{r['stderr_last_line'][:110]}", flush=True)  # fmt: skip
            if not args.only or "v3_api".startswith(args.only[:6]):
                for r in run_api_v3(args.timeout * 4):
                    results.append(r)
                    print(f"{r['name']}: {r['outcome']}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    good = [r for r in results if r["good"]]
    summary = {
        "cases": len(results),
        "good": len(good),
        "good_fraction": len(good) / max(1, len(results)),
        "by_outcome": {
            o: sum(r["outcome"] == o for r in results)
            for o in sorted({r["outcome"] for r in results})
        },
        "bad": [r for r in results if not r["good"]],
        "by_group": {
            g: {
                "cases": sum(r.get("group") == g for r in results),
                "good": sum(r.get("group") == g and r["good"] for r in results),
            }
            for g in ("security", "data loss", "hang", "wrong refusal", "traceback")
        },  # fmt: skip
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
