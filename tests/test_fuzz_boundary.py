"""Hypothesis fuzzing of the configs and the output-folder lifecycle (issue 21): every config
either constructs or refuses with one ValueError/TypeError naming its parameter; whatever a
manifest claims, a run removes only the plain report files an earlier run wrote, inside the
folder; a refused or interrupted run leaves the earlier run complete."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ntk_air import cli, report, studies
from ntk_air import distillation as targets
from ntk_air.studies import EntkConfig, NoisyLabelsConfig

SETTINGS = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Values of every kind a notebook or a parsed file may hand a config.
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.builds(np.float32, st.floats(-10, 10, width=32)),
    st.builds(np.int64, st.integers(-100, 100)),
    st.lists(st.integers(-3, 30), max_size=3).map(tuple),
    st.just(np.array([1.0, np.nan])),
)
CONFIGS = {
    "AIRConfig": (studies.AIRConfig, ("steps", "num_steps", "eta", "force")),
    "DistillConfig": (
        studies.DistillConfig,
        ("rules", "alphas", "ridge", "rounds", "steps", "eta", "record_every", "ramp", "soft"),
    ),
    "EntkConfig": (EntkConfig, ("steps", "checkpoints", "num_checkpoints", "eta", "test")),
    "NoisyLabelsConfig": (NoisyLabelsConfig, ("rates", "seeds", "epochs", "lr", "momentum")),
    "TheoremConfig": (studies.TheoremConfig, ("widths", "steps", "alpha", "kappa", "harder")),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
@SETTINGS
@given(data=st.data())
def test_configs_construct_or_refuse_naming_the_parameter(name, data):
    cls, fields = CONFIGS[name]
    field = data.draw(st.sampled_from(fields))
    value = data.draw(values)
    try:
        cls(**{field: value})
    except (ValueError, TypeError) as err:
        msg = str(err)
        assert msg and "\n" not in msg.strip()
        # the parameter's name (or, for a rule's own range, the rule's parameter)
        assert field.rstrip("s") in msg or field in msg, (field, value, msg)


@pytest.mark.parametrize(
    "make",
    [
        lambda: studies.AIRConfig(num_steps=1),
        lambda: studies.AIRConfig(force=1),
        lambda: studies.DistillConfig(steps=0),
        lambda: studies.DistillConfig(soft=False, hard=False),
        lambda: EntkConfig(checkpoints=[0, -5]),
        lambda: NoisyLabelsConfig(lr=True),
        lambda: NoisyLabelsConfig(seeds=True),
        lambda: studies.TheoremConfig(widths=(True, 4)),
        lambda: targets.r3(0.9, hard="yes"),
        lambda: studies.air(None, None),
    ],
)
def test_bad_configs_are_refused(make):
    with pytest.raises((ValueError, TypeError)):
        make()


def test_numpy_scalars_are_accepted():
    assert NoisyLabelsConfig(rates=(np.float32(0.2),)).rates[0] == np.float32(0.2)
    assert studies.TheoremConfig(alpha=np.float32(0.5), steps=np.int64(10)).steps == 10
    assert studies.AIRConfig(eta=np.float64(0.1), num_steps=np.int32(5)).num_steps == 5
    assert studies.DistillConfig(alphas=(np.float32(0.5),), steps=np.int64(4)).steps == 4


# ---------------------------------------------------------------------------------------------
# The output lifecycle
# ---------------------------------------------------------------------------------------------

names = st.one_of(
    st.text(alphabet="ab./_-\\~", min_size=1, max_size=8),
    st.sampled_from(
        ["../outside.txt", "/etc/passwd", "..", ".", "", "a/" + "../" * 2 + "b", ".hidden"]
    ),
)
claims = st.one_of(
    st.text(max_size=5),
    st.integers(),
    st.none(),
    st.lists(st.one_of(names, st.integers(), st.none()), max_size=6),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=3),
)


@SETTINGS
@given(files=claims)
def test_clean_up_removes_only_plain_report_files_whatever_a_manifest_claims(tmp_path, files):
    root = tmp_path / "case"
    outside = tmp_path / "outside.txt"
    root.mkdir(exist_ok=True)
    outside.write_text("not ours")
    user = {}
    for name in ("a", "b", "c", "abc", "mine.txt", "_", "b.a"):
        (root / name).write_text(name)
        user[name] = name
    (root / "manifest.json").write_text(json.dumps({"complete": True, "files": files}))
    w = report.ReportWriter(root)
    w.json("new.json", {})
    manifest = w.finish({"command": "fuzz"})
    for rel in manifest["removed_stale"]:  # removed: only names the old manifest listed
        assert isinstance(files, list) and rel in files and "/" not in rel or rel.count("/") == 1
        assert ".." not in rel.split("/") and not rel.startswith((".", "/"))
        user.pop(rel, None)
    for name, text in user.items():
        assert (root / name).read_text() == text
    assert outside.read_text() == "not ours"
    assert (root / "new.json").exists() and (root / "manifest.json").exists()


def test_a_string_manifest_deletes_nothing(tmp_path):
    for name in "abc":
        (tmp_path / name).write_text(name)
    (tmp_path / "manifest.json").write_text(json.dumps({"files": "abc"}))
    w = report.ReportWriter(tmp_path)
    w.json("x.json", {})
    assert w.finish({})["removed_stale"] == []
    assert sorted(p.name for p in tmp_path.iterdir() if p.name in "abc") == ["a", "b", "c"]


def test_a_file_the_user_changed_is_not_removed(tmp_path):
    w = report.ReportWriter(tmp_path)
    w.text("old.md", "ours")
    w.finish({})
    (tmp_path / "old.md").write_text("the user's edit")
    w = report.ReportWriter(tmp_path)
    w.json("x.json", {})
    assert w.finish({})["removed_stale"] == []
    assert (tmp_path / "old.md").read_text() == "the user's edit"


def test_two_writers_on_one_folder_do_not_interleave(tmp_path):
    first = report.ReportWriter(tmp_path)
    with pytest.raises(report.OutputError, match="another ntk-air run"):
        report.ReportWriter(tmp_path)
    first.finish({})
    report.ReportWriter(tmp_path).abort()  # free again


def test_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        w = report.ReportWriter(tmp_path)
        w.json("a.json", {})
        w.finish({})
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "manifest.json").stat().st_mode & 0o777 == 0o644


def test_a_refused_run_keeps_the_earlier_manifest(tmp_path, capsys, x64):
    out = tmp_path / "air"
    args = ["air", "--n-train", "30", "--steps", "50", "--no-progress", "--out", str(out)]
    assert cli.main(args) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    for bad in (["--memory-budget", "-1"], ["--eta", "nan"], ["--num-steps", "1"]):
        assert cli.main([*args, *bad]) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    err = capsys.readouterr().err
    assert "--num-steps must be" in err  # the option, not the config's parameter


def test_save_predictions_may_not_overwrite_a_report_file(tmp_path, capsys, x64):
    out = tmp_path / "d"
    for target in ("distill.json", "manifest.json"):
        code = cli.main(
            ["distill", "--steps", "5", "--n-train", "20", "--no-progress", "--out", str(out)]
            + ["--save-predictions", str(out / target)]
        )
        assert code == 2
        assert "would overwrite a file of the report" in capsys.readouterr().err
    assert not (out / "manifest.json").exists()


@pytest.mark.parametrize(
    "env, text",
    [
        ({"JAX_ENABLE_X64": "banana"}, "JAX_ENABLE_X64"),
        ({"JAX_PLATFORMS": "cuda"}, "JAX_PLATFORMS"),
        ({"XLA_FLAGS": "--xla_this_flag_does_not_exist=1"}, "XLA_FLAGS"),
    ],
)
def test_environment_problems_are_one_sentence(tmp_path, env, text):
    if env.get("JAX_PLATFORMS") == "cuda":
        pytest.importorskip("jax")
        import jax

        if any(d.platform == "gpu" for d in jax.devices()):
            pytest.skip("a GPU is present")
    proc = subprocess.run(
        [sys.executable, "-m", "ntk_air", "air", "--n-train", "20", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and text in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_backend_matplotlib_does_not_know_does_not_stop_the_command_line(tmp_path):
    # the CLI writes its figures to files with Agg; the library's import still names the variable
    out = tmp_path / "o"
    argv = ["air", "--n-train", "20", "--steps", "20", "--no-progress", "--out", str(out)]
    env = {**os.environ, "MPLBACKEND": "nosuchbackend"}
    proc = subprocess.run(
        [sys.executable, "-m", "ntk_air", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "air_spectrum.png").stat().st_size > 0
    lib = subprocess.run(
        [sys.executable, "-c", "import ntk_air.plots"], capture_output=True, text=True, env=env
    )
    assert lib.returncode == 1 and "MPLBACKEND='nosuchbackend'" in lib.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
def test_standard_output_on_a_full_device_still_writes_the_report(tmp_path):
    out = tmp_path / "o"
    argv = ["air", "--n-train", "20", "--steps", "20", "--no-progress", "--out", str(out)]
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "ntk_air", *argv],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    assert proc.returncode == 0, proc.stderr
    assert "standard output could not be written (No space left on device)" in proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    assert len(json.loads((out / "air.json").read_text())["eigenvalues"]) == 20


def test_closed_standard_output_still_writes_the_report(tmp_path):
    # fd 1 closed (`>&-`): Python starts with sys.stdout None; the printed lines go nowhere
    out = tmp_path / "o"
    argv = ["air", "--n-train", "20", "--steps", "20", "--no-progress", "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, "-m", "ntk_air", *argv],
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
        preexec_fn=lambda: os.close(1),  # noqa: PLW1509 - the child's own fd 1, before exec
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    assert len(json.loads((out / "air.json").read_text())["eigenvalues"]) == 20


def test_non_ascii_output_on_an_ascii_terminal_does_not_crash(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ntk_air", "air", "--n-train", "20", "--steps", "20"]
        + ["--no-progress", "--out", str(tmp_path / "o")],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "ascii"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert b"\\u2016" in proc.stdout  # ‖ escaped, not fatal


def test_a_forged_manifest_without_our_checksums_removes_nothing(tmp_path):
    """Clean-up removes a file only when the earlier manifest recorded its checksum (a file the
    toolkit wrote) and it is a report file (.json .png .md .npz): a listed note of the user's
    stays, and so does a report-named file without a checksum."""
    (tmp_path / "my_notes.txt").write_text("mine")
    (tmp_path / "old.json").write_text("{}")
    (tmp_path / "manifest.json").write_text(
        json.dumps({"complete": True, "files": ["my_notes.txt", "old.json"]})
    )
    w = report.ReportWriter(tmp_path)
    w.json("x.json", {})
    assert w.finish({})["removed_stale"] == []
    assert (tmp_path / "my_notes.txt").read_text() == "mine"
    assert (tmp_path / "old.json").exists()


def test_a_manifest_nested_too_deep_is_ignored(tmp_path):
    (tmp_path / "manifest.json").write_text("[" * 5000 + "]" * 5000)
    w = report.ReportWriter(tmp_path)
    w.json("x.json", {})
    assert w.finish({})["files"] == ["x.json"]


def test_links_and_a_bad_lock_are_refused_before_any_work(tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text("keep")
    out = tmp_path / "o"
    out.mkdir()
    (out / "air.json").symlink_to(outside)
    with pytest.raises(report.OutputError, match="symbolic link"):
        report.ReportWriter(out)
    assert outside.read_text() == "keep"
    other = tmp_path / "p"
    (other / ".ntk-air.lock").mkdir(parents=True)
    with pytest.raises(report.OutputError, match="lock"):
        report.ReportWriter(other)


def test_argparse_refusals_are_one_line(capsys):
    from ntk_air import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(["air", "--seed", "1.5"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--seed" in err[0] and "usage" not in err[0]


def _cli_process(args, env=None, cwd=None):
    # A background job ignores SIGINT and its children inherit that: the child must start with
    # the default, what a terminal user's Ctrl-C meets (a handled signal resets at exec).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "ntk_air", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})},
            cwd=cwd,
        )
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_ends_the_command_promptly_in_one_line(tmp_path):
    """Ctrl-C at ~1 s (start-up: imports, XLA's gc callback) and at ~3 s (start-up or the run)
    ends the command with exit 130, one line, no traceback, within the grace period."""
    from ntk_air import _env

    args = ["air", "--dataset", "clusters", "--n-train", "3000", "--no-progress"]
    procs = [(_cli_process(args + ["--out", str(tmp_path / f"o{t}")]), t) for t in (1.0, 3.0)]
    t0 = time.monotonic()
    for proc, at in procs:
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        proc.send_signal(signal.SIGINT)
    for proc, at in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, (at, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, (at, err)
        assert "interrupted" in err
    assert time.monotonic() - t0 < 3.0 + _env.GRACE_SECONDS + 10


SWALLOWED = """
import gc, signal
from ntk_air import _env
signal.signal(signal.SIGINT, _env._interrupted_early)  # what the command's start-up installs
assert _env.interrupts_raise()
fired = []
def landed_in_a_callback(phase, info):  # a Ctrl-C landing inside XLA's gc callback
    if not fired:
        fired.append(1)
        raise KeyboardInterrupt
gc.callbacks.append(landed_in_a_callback)
try:
    gc.collect()
    for _ in range(10**7):
        pass
    print("swallowed")
except KeyboardInterrupt:
    _env.interrupt_handled()
    print("raised")
"""


def test_a_ctrl_c_swallowed_by_a_gc_callback_is_raised_again():
    proc = subprocess.run(
        [sys.executable, "-c", SWALLOWED], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "raised" and "Traceback" not in proc.stderr


def test_a_clone_folder_named_ntk_air_does_not_shadow_the_package(tmp_path):
    """Python running from the folder above a clone named ntk_air finds the clone as a namespace
    portion; the package on a sys.path entry (PYTHONPATH, or what `make`'s compat editable
    install writes) is a regular package and wins."""
    import ntk_air

    root = Path(ntk_air.__file__).resolve().parents[1]
    (tmp_path / "ntk_air").mkdir()
    (tmp_path / "ntk_air" / "README.md").write_text("a clone of the repository")
    proc = subprocess.run(
        [sys.executable, "-c", "import ntk_air; print(ntk_air.__file__, ntk_air.kernels.__name__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(root)},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(root / "ntk_air" / "__init__.py"), "ntk_air.kernels"]
    assert "editable_mode=compat" in (root / "Makefile").read_text()


BIG = "500000"


@pytest.mark.parametrize(
    "args, text",
    [
        (["air", "--num-steps", "1e9"], "10⁹ steps"),
        (
            ["air", "--dataset", "mnist1d", "--n-train", BIG, "--solver", "dense"]
            + ["--memory-budget", "1000"],  # the top-k path fits, whatever memory is free now
            "--solver topk",
        ),
        # A budget above any machine's: the time limit refuses it, whatever memory is free.
        (["air", "--dataset", "clusters", "--n-train", BIG, "--memory-budget", "1000"], "limit"),
        (
            ["distill", "--dataset", "clusters", "--n-train", BIG, "--solver", "dense"]
            + ["--memory-budget", "1000"],
            "topk",
        ),
        (["predict", "--dataset", "clusters", "--n-train", BIG], "--n-train"),
        (
            ["predict", "--n-train", "1000", "--cov", "--time", ",".join(map(str, range(40000)))],
            "--time",
        ),
        (["learning-curve", "--draws", "1e9"], "--draws"),
        (["noisy-labels", "--dataset", "mnist1d", "--n-train", "100000000"], "--n-train"),
    ],
)
def test_huge_runs_are_refused_with_the_estimate_before_work(tmp_path, capsys, x64, args, text):
    """Huge step, time or draw counts and huge generated data: one sentence with the estimate
    (GB, or the time against the limit) and what would fit, exit 2, before the data are
    generated or K is formed."""
    out = tmp_path / "o"
    t0 = time.monotonic()
    assert cli.main([*args, "--no-progress", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and text in err, err
    assert "GB" in err
    assert time.monotonic() - t0 < 60  # 500 000 rows of mnist1d alone take minutes
    assert not out.exists() or not [p for p in out.iterdir() if not p.name.startswith(".")]


@pytest.mark.parametrize(
    "command", ["air", "distill", "entk", "noisy-labels", "learning-curve", "predict", "kernel"]
)
def test_a_fifo_directory_or_device_as_data_file_is_one_sentence(tmp_path, capsys, command):
    fifo = tmp_path / "in.npz"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.npz"
    folder.mkdir()
    for path, kind in ((fifo, "FIFO"), (folder, "directory"), ("/dev/null", "device")):
        out = tmp_path / ("k.npz" if command == "kernel" else "o")
        assert cli.main([command, str(path), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and kind in err, err


@pytest.mark.parametrize(
    "args, option",
    [
        (["air", "--tile-size", "0"], "--tile-size"),
        (["air", "--noise-rate", "1.5"], "--noise-rate"),
        (["distill", "--beta", "2", "--rule", "bootstrap"], "--beta"),
        (["distill", "--alpha", "1.5", "--rule", "r3"], "--alpha"),
    ],
)
def test_refusals_of_the_library_name_the_option(tmp_path, capsys, x64, args, option):
    assert cli.main([*args, "--no-progress", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"error: {option} " in err, err


def test_noisy_labels_refusals_name_the_option(tmp_path, capsys, x64):
    base = ["noisy-labels", "--epochs", "1", "--seeds", "2", "--no-progress"]
    for extra, option in (
        (["--arch", "cnn", "--input-shape", "9x9x1", "--dataset", "digits"], "--input-shape"),
        (["--dataset", "digits,,mnist1d"], "--dataset"),
    ):
        assert cli.main([*base, *extra, "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and f"error: {option}" in err, err
