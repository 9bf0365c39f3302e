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
from .air import air_headlines, air_summary, write_air
from .distill import distill_headlines, distill_summary, write_distill
from .entk import (
    entk_console_lines,
    entk_headlines,
    entk_summary,
    render_entk_index,
    write_entk,
)
from .index import INCOMPLETE_BANNER, render_index
from .kernel import kernel_headlines, kernel_summary, write_kernel
from .learning_curve import (
    learning_curve_headlines,
    learning_curve_markdown,
    learning_curve_summary,
    write_learning_curve,
)
from .noisy_labels import noisy_labels_headlines, noisy_labels_summary, write_noisy_labels
from .predict import predict_headlines, predict_summary, write_predict
from .theorem import theorem_headlines, theorem_summary, write_theorem

__all__ = [
    "INCOMPLETE_BANNER",
    "OutputError",
    "ReportWriter",
    "air_headlines",
    "air_summary",
    "atomic_write",
    "check_output_file",
    "distill_headlines",
    "distill_summary",
    "entk_headlines",
    "entk_summary",
    "kernel_headlines",
    "kernel_summary",
    "learning_curve_headlines",
    "learning_curve_markdown",
    "learning_curve_summary",
    "noisy_labels_headlines",
    "noisy_labels_summary",
    "render_entk_index",
    "entk_console_lines",
    "predict_headlines",
    "predict_summary",
    "render_index",
    "theorem_headlines",
    "theorem_summary",
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
