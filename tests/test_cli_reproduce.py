"""`ntk-air reproduce`: one report folder, one eigendecomposition shared by its sections."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from ntk_air import cli


def test_reproduce_report_folder(tmp_path, x64, capsys):
    """One report folder (one run): the index links what exists and opens with the headline
    numbers of its sections; the sections share one decomposition."""
    out = tmp_path / "report"
    code = cli.main(
        ["reproduce", "--sections", "kernel,air,distill", "--n-train", "60", "--out", str(out)]
        + ["--no-progress"]
    )
    assert code == 0
    index = (out / "index.md").read_text()
    assert "incomplete" not in index
    # the index opens with the headline numbers
    table = index[index.index("## Results") : index.index("## kernel")]
    distill = json.loads((out / "distill" / "distill.json").read_text())
    best = distill["best_rule"]
    assert f"{best['final_dist']:.3g} ({best['label']})" in table
    assert f"{distill['plain_gd']['best_early_stop_dist']:.3g}" in table
    air = json.loads((out / "air" / "air.json").read_text())
    assert f"clean {air['modes_holding']['clean']['0.9']} vs noise" in table
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and "distill/distill.json" in manifest["files"]
    for rel in manifest["files"]:
        assert (out / rel).is_file()
    # every link in the index points to a file that exists
    links = re.findall(r"\]\(([^)]+)\)", index)
    assert links and all((out / link).is_file() for link in links), links
    kernel = json.loads((out / "kernel" / "kernel.json").read_text())
    # the sections share one decomposition: identical eigenvalues, and they are those of H∞
    np.testing.assert_array_equal(kernel["eigenvalues"], air["eigenvalues"])
    with np.load(out / "kernel" / "kernel.npz") as f:
        lam = np.linalg.eigvalsh(f["ntk"])[::-1]
    np.testing.assert_allclose(air["eigenvalues"], lam, rtol=1e-9, atol=1e-12)
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["sections"]) == {"kernel", "air", "distill"}


def test_unknown_section_is_a_clear_error(tmp_path, capsys):
    code = cli.main(["reproduce", "--out", str(tmp_path), "--sections", "kernel,nope"])
    assert code == 2
    assert "unknown section(s) ['nope']" in capsys.readouterr().err


@pytest.mark.parametrize(
    "bad", [["--noise-rate", "1.5"], ["--arch", "fc", "--depth", "-1"], ["--theorem-steps", "0"]]
)
def test_bad_options_are_clear_errors(tmp_path, capsys, bad):
    code = cli.main(["reproduce", "--out", str(tmp_path), "--sections", "kernel", *bad])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "error:" in err


@pytest.mark.slow
def test_theorem_section_runs_the_steps_it_is_given(tmp_path, capsys):
    """The report's theorem section runs --theorem-steps (default 2 000), and the index says so."""
    import json

    out = tmp_path / "rep"
    code = cli.main(
        ["reproduce", "--out", str(out), "--sections", "theorem", "--theorem-steps", "40"]
        + ["--no-progress"]
    )
    assert code == 0, capsys.readouterr().err
    th = json.loads((out / "theorem" / "theorem.json").read_text())
    assert th["steps"] == 40
    assert "with 40 GD steps per run" in (out / "index.md").read_text()
