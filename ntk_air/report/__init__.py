"""The report layer: a study's result → JSON (one encoder), figures (through `ntk_air.plots`) and,
for the whole study, index.md with a results table. Files are written atomically into a
`ReportWriter` folder whose `manifest.json` is written last.

    >>> writer = report.ReportWriter(tmp_path / "air_out")
    >>> summary = report.write_air(writer, studies.air(ds, kernel_fn))
    >>> writer.finish({"command": "air"})["complete"]
    True
"""

from .._json import to_jsonable
from ._files import OutputError, ReportWriter, atomic_write, check_output_file
from .air import air_headlines, write_air
from .distill import distill_headlines, write_distill
from .entk import entk_console_lines, render_entk_index, write_entk
from .index import render_index
from .kernel import kernel_headlines, write_kernel
from .learning_curve import learning_curve_summary, write_learning_curve
from .noisy_labels import write_noisy_labels
from .predict import write_predict
from .theorem import theorem_headlines, write_theorem

__all__ = [
    "OutputError",
    "ReportWriter",
    "air_headlines",
    "atomic_write",
    "check_output_file",
    "distill_headlines",
    "entk_console_lines",
    "kernel_headlines",
    "learning_curve_summary",
    "render_entk_index",
    "render_index",
    "theorem_headlines",
    "to_jsonable",
    "write_air",
    "write_distill",
    "write_entk",
    "write_kernel",
    "write_learning_curve",
    "write_noisy_labels",
    "write_predict",
    "write_theorem",
]
