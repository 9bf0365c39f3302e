"""The report layer: files written atomically, a manifest written last, stale files removed,
results JSON byte-identical between runs (timings apart), and an index that states the result."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ntk_air import cli, report


def test_a_failed_write_leaves_the_previous_file_intact(tmp_path):
    w = report.ReportWriter(tmp_path / "out")
    w.json("a.json", {"v": 1})

    def broken(f):
        f.write(b'{"v": ')
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        report.atomic_write(w.path("a.json"), broken)
    assert json.loads(w.path("a.json").read_text()) == {"v": 1}
    assert sorted(p.name for p in w.staging.iterdir()) == ["a.json"]  # no temp left
    w.finish({})
    assert json.loads((tmp_path / "out" / "a.json").read_text()) == {"v": 1}
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.name[0] != ".") == [
        "a.json",
        "manifest.json",
    ]


def test_manifest_is_written_last_and_stale_files_are_removed(tmp_path):
    out = tmp_path / "out"
    w = report.ReportWriter(out)
    w.json("a.json", {})
    w.text("old.md", "from the first run")
    assert not (out / "manifest.json").exists()
    assert w.finish({"command": "x"})["files"] == ["a.json", "old.md"]
    (out / "mine.txt").write_text("a user's own file")
    w = report.ReportWriter(out)
    w.json("a.json", {"second": True})
    # staged until it finishes: the earlier run stays complete (its manifest and files)
    assert json.loads((out / "manifest.json").read_text())["files"] == ["a.json", "old.md"]
    assert json.loads((out / "a.json").read_text()) == {}
    manifest = w.finish({"command": "x"})
    assert manifest["removed_stale"] == ["old.md"]
    assert not (out / "old.md").exists()
    assert (out / "mine.txt").exists()  # never touched: not ours
    assert json.loads((out / "manifest.json").read_text())["complete"] is True


def test_output_path_problems_are_caught_before_work(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(report.OutputError, match="not a folder"):
        report.ReportWriter(tmp_path / "file")
    with pytest.raises(report.OutputError, match="is a folder"):
        report.check_output_file(tmp_path)


def test_a_device_or_pipe_is_never_replaced_by_an_output_file(tmp_path, capsys):
    """Renaming a finished file onto `--out /dev/full` replaced the device itself (as root)."""
    import os
    import stat

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(report.OutputError, match="not a regular file"):
        report.check_output_file(fifo)
    with pytest.raises(report.OutputError, match="not a regular file"):
        report.atomic_write(fifo, lambda f: f.write(b"x"))
    x = tmp_path / "x.npz"
    np.savez(x, x=np.eye(3))
    code = cli.main(["kernel", str(x), "--out", str(fifo)])
    assert code == 2 and "not a regular file" in capsys.readouterr().err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # still the pipe


def test_a_report_place_that_is_a_folder_is_refused_before_anything_moves(tmp_path):
    """manifest.json (or a report file) that is a folder: refused when the writer opens, or at
    finish before any file is moved, so the earlier run's files stay as they were."""
    out = tmp_path / "out"
    w = report.ReportWriter(out)
    w.json("air.json", {"eta": 1})
    w.json("timings.json", {"seconds": 1})
    w.finish({"command": "air"})
    before = (out / "timings.json").read_text()
    (out / "manifest.json").unlink()
    (out / "manifest.json").mkdir()
    with pytest.raises(report.OutputError, match="not a regular file"):
        report.ReportWriter(out)
    (out / "manifest.json").rmdir()
    (out / "air.json").unlink()
    (out / "air.json").mkdir()
    w = report.ReportWriter(out)
    w.json("timings.json", {"seconds": 2})
    w.json("air.json", {"eta": 2})
    with pytest.raises(report.OutputError, match="not a regular file"):
        w.finish({"command": "air"})
    w.abort()
    assert (out / "timings.json").read_text() == before


def _run(argv, capsys):
    code = cli.main([*argv, "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_results_json_is_byte_identical_between_runs(tmp_path, x64, capsys):
    args = ["air", "--dataset", "clusters", "--n-train", "40", "--n-test", "20", "--steps", "300"]
    assert _run([*args, "--out", str(tmp_path / "a")], capsys)[0] == 0
    assert _run([*args, "--out", str(tmp_path / "b")], capsys)[0] == 0
    a, b = (tmp_path / d / "air.json" for d in "ab")
    assert a.read_bytes() == b.read_bytes()
    assert "seconds" not in json.loads(a.read_text())
    assert set(json.loads((tmp_path / "a" / "timings.json").read_text())["seconds"]) == {
        "study",
        "report",
    }


def test_an_interrupted_run_says_so_in_one_line_and_keeps_earlier_files(
    tmp_path, x64, capsys, monkeypatch
):
    out = tmp_path / "air"
    args = ["air", "--n-train", "40", "--steps", "100", "--out", str(out)]
    assert _run(args, capsys)[0] == 0
    before = (out / "air.json").read_bytes()

    from ntk_air import studies

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(studies, "air", interrupted)
    code, _, err = _run(args, capsys)
    assert code == 130
    assert err.count("\n") == 1 and "interrupted" in err
    assert (out / "air.json").read_bytes() == before
    # the unfinished run changed nothing: the earlier run is complete, nothing staged is left
    assert json.loads((out / "manifest.json").read_text())["complete"] is True
    assert not [p for p in out.iterdir() if p.name.startswith(".ntk-air-staging")]


def test_index_marks_an_unfinished_report():
    text = report.render_index({}, {}, title="t", context=["c"], complete=False)
    from ntk_air.report.index import _INCOMPLETE_BANNER

    assert _INCOMPLETE_BANNER in text
    rows = {"air": [("q", "1.0", "m")]}
    assert "| air | q | 1.0 | m |" in report.render_index(
        {}, rows, title="t", context=[], complete=True
    )


def test_save_predictions_writes_the_exact_name(tmp_path, x64, capsys):
    pred = tmp_path / "preds"  # no .npz suffix: written as given, recorded as given
    code, _, _ = _run(
        [
            "distill",
            "--rule",
            "r3",
            "--hard",
            "--steps",
            "20",
            "--rounds",
            "0",
            "--n-train",
            "40",
            "--save-predictions",
            str(pred),
            "--out",
            str(tmp_path / "d"),
        ],
        capsys,
    )
    assert code == 0
    assert pred.exists() and not (tmp_path / "preds.npz").exists()
    rep = json.loads((tmp_path / "d" / "distill.json").read_text())
    assert rep["files"] == [str(pred)]
    with np.load(pred) as f:
        assert f["u"].shape == (2, 40) and list(f["labels"]) == ["plain GD", "R3 hard α=0.9"]


def test_save_predictions_onto_the_data_file_is_refused(tmp_path, capsys):
    """`distill data.npz --save-predictions data.npz` would replace the user's input."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 4))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    path = tmp_path / "data.npz"
    np.savez(path, x=x, y=np.sign(x[:, 0]))
    before = path.read_bytes()
    code = cli.main(["distill", str(path), "--save-predictions", str(path), "--out",
                     str(tmp_path / "o"), "--no-progress", "--steps", "10"])  # fmt: skip
    assert code == 2 and "is the data file" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_a_refused_run_leaves_no_folder_and_no_lock_it_made(tmp_path, capsys):
    from ntk_air.report._files import LOCK

    # a writer aborted: the folders it made (a/b/c) and its lock file go; what existed stays
    w = report.ReportWriter(tmp_path / "a" / "b" / "c")
    assert (tmp_path / "a" / "b" / "c" / LOCK).exists()
    w.abort()
    assert not (tmp_path / "a").exists()
    # the command line: refused after its writer opened (the time estimate), into a new folder
    # and into an existing empty one
    argv = ["distill", "--n-train", "20", "--steps", "1e12", "--no-progress", "--out"]
    assert cli.main([*argv, str(tmp_path / "new")]) == 2
    assert "estimated to take" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    (tmp_path / "kept").mkdir()
    assert cli.main([*argv, str(tmp_path / "kept")]) == 2
    assert list((tmp_path / "kept").iterdir()) == []
    # a finished run keeps its lock file (taken again by the next run); a refused run after it
    # leaves the folder as the finished run left it
    done = report.ReportWriter(tmp_path / "done")
    done.json("x.json", {"a": 1})
    done.finish({})
    before = sorted(p.name for p in (tmp_path / "done").iterdir())
    assert LOCK in before
    assert cli.main([*argv, str(tmp_path / "done")]) == 2
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == before
