"""The table of neural-tangents adaptations (`Adaptation`, one per JAX change NT 0.6.5 trips
over) and `Gate`s (features that cannot be adapted), each decided by a behavioural probe of what NT
does with the name, never by a name test (docs/neural_tangents.md#layer); `compat` applies it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import inspect
import math
import operator
import sys
import types
import warnings
from collections.abc import Callable, Mapping
from typing import Any

_module = importlib.import_module


def _attr(module_path: str, name: str) -> Any:
    """`module.name` with deprecation warnings muted; None when missing or failing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return getattr(_module(module_path), name, None)
        except Exception:  # noqa: BLE001 - a module or shim that raises counts as missing
            return None


def _from(module_path: str, name: str) -> Callable[[], Any]:
    def provide():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return getattr(_module(module_path), name)

    return provide


def _probe_failure(probe: Callable[[], bool]) -> str | None:
    """None when `probe()` returns True (warnings muted); else why not, in words."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ok = probe()
    except Exception as err:  # noqa: BLE001 - a probe that raises fails
        return f"{type(err).__name__}: {err}"
    return None if ok is True else f"the probe returned {ok!r}"


def _fails(probe: Callable[[], bool]) -> Callable[[], bool]:
    """Feature check from a probe: True (adapt) unless the probe returns True without raising."""
    return lambda: _probe_failure(probe) is not None


@functools.lru_cache(maxsize=1)
def _jaxpr_sample() -> dict[str, Any]:
    """The objects NT's jaxpr walker meets, from JAX itself: sin(x) + 1.0 traced."""
    import jax
    import jax.numpy as jnp

    jaxpr = jax.make_jaxpr(lambda x: jnp.sin(x) + 1.0)(jnp.float32(1.0)).jaxpr
    add = jaxpr.eqns[-1]
    return {
        "Jaxpr": jaxpr,
        "JaxprEqn": add,
        "Var": jaxpr.invars[0],
        "Literal": add.invars[-1],
        "Primitive": add.primitive,
    }


def _checked_provider(provide: Callable[[], Any], probe: Callable[[Any], bool], what: str):
    """A provider whose replacement must pass the same behavioural probe as the original."""

    def checked():
        value = provide()
        if not probe(value):
            raise TypeError(f"the replacement {what} does not behave as neural-tangents needs")
        return value

    return checked


def _equal_lengths(name: str, args) -> list[list]:
    args = [list(a) for a in args]
    if len({len(a) for a in args}) > 1:
        raise ValueError(f"{name}: length mismatch {[len(a) for a in args]}")
    return args


def _safe_map(f, *args):
    """jax.util.safe_map as NT 0.6.5 used it: map over equal-length sequences, as a list."""
    return list(map(f, *_equal_lengths("safe_map", args)))


def _safe_zip(*args):
    """jax.util.safe_zip as NT 0.6.5 used it: zip of equal-length sequences, as a list."""
    return list(zip(*_equal_lengths("safe_zip", args), strict=True))


def _equal_length_map_zip(util) -> bool:
    """util.safe_map/safe_zip as NT uses them: lists, and an error on unequal lengths."""
    unequal = (
        lambda: util.safe_map(operator.add, (1,), (1, 2)),
        lambda: util.safe_zip((1,), (1, 2)),
    )
    for call in unequal:
        with contextlib.suppress(Exception):  # JAX raised AssertionError, the stand-in ValueError
            call()
            return False
    mapped = util.safe_map(operator.add, (1, 2), (3, 4))
    return mapped == [4, 6] and util.safe_zip((1, 2), "ab") == [(1, "a"), (2, "b")]


def _jax_util_module():
    mod = types.ModuleType("jax.util", "Stand-in for the removed jax.util, for neural-tangents.")
    mod.__dict__.update(safe_map=_safe_map, safe_zip=_safe_zip)
    return mod


def _primitive_class() -> type:
    return type(_jaxpr_sample()["Primitive"])


class _NoDynamicShapes:
    """Stand-in for the removed jax.core.DShapedArray: no abstract value is ever of this type."""


def _has_source_info_calls(module) -> bool:
    """The three source_info_util functions NT's structured derivatives call."""
    calls = ("transform_name_stack", "current_name_stack", "user_context")
    return all(callable(getattr(module, n, None)) for n in calls)


def _evaluates_at_compile_time(context) -> bool:
    """Under jit and vmap, `with context():` keeps tracers tracing and makes constants concrete."""
    import jax
    import jax.numpy as jnp

    if not callable(context):
        return False
    concrete = []

    def f(x):
        with context():
            y = x * 2.0
            try:
                concrete.append(float(jnp.ones(2)[0] * 3.0) == 3.0)  # raises on a tracer
            except jax.errors.ConcretizationTypeError:
                concrete.append(False)
        return y

    jax.make_jaxpr(f)(1.0)  # traced as under jit (no compilation needed)
    jax.make_jaxpr(jax.vmap(f))(jnp.ones(2))
    return len(concrete) == 2 and all(concrete)


def _size_of_shape_struct_is_quiet() -> bool:
    """`jnp.size(ShapeDtypeStruct)` gives the size without a warning (NT calls it)."""
    import jax
    import jax.numpy as jnp

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return int(jnp.size(jax.ShapeDtypeStruct((2, 3), jnp.float32))) == 6


def _size_accepting_shapes():
    import jax
    import jax.numpy as jnp

    def size_of(x, axis=None):  # NT sees it in a view of jax.numpy; the real jnp.size stays
        if isinstance(x, jax.ShapeDtypeStruct):
            return math.prod(x.shape) if axis is None else x.shape[axis]
        return jnp.size(x, axis)

    return size_of


def _eigvalsh_takes_eigvals(eigvalsh) -> bool:
    """`eigvalsh(a, eigvals=(lo, hi))` returns eigenvalues lo..hi (NT's `max_learning_rate`)."""
    import numpy as np

    return [float(v) for v in eigvalsh(np.diag([3.0, 1.0, 2.0]), eigvals=(2, 2))] == [3.0]


def _eigvalsh_with_eigvals():
    """`scipy.linalg.eigvalsh` accepting NT's `eigvals=(lo, hi)` as `subset_by_index=`."""
    eigvalsh = _module("scipy.linalg").eigvalsh

    @functools.wraps(eigvalsh)
    def eigvalsh_with_eigvals(a, *args, eigvals=None, **kwargs):
        if eigvals is not None:
            kwargs["subset_by_index"] = eigvals
        return eigvalsh(a, *args, **kwargs)

    return eigvalsh_with_eigvals


# The XLA:CPU out-of-bounds read of padded convolutions (docs/neural_tangents.md#float64-cnn-crash)
# is avoided by padding explicitly, behind an optimization barrier so XLA cannot fold the pad
# back into the window: the convolution then has no out-of-image positions.


def _explicit_conv_pads(lhs_shape, rhs_shape, window_strides, padding, bound) -> list | None:
    """(axis, low, high) zero padding of `lhs` per spatial axis; None: nothing to move out."""
    from jax import lax

    lhs_dilation = bound["lhs_dilation"]
    if lhs_dilation is not None and any(d != 1 for d in lhs_dilation):
        return None
    dn = lax.conv_dimension_numbers(lhs_shape, rhs_shape, bound["dimension_numbers"])
    in_spatial = [lhs_shape[i] for i in dn.lhs_spec[2:]]
    filter_spatial = [rhs_shape[i] for i in dn.rhs_spec[2:]]
    rhs_dilation = bound["rhs_dilation"] or (1,) * len(filter_spatial)
    window = [(k - 1) * d + 1 for k, d in zip(filter_spatial, rhs_dilation, strict=True)]
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(in_spatial, window, window_strides, padding)
    pads = [(int(lo), int(hi)) for lo, hi in padding]
    if all(p == (0, 0) for p in pads) or any(lo < 0 or hi < 0 for lo, hi in pads):
        return None
    return [(axis, lo, hi) for axis, (lo, hi) in zip(dn.lhs_spec[2:], pads, strict=True)]


def _conv_padded_explicitly_on_cpu():
    """`lax.conv_general_dilated` padding, on CPU, by `lax.pad` behind an optimization barrier."""
    import jax.numpy as jnp
    from jax import lax

    conv = lax.conv_general_dilated
    signature = inspect.signature(conv)

    @functools.wraps(conv)
    def conv_general_dilated(lhs, rhs, window_strides, padding, *args, **kwargs):
        bound = signature.bind(lhs, rhs, window_strides, padding, *args, **kwargs)
        bound.apply_defaults()
        rest = dict(bound.arguments)
        for name in ("lhs", "rhs", "padding", "window_strides"):
            del rest[name]
        pads = _explicit_conv_pads(
            jnp.shape(lhs), jnp.shape(rhs), window_strides, padding, bound.arguments
        )

        def native(a, b):
            return conv(a, b, window_strides, padding, **rest)

        if pads is None:
            return native(lhs, rhs)

        def explicit(a, b):
            config = [(0, 0, 0)] * a.ndim
            for axis, lo, hi in pads:
                config[axis] = (lo, hi, 0)
            a = lax.optimization_barrier(lax.pad(a, jnp.zeros((), a.dtype), config))
            return conv(a, b, window_strides, [(0, 0)] * len(pads), **rest)

        return lax.platform_dependent(lhs, rhs, cpu=explicit, default=native)

    return conv_general_dilated


def _explicit_padding_survives_xla_cpu(conv_fn) -> bool:
    """On CPU, `conv_fn` 'SAME' compiles to an unpadded convolution with the original's values."""
    import jax
    import numpy as np

    cpu = jax.devices("cpu")[0]
    lhs_shape, rhs_shape = (1, 1, 4, 4), (1, 1, 3, 3)
    lhs = jax.device_put(np.arange(math.prod(lhs_shape), dtype=np.float32).reshape(lhs_shape), cpu)
    rhs = jax.device_put(np.ones(rhs_shape, np.float32), cpu)

    def f(a, b):
        return conv_fn(a, b, (1, 1), "SAME")

    compiled = jax.jit(f).lower(lhs, rhs).compile()
    convs = [line for line in compiled.as_text().splitlines() if " convolution(" in line]
    want = jax.lax.conv_general_dilated(lhs, rhs, (1, 1), "SAME")
    same = np.array_equal(np.asarray(compiled(lhs, rhs)), np.asarray(want))
    return same and not any("pad=" in line for line in convs)


def _xla_cpu_may_miscompile_padded_convolutions() -> bool:
    """XLA:CPU and `lax.optimization_barrier` exist (not on jax 0.4.25, free of the defect)."""
    import jax

    try:
        jax.devices("cpu")
    except RuntimeError:
        return False
    return callable(getattr(jax.lax, "optimization_barrier", None))


def _provide_explicitly_padded_conv():
    conv = _conv_padded_explicitly_on_cpu()
    if not _explicit_padding_survives_xla_cpu(conv):
        raise TypeError(
            "XLA:CPU folds the explicit zero padding back into the convolution window, so NT's "
            "convolutions cannot be kept clear of the XLA:CPU out-of-bounds read"
        )
    return conv


def _nt_structured_linearize_works() -> bool:
    """`ad.linearize(flat_fun, *primals, has_aux=False)` as NT's structured derivatives use it."""
    import jax
    import jax.numpy as jnp
    from jax.extend import linear_util as lu
    from jax.interpreters import ad

    primals, in_tree = jax.tree_util.tree_flatten((jnp.float32(0.5),))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # wrap_init without debug info, as NT calls it
        fn_flat, _ = jax.api_util.flatten_fun_nokwargs(lu.wrap_init(jnp.sin), in_tree)
        with jax.disable_jit():
            primals_out, pvals, jaxpr, _consts = ad.linearize(fn_flat, *primals, has_aux=False)
    return (
        len(primals_out) == 1
        and abs(float(primals_out[0]) - math.sin(0.5)) < 1e-6
        and all(isinstance(p.is_known(), bool) for p in pvals)
        and hasattr(jaxpr, "eqns")
    )


def _cost_analysis_indexed_as_nt_does() -> bool:
    """NT's AUTO reads `Compiled.cost_analysis()[0]['flops']`."""
    import jax

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = jax.jit(lambda x: x + 1.0).lower(1.0).compile().cost_analysis()
    return float(analysis[0]["flops"]) >= 0.0


@dataclasses.dataclass(frozen=True)
class Adaptation:
    """One adaptation: what NT needs, the JAX change it answers, its feature check, the fix."""

    needs: str  # what neural-tangents 0.6.5 uses, spelled as NT spells it ("jax.core.Jaxpr")
    jax_change: str  # the change in JAX (or in NT's packaging) that broke it
    check: Callable[[], bool]  # feature check (a behavioural probe): True when NT needs the fix
    adaptation: str  # what NT is given instead, in words
    provide: Callable[[], Any]  # builds the replacement object (it passes the same probe)
    at_import: bool = False  # NT needs it while importing (set on the JAX module meanwhile)


def _moved_to_extend(name: str) -> Adaptation:
    def describes_jaxprs(cls) -> bool:
        """`cls` is the class of the jaxpr objects JAX builds (NT isinstance-checks them)."""
        return isinstance(cls, type) and isinstance(_jaxpr_sample()[name], cls)

    return Adaptation(
        needs=f"jax.core.{name}",
        jax_change=f"`{name}` left `jax.core`; its public home is `jax.extend.core`",
        check=_fails(lambda: describes_jaxprs(_attr("jax.core", name))),
        adaptation=f"`jax.extend.core.{name}`",
        provide=_checked_provider(
            _from("jax.extend.core", name), describes_jaxprs, f"jax.extend.core.{name}"
        ),
        at_import=True,
    )


ADAPTATIONS: tuple[Adaptation, ...] = (
    Adaptation(
        needs="neural_tangents.experimental",
        jax_change="NT's TensorFlow-model NTK imports `jax.experimental.jax2tf` → TensorFlow, "
        "which the `--no-deps` install leaves out",
        # Not a JAX feature: ntk_air never loads NT's TensorFlow part. The check asks only
        # whether the real subpackage (a module with a __file__) is loaded already.
        check=lambda: (
            getattr(sys.modules.get("neural_tangents.experimental"), "__file__", None) is None
        ),
        adaptation="an empty stub module (only the TF-model NTK is lost)",
        provide=lambda: _experimental_stub(),
        at_import=True,
    ),
    *(_moved_to_extend(n) for n in ("Jaxpr", "JaxprEqn", "Literal", "Var", "Primitive")),
    Adaptation(
        needs="jax.util",
        jax_change="the `jax.util` module (`safe_map`, `safe_zip`) was removed",
        check=_fails(lambda: _equal_length_map_zip(_module("jax.util"))),
        adaptation="a module with pure-Python `safe_map`/`safe_zip` (equal-length `map`/`zip` "
        "returning lists)",
        provide=_checked_provider(_jax_util_module, _equal_length_map_zip, "jax.util stand-in"),
        at_import=True,
    ),
    Adaptation(
        needs="jax.interpreters.ad.zeros_like_p",
        jax_change="the `zeros_like` primitive was removed",
        # NT keys its Jacobian-rule tables by this primitive at import time; no jaxpr can
        # contain it any more, so a fresh primitive keeps the tables buildable and is never hit.
        check=_fails(
            lambda: isinstance(_attr("jax.interpreters.ad", "zeros_like_p"), _primitive_class())
        ),
        adaptation="a placeholder `jax.extend.core.Primitive` (keys NT's rule tables; never "
        "appears in a jaxpr)",
        provide=lambda: _primitive_class()("zeros_like (removed from JAX; NT placeholder)"),
        at_import=True,
    ),
    Adaptation(
        needs="jax.core.DShapedArray",
        jax_change="dynamic shapes (`DShapedArray`) were removed",
        check=_fails(lambda: isinstance(_attr("jax.core", "DShapedArray"), type)),
        adaptation="a private class that no abstract value is an instance of",
        provide=lambda: _NoDynamicShapes,
    ),
    Adaptation(
        needs="jax.interpreters.ad.source_info_util",
        jax_change="`jax.interpreters.ad` no longer re-exports `source_info_util`",
        check=_fails(
            lambda: _has_source_info_calls(_attr("jax.interpreters.ad", "source_info_util"))
        ),
        adaptation="`jax.extend.source_info_util`",
        provide=_checked_provider(
            lambda: _module("jax.extend.source_info_util"),
            _has_source_info_calls,
            "jax.extend.source_info_util",
        ),
    ),
    Adaptation(
        needs="jax.interpreters.ad.reducing_transposes",
        jax_change="`jax.interpreters.ad` no longer exports `reducing_transposes`",
        check=_fails(
            lambda: isinstance(_attr("jax.interpreters.ad", "reducing_transposes"), Mapping)
        ),
        adaptation="an empty table (JAX's own was empty when it stopped exporting it)",
        provide=lambda: types.MappingProxyType({}),
    ),
    Adaptation(
        needs="jax.interpreters.ad.config",
        jax_change="`jax.interpreters.ad` no longer re-exports `config`; the assertion NT runs "
        "under `jax_enable_checks` uses the removed `core.get_aval`/`core.lattice_join`",
        check=_fails(
            lambda: isinstance(
                getattr(_attr("jax.interpreters.ad", "config"), "jax_enable_checks", None), bool
            )
        ),
        adaptation="a config view with `jax_enable_checks=False` (skips only that NT-internal "
        "assertion)",
        provide=lambda: types.SimpleNamespace(jax_enable_checks=False),
    ),
    Adaptation(
        needs="jax.core.eval_context",
        jax_change="`jax.core.eval_context` is internal; on jax 0.10 it still exists but switches "
        "to eager evaluation, so tracers under `jit`/`vmap` fail inside it (NT's `predict`, "
        "attention's positional embeddings); `jax.ensure_compile_time_eval` is the public "
        "behaviour NT needs",
        check=_fails(lambda: _evaluates_at_compile_time(_attr("jax.core", "eval_context"))),
        adaptation="`jax.ensure_compile_time_eval`",
        provide=_checked_provider(
            _from("jax", "ensure_compile_time_eval"),
            _evaluates_at_compile_time,
            "jax.ensure_compile_time_eval",
        ),
    ),
    Adaptation(
        needs="jax.numpy.size",
        jax_change="`jnp.size` of a `ShapeDtypeStruct` is deprecated (a warning, later an error); "
        "NT's empirical NTK calls it on `eval_shape` results",
        check=_fails(_size_of_shape_struct_is_quiet),
        adaptation="`math.prod(x.shape)` for shape-only objects, `jnp.size` otherwise",
        provide=_size_accepting_shapes,
    ),
    Adaptation(
        needs="scipy.linalg.eigvalsh",
        jax_change="not JAX: SciPy 1.14 removed `eigvalsh(eigvals=)` (now `subset_by_index=`), "
        "which NT's `predict.max_learning_rate` passes on CPU",
        check=_fails(lambda: _eigvalsh_takes_eigvals(_module("scipy.linalg").eigvalsh)),
        adaptation="`eigvalsh` passing `eigvals=` on as `subset_by_index=`",
        provide=_checked_provider(
            _eigvalsh_with_eigvals, _eigvalsh_takes_eigvals, "scipy.linalg.eigvalsh"
        ),
    ),
    Adaptation(
        needs="jax.lax.conv_general_dilated",
        jax_change="XLA:CPU defect (jaxlib 0.10.2): a padded convolution that Eigen does not "
        "take (every float64 one) reads (W + 1)·itemsize bytes before its operand; SIGSEGV when "
        "that is an unmapped page (the docs' CNN example, about half of the float64 runs)",
        check=_xla_cpu_may_miscompile_padded_convolutions,
        adaptation="on CPU, explicit zero padding behind `lax.optimization_barrier`, then a "
        "'VALID' convolution (same values; other platforms unchanged)",
        provide=_provide_explicitly_padded_conv,
    ),
)
"""The adaptations that make neural-tangents 0.6.5 run on the installed JAX (feature-detected)."""


@dataclasses.dataclass(frozen=True)
class Gate:
    """An NT feature that cannot be adapted with public APIs; used only when its check holds."""

    feature: str  # the name `compat._require()` takes
    needs: str
    jax_change: str
    probe: Callable[[], bool]  # behavioural probe of NT's code path (may raise: then it fails)
    why: str  # why ntk_air does not adapt it
    remedy: str

    def works(self) -> bool:
        """True when the probe passes on this JAX."""
        return self.failure() is None

    def failure(self) -> str | None:
        """None when the probe passes; else why it failed, in words."""
        return _probe_failure(self.probe)


GATES: dict[str, Gate] = {
    g.feature: g
    for g in (
        Gate(
            feature="structured-derivatives",
            needs="jax.interpreters.ad.linearize(traceable, *primals) → 4 values",
            jax_change="`ad.linearize` now takes a flat-tree of primals and returns "
            "(out_primals, out_zeros, jaxpr, consts)",
            probe=_nt_structured_linearize_works,
            why="it drives JAX's private linearize/transpose machinery, which public APIs "
            "cannot rebuild",
            remedy="use implementation='jacobian' or 'ntvp', or ntk_air.empirical's own "
            "'structured' path (MLP and two-layer networks)",
        ),
        Gate(
            feature="auto",
            needs="Compiled.cost_analysis()[0]['flops']",
            jax_change="`cost_analysis()` returns a dict, not a list of dicts",
            probe=_cost_analysis_indexed_as_nt_does,
            why="AUTO also compiles the structured-derivatives path to count its FLOPs",
            remedy="choose implementation='jacobian' or 'ntvp' explicitly",
        ),
    )
}
"""Features that cannot be adapted, by name, each with the remedy it names."""


def _experimental_stub() -> types.ModuleType:
    stub = types.ModuleType(
        "neural_tangents.experimental",
        "Stub registered by ntk_air.nt_backend.compat: NT's TensorFlow-model NTK "
        "(neural_tangents.experimental) needs TensorFlow and is not available here.",
    )

    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"neural_tangents.experimental.{name} is not available through ntk_air: NT's "
            "experimental (TensorFlow-model) NTK needs TensorFlow, which is not installed"
        )

    stub.__getattr__ = __getattr__
    return stub
