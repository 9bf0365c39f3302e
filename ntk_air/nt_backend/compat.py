"""Make neural-tangents 0.6.5 importable, and its `stax.kernel_fn` correct, on the installed JAX.

Applied by `import_neural_tangents()` only, never at `import ntk_air`, and each adaptation of
`ADAPTATIONS` only where its behavioural probe fails: the names NT imports are set on JAX's
modules only while NT imports, NT's module globals then see read-only views of JAX's modules, and
a self-check compares NT's Dense→ReLU→Dense kernel with the closed form. What cannot be adapted
is gated (`GATES`). See docs/neural_tangents.md#layer.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
import warnings
from collections.abc import Callable
from typing import Any

from .adaptations import ADAPTATIONS, GATES, Adaptation, Gate, _module

NT_VERSION = "0.6.5"
INSTALL_COMMAND = "pip install frozendict && pip install --no-deps neural-tangents==0.6.5"
"""How to install the backend's neural-tangents (its metadata would pull TensorFlow)."""
NATIVE_HINT = (
    "The native kernels need no neural-tangents: ntk_air.kernels.fc_kernel_fn(depth, activation, "
    "w_std, b_std) (CLI: --backend native --arch fc)."
)


class NeuralTangentsUnavailable(ImportError):
    """neural-tangents cannot be used here; the message names the missing piece and the remedy."""


class _ModuleView(types.ModuleType):
    """A read-only view of a JAX module as NT sees it: the adapted names first, then the module."""

    def __init__(self, module: types.ModuleType, extra: dict[str, Any]):
        super().__init__(module.__name__, module.__doc__)
        self.__dict__.update(extra)
        self.__dict__["__wrapped_module__"] = module

    def __getattr__(self, name):
        return getattr(self.__dict__["__wrapped_module__"], name)

    def __repr__(self):
        return f"<view of module {self.__name__!r} for neural-tangents (ntk_air.nt_backend.compat)>"


_LOCK = threading.RLock()
_STATE: dict[str, Any] = {}  # "module": the imported NT, "applied": [needs, ...]


def _needed() -> list[tuple[Adaptation, Any]]:
    """Run every feature check; build the replacements needed; raise if one cannot be built."""
    out = []
    for a in ADAPTATIONS:
        try:
            needed = a.check()
        except Exception as err:  # noqa: BLE001 - a failing check is reported, never swallowed
            raise NeuralTangentsUnavailable(
                f"cannot check whether neural-tangents needs {a.needs} on this JAX "
                f"({_jax_version()}): {type(err).__name__}: {err}. {NATIVE_HINT}"
            ) from err
        if not needed:
            continue
        try:
            value = a.provide()
        except Exception as err:  # noqa: BLE001
            raise NeuralTangentsUnavailable(
                f"neural-tangents needs {a.needs} ({a.jax_change}), and this JAX "
                f"({_jax_version()}) offers no replacement ({a.adaptation} is missing: "
                f"{type(err).__name__}: {err}). {NATIVE_HINT}"
            ) from err
        out.append((a, value))
    return out


def _jax_version() -> str:
    import jax

    return f"jax {jax.__version__}"


class _ImportWindow:
    """Set the at-import names on the real JAX modules; undo exactly that on exit."""

    def __init__(self, needed):
        self.needed = [(a, v) for a, v in needed if a.at_import]
        self.undo: list[Callable[[], None]] = []

    def __enter__(self):
        try:
            for a, value in self.needed:
                if a.needs.startswith("neural_tangents."):
                    sys.modules[a.needs] = value  # NT's own namespace: stays registered
                elif isinstance(value, types.ModuleType) and a.needs == value.__name__:
                    self._add_module(a.needs, value)
                else:
                    module, _, name = a.needs.rpartition(".")
                    self._shadow(vars(_module(module)), name, value)
        except BaseException:
            self.__exit__(None, None, None)  # `with` does not call __exit__ if __enter__ fails
            raise
        return self

    def _add_module(self, path, value):
        self._shadow(sys.modules, path, value)
        parent, _, child = path.rpartition(".")
        parent_mod = sys.modules.get(parent)
        if parent_mod is not None and child not in vars(parent_mod):
            self._shadow(vars(parent_mod), child, value)

    def _shadow(self, table: dict, key: str, value) -> None:
        """table[key] = value for the window only: what was there (or nothing) comes back."""
        if key in table:
            previous = table[key]
            self.undo.append(lambda: table.__setitem__(key, previous))
        else:
            self.undo.append(lambda: table.pop(key, None))
        table[key] = value

    def __exit__(self, *exc):
        for undo in reversed(self.undo):
            undo()


def _install_views(needed) -> None:
    """Rebind NT's module globals that refer to adapted JAX modules to views of them."""
    extras: dict[str, dict[str, Any]] = {}
    for a, value in needed:
        whole_module = isinstance(value, types.ModuleType) and value.__name__ == a.needs
        if a.needs.startswith("neural_tangents.") or whole_module:
            continue  # NT's stub, or a whole module (jax.util): bound at import already
        module, _, name = a.needs.rpartition(".")
        extras.setdefault(module, {})[name] = value
    if not extras:
        return
    # Parents hand out their children's views too: NT spells some lookups `jax.core.eval_context`.
    for path in list(extras):
        parts = path.split(".")
        for i in range(1, len(parts)):
            extras.setdefault(".".join(parts[:i]), {})
    views: dict[str, _ModuleView] = {}
    for path in sorted(extras, key=lambda p: -p.count(".")):  # children before parents
        extra = dict(extras[path])
        for child_path, view in views.items():
            parent, _, child = child_path.rpartition(".")
            if parent == path:
                extra[child] = view
        views[path] = _ModuleView(_module(path), extra)
    real = {id(_module(p)): views[p] for p in views}
    for name, mod in list(sys.modules.items()):
        if mod is None or name.split(".")[0] != "neural_tangents":
            continue
        for gname, gval in list(vars(mod).items()):
            if isinstance(gval, types.ModuleType) and id(gval) in real:
                setattr(mod, gname, real[id(gval)])


def _self_check(nt) -> None:
    """NT's Dense→ReLU→Dense kernel must equal ntk_air's closed form (float32 tolerance)."""
    import numpy as np

    from ..kernels import fc_kernel_fn

    x = np.array([[1.0, 0.5, -0.3], [0.2, -1.0, 0.4]], np.float32)
    _, _, kernel_fn = nt.stax.serial(nt.stax.Dense(8), nt.stax.Relu(), nt.stax.Dense(1))
    k, want = kernel_fn(x, None, ("nngp", "ntk")), fc_kernel_fn(1, "relu")(x)
    for name in ("nngp", "ntk"):
        err = float(np.max(np.abs(np.asarray(getattr(k, name)) - getattr(want, name))))
        if not err < 1e-5:
            raise NeuralTangentsUnavailable(
                f"neural-tangents imported on {_jax_version()}, but its stax.kernel_fn gives a "
                f"wrong {name} for Dense→ReLU→Dense (max error {err:.3g} vs the closed form); "
                f"the adaptations in ntk_air.nt_backend.compat do not cover this JAX. {NATIVE_HINT}"
            )


def _drop_partial_import(before: set[str]) -> None:
    for name in list(sys.modules):
        if name not in before and name.split(".")[0] == "neural_tangents":
            del sys.modules[name]


def import_neural_tangents():
    """The `neural_tangents` module, adapted to the installed JAX (cached after the first call).

    Returns:
      the `neural_tangents` module.

    Raises:
      NeuralTangentsUnavailable: NT is not installed (the message gives the install command), is
        hidden (`sys.modules['neural_tangents'] = None`), or cannot be adapted to this JAX (the
        message names the missing piece and points to `ntk_air.kernels.fc_kernel_fn`).

    Example:
      >>> nt = import_neural_tangents()
      >>> _, _, kernel_fn = nt.stax.serial(nt.stax.Conv(8, (3, 3)), nt.stax.Relu(),
      ...                                  nt.stax.GlobalAvgPool(), nt.stax.Dense(1))
    """
    with _LOCK:
        cached = _STATE.get("module")
        if cached is not None and sys.modules.get("neural_tangents") is cached:
            return cached
        present = sys.modules.get("neural_tangents", False)
        if present is None or (present is False and _nt_spec_missing()):
            raise NeuralTangentsUnavailable(
                "neural-tangents is not installed (the optional backend). Install it with\n"
                f"    {INSTALL_COMMAND}\n"
                "(--no-deps: its declared dependencies pull TensorFlow, which is not needed). "
                + NATIVE_HINT
            )
        needed = _needed()
        before = set(sys.modules)
        try:
            with _ImportWindow(needed), warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                nt = importlib.import_module("neural_tangents")
                importlib.import_module("neural_tangents.stax")
        except Exception as err:  # noqa: BLE001 - any import failure becomes one clear error
            _drop_partial_import(before)
            if isinstance(err, NeuralTangentsUnavailable):
                raise
            raise NeuralTangentsUnavailable(
                f"neural-tangents does not import on {_jax_version()}, and no adaptation in "
                f"ntk_air.nt_backend.compat covers it: {type(err).__name__}: {err}. " + NATIVE_HINT
            ) from err
        version = getattr(nt, "__version__", "?")
        if version != NT_VERSION:
            warnings.warn(
                f"neural-tangents {version} found; ntk_air's adaptations were written for "
                f"{NT_VERSION}",
                stacklevel=2,
            )
        _install_views(needed)
        _self_check(nt)
        _STATE["module"] = nt
        _STATE["applied"] = [a.needs for a, _ in needed]
        return nt


def _nt_spec_missing() -> bool:
    try:
        return importlib.util.find_spec("neural_tangents") is None
    except (ImportError, ValueError):
        return True


def is_available() -> bool:
    """True when `import_neural_tangents()` succeeds (never raises)."""
    try:
        import_neural_tangents()
    except NeuralTangentsUnavailable:
        return False
    return True


def _require(feature: str) -> None:
    """Raise `NeuralTangentsUnavailable` when the gated NT `feature` (a key of `GATES`) fails."""
    if feature not in GATES:
        raise ValueError(f"unknown gated feature {feature!r}; known: {tuple(GATES)}")
    gate = GATES[feature]
    failure = gate.failure()
    if failure is not None:
        raise NeuralTangentsUnavailable(
            f"neural-tangents' {feature} needs {gate.needs}, but on {_jax_version()} "
            f"{gate.jax_change} (NT's call fails: {failure}). ntk_air does not adapt this: "
            f"{gate.why}. Instead, {gate.remedy}."
        )


def _state(item) -> str:
    """What the probe of an adaptation ('not needed', 'adapted', 'cannot adapt: …') or of a gate
    ('works', 'unavailable: …') finds here; imports no NT."""
    if isinstance(item, Gate):
        failure = item.failure()
        return "works" if failure is None else f"unavailable: {failure}"
    try:
        if not item.check():
            return "not needed"
        item.provide()
        return "adapted"
    except Exception as err:  # noqa: BLE001
        return f"cannot adapt: {type(err).__name__}: {err}"


def adaptations_markdown(with_state: bool = False) -> str:
    """The table of adaptations and gates as Markdown (for docs/neural_tangents.md)."""
    columns = ["NT 0.6.5 needs", "change it answers", "adaptation"] + ["state here"] * with_state
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    gated = [(g, f"none — gated: {g.remedy}") for g in GATES.values()]
    for item, adaptation in [(a, a.adaptation) for a in ADAPTATIONS] + gated:
        cells = [f"`{item.needs}`", item.jax_change, adaptation]
        if with_state:
            cells.append(_state(item))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
