"""Native convolutional / pooling / residual kernels against pinned neural-tangents 0.6.5.

The fixtures (tests/fixtures/conv_kernels.npz) are made by tools/nt_reference/make_conv_fixtures.py
in the pinned NT environment; each case is a JSON layer list that the tool turns into `stax` and
`native` below turns into `ntk_air.kernels`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from ntk_air import kernels
from ntk_air import kernels as L
from ntk_air.kernels._spatial import _state_layout

FIXTURES = Path(__file__).parent / "fixtures" / "conv_kernels.npz"
ROOT = Path(__file__).resolve().parents[1]


def native(entries):
    """The ntk_air layers a fixture's JSON layer list describes."""
    out = []
    for entry in entries:
        kind, args = entry[0], entry[1:]
        if kind == "conv":
            filt, strides, padding, w, b = args
            out.append(L.conv(tuple(filt), strides and tuple(strides), padding, w, b))
        elif kind == "dense":
            out.append(L.dense(*args))
        elif kind == "avg_pool":
            window, strides, padding = args
            out.append(L.avg_pool(tuple(window), strides and tuple(strides), padding))
        elif kind == "gap":
            out.append(L.global_avg_pool())
        elif kind == "residual":
            out.append(L.residual(native(args[0])))
        else:
            out.append(getattr(L, kind)(*args))
    return L.serial(*out)


@pytest.fixture(scope="module")
def cases():
    data = np.load(FIXTURES)
    names = sorted({k.split("/")[0] for k in data.files})
    return {
        n: {
            f: data[f"{n}/{f}"] for f in ("net", "x1", "x2", "nngp", "ntk", "nngp_same", "ntk_same")
        }
        for n in names
    }


def _names():
    return sorted({k.split("/")[0] for k in np.load(FIXTURES).files})


@pytest.mark.parametrize("name", _names())
def test_matches_neural_tangents_float64(x64, cases, name):
    case = cases[name]
    net = native(json.loads(str(case["net"])))
    n1 = len(case["x1"])
    k = kernels.from_layers(net)(np.concatenate([case["x1"], case["x2"]]))  # one compile
    nngp, ntk = np.asarray(k.nngp), np.asarray(k.ntk)
    scale = np.abs(case["ntk"]).max() + np.abs(case["nngp"]).max()
    np.testing.assert_allclose(nngp[:n1, n1:], case["nngp"], rtol=1e-12, atol=1e-12 * scale)
    np.testing.assert_allclose(ntk[:n1, n1:], case["ntk"], rtol=1e-12, atol=1e-12 * scale)
    # x1 against itself: identical rows make angles of 0, resolved by NT only to ~√eps.
    np.testing.assert_allclose(nngp[:n1, :n1], case["nngp_same"], rtol=1e-7)
    np.testing.assert_allclose(ntk[:n1, :n1], case["ntk_same"], rtol=1e-7)


def test_at_least_twelve_combinations_and_every_layer(cases):
    kinds = set()

    def walk(entries):
        for e in entries:
            kinds.add(e[0])
            if e[0] == "residual":
                walk(e[1])

    for case in cases.values():
        walk(json.loads(str(case["net"])))
    assert kinds >= {
        "conv",
        "dense",
        "avg_pool",
        "gap",
        "flatten",
        "layer_norm",
        "relu",
        "leaky_relu",
        "abs",
        "erf",
        "gelu",
        "identity",
        "residual",
    }
    paddings = {e[3] for c in cases.values() for e in json.loads(str(c["net"])) if e[0] == "conv"}
    assert paddings == {"SAME", "VALID", "CIRCULAR"}
    assert len(cases) >= 12 + 17


def _cnn(readout):
    block = L.serial(L.conv((3, 3), w_std=1.5, b_std=0.1), L.relu())
    return L.serial(L.repeat(block, 3), readout, L.dense(1.5, 0.1))


@pytest.mark.parametrize("readout", [L.flatten(), L.global_avg_pool()], ids=["flatten", "gap"])
def test_tiling_and_batch_invariance(x64, readout):
    x = np.random.default_rng(3).normal(size=(7, 4, 4, 1))
    fn = kernels.from_layers(_cnn(readout))
    whole = fn(x)
    for tile in (3,):
        np.testing.assert_allclose(fn.replace(tile_size=tile)(x).ntk, whole.ntk, rtol=1e-13)
    # Each entry depends on its own pair only: rows 2..4 against rows 5..6, and tiled rows
    # 0..4 against 2..6 (all tiles, the last ones overlapping: 5 = 2 + 2 + 1).
    part = fn(x[2:5], x[5:7])
    np.testing.assert_allclose(part.ntk, whole.ntk[2:5, 5:7], rtol=1e-13)
    np.testing.assert_allclose(part.nngp, whole.nngp[2:5, 5:7], rtol=1e-13)
    if isinstance(readout, L.Flatten):  # the tile loop does not depend on the layout
        rect = fn.replace(tile_size=2)(x[:5], x[2:7])
        np.testing.assert_allclose(rect.ntk, whole.ntk[:5, 2:7], rtol=1e-13)
    np.testing.assert_allclose(whole.ntk, whole.ntk.T, rtol=1e-13)
    # K(x, x) from the upper tiles, mirrored: exactly symmetric
    tiled = fn.replace(tile_size=3)(x)
    np.testing.assert_array_equal(tiled.ntk, tiled.ntk.T)


@pytest.mark.parametrize("name", ["cnn3_flatten", "cnn3_gap"])
def test_float32_follows_neural_tangents(x64, cases, name):
    """float32 kernels of both layouts against the pinned float64 neural-tangents values."""
    case = cases[name]
    k = kernels.from_layers(native(json.loads(str(case["net"]))), dtype="float32")(
        case["x1"], case["x2"]
    )
    assert k.ntk.dtype == jnp.float32 and k.nngp.dtype == jnp.float32
    scale = np.abs(case["ntk"]).max()
    np.testing.assert_allclose(k.ntk, case["ntk"], rtol=2e-5, atol=2e-6 * scale)
    np.testing.assert_allclose(k.nngp, case["nngp"], rtol=2e-5, atol=2e-6 * scale)


def test_layout_follows_the_layers():
    assert not _state_layout(_cnn(L.flatten())).full
    assert _state_layout(_cnn(L.global_avg_pool())).full
    assert _state_layout(L.serial(L.avg_pool((2, 2)), L.flatten())).full
    assert not _state_layout(L.serial(L.dense(), L.relu())).spatial


def test_self_covariances_stay_diagonal_unless_read_after_pooling():
    """c1, c2 need every pair of positions only when a layer reading them (a nonlinearity,
    layer_norm, or a layer of unknown kind) runs after a pooling; a Repeat's body repeats."""
    conv, gap = L.conv((3, 3)), L.global_avg_pool()
    assert not _state_layout(_cnn(L.global_avg_pool())).self_full
    assert not _state_layout(L.serial(L.avg_pool((2, 2)), conv, L.flatten(), L.dense())).self_full
    assert _state_layout(L.serial(L.avg_pool((2, 2)), conv, L.relu(), L.flatten())).self_full
    assert _state_layout(L.serial(conv, gap, L.dense(), L.erf(), L.dense())).self_full
    assert _state_layout(L.repeat(L.serial(L.relu(), conv, L.avg_pool((2, 2))), 2)).self_full
    assert not _state_layout(L.repeat(L.serial(L.relu(), conv, L.avg_pool((2, 2))), 1)).self_full
    user_layer = lambda s: s  # noqa: E731 - may read c1 at every pair: keep them
    assert _state_layout(L.serial(conv, user_layer, gap, L.dense())).self_full
    assert not _state_layout(_cnn(L.flatten())).self_full  # diagonal anyway


@pytest.mark.parametrize(
    "tail",
    [
        [L.global_avg_pool(), L.dense(1.5, 0.1)],
        [L.avg_pool((2, 2), (1, 2), "SAME"), L.conv((2, 2), padding="VALID"), L.flatten()],
        [L.layer_norm(), L.avg_pool((3, 2)), L.conv((2, 2)), L.gelu(), L.global_avg_pool()],
        [L.residual(L.serial(L.erf(), L.conv((3, 3)))), L.global_avg_pool(), L.dense(), L.relu()],
        [
            L.residual(L.serial(L.erf(), L.conv((3, 3)))),
            L.layer_norm(),
            L.avg_pool((2, 2)),
            L.conv((2, 2)),
            L.global_avg_pool(),
        ],
    ],
    ids=["gap", "avg_pool-conv-flatten", "norm-pool-gelu", "residual-gap-relu", "res-norm-pool"],
)
def test_diagonal_self_covariances_give_the_full_ones_kernel(x64, tail, request):
    """from_layers (c1, c2 kept at equal positions where `state_layout` allows) equals the
    same network evaluated with full self-covariances throughout, to rounding."""
    from ntk_air.kernels._kernel_fn import _LayersBlock

    net = L.serial(L.conv((3, 3), None, "SAME", 1.5, 0.1), L.relu(), L.conv((3, 3)), *tail)
    diagonal = {"gap": True, "avg_pool-conv-flatten": True, "res-norm-pool": True}
    assert _state_layout(net).self_full != diagonal.get(request.node.callspec.id, False)
    x = jnp.asarray(np.random.default_rng(2).normal(size=(5, 7, 6, 2)))
    fast = kernels.from_layers(net, tile_size=2)(x)
    full = _LayersBlock(net, spatial=True, full=True, self_full=True)(x, x)
    for a, b in ((fast.nngp, full.nngp), (fast.ntk, full.ntk)):
        assert np.isfinite(np.asarray(a)).all()
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13 * float(jnp.abs(b).max()))


def test_flat_rows_with_input_shape_and_the_fc_kernel(x64):
    x = np.random.default_rng(5).normal(size=(4, 12))
    fn = kernels.from_layers(_cnn(L.flatten()), input_shape=(4, 3, 1))
    np.testing.assert_allclose(
        fn(x).ntk, kernels.from_layers(_cnn(L.flatten()))(x.reshape(4, 4, 3, 1)).ntk, rtol=1e-14
    )
    # A 1×1 convolution on 1×1 "images" is the dense network.
    one = L.serial(
        L.repeat(L.serial(L.conv((1, 1), w_std=1.3, b_std=0.2), L.erf()), 2),
        L.flatten(),
        L.dense(1.3, 0.2),
    )
    np.testing.assert_allclose(
        kernels.from_layers(one)(x.reshape(4, 1, 1, 12)).ntk,
        kernels.fc_kernel_fn(2, "erf", 1.3, 0.2)(x).ntk,
        rtol=1e-13,
    )


def test_memory_is_estimated_and_refused_with_a_tile_that_fits():
    x = np.ones((64, 8, 8, 1), np.float32)
    fn = kernels.from_layers(_cnn(L.global_avg_pool()), tile_size=64, memory_limit=50 * 2**20)
    with pytest.raises(ValueError, match=r"would need about .* use tile_size=\d+ or less") as err:
        fn(x)
    fit = int(str(err.value).split("tile_size=")[1].split()[0])
    assert 1 <= fit < 64
    assert fn.replace(tile_size=fit)(x[:8]).ntk.shape == (8, 8)
    tiny = fn.replace(memory_limit=1000)
    with pytest.raises(ValueError, match="the output alone does not fit"):
        tiny(x)
    # Automatic tiles respect the per-tile budget.
    auto = kernels.from_layers(_cnn(L.global_avg_pool()), memory_budget=8 * 2**20)
    assert auto.tile_for(x, x) is not None and auto.tile_for(x, x) < 64


def test_errors_name_the_problem():
    x = np.ones((2, 5, 5, 1))
    with pytest.raises(ValueError, match="ends with spatial axes"):
        kernels.from_layers(L.serial(L.conv((3, 3)), L.relu()))(x)
    with pytest.raises(ValueError, match="3 positive ints|1 to 3"):
        L.conv((3, 3, 3, 3))
    with pytest.raises(ValueError, match="padding must be one of"):
        L.conv((3,), padding="REFLECT")
    with pytest.raises(ValueError, match="2-D window but its inputs have 1"):
        kernels.from_layers(L.serial(L.conv((3, 3)), L.flatten()))(np.ones((2, 5, 1)))
    with pytest.raises(ValueError, match="needs Gaussian inputs"):
        kernels.from_layers(L.serial(L.conv((3, 3)), L.relu(), L.relu(), L.flatten()))(x)
    with pytest.raises(ValueError, match="must keep the spatial size"):
        block = L.conv((3, 3), padding="VALID")
        kernels.from_layers(L.serial(L.conv((1, 1)), L.residual(block), L.flatten()))(x)


def _attempt(seed: int) -> subprocess.Popen:
    code = (
        "import jax; jax.config.update('jax_enable_x64', True)\n"
        "import numpy as np\n"
        "from ntk_air import kernels, kernels as L\n"
        f"x = np.random.default_rng({seed}).normal(size=(6, 5, 5, 1))\n"
        "net = L.serial(L.conv((3, 3), (2, 1), 'SAME', 1.5, 0.1), L.relu(),\n"
        "               L.conv((2, 3), None, 'CIRCULAR', 1.2, 0.0), L.erf(),\n"
        "               L.global_avg_pool(), L.dense())\n"
        "k = kernels.from_layers(net, tile_size=4)(x)\n"
        "assert np.isfinite(np.asarray(k.ntk)).all()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen([sys.executable, "-c", code], env=env)


@pytest.mark.slow
def test_float64_on_cpu_ten_fresh_processes_without_a_crash():
    codes = []
    for first in range(0, 10, 2):  # two at a time (CI has 2 cores)
        runs = [_attempt(seed) for seed in range(first, first + 2)]
        codes += [run.wait(timeout=300) for run in runs]
    assert codes == [0] * 10


@pytest.mark.slow
def test_cli_cnn_spec_runs_natively_without_neural_tangents(tmp_path):
    """`ntk-air air --arch cnn:...` with neural-tangents unimportable (import blocked)."""
    code = (
        "import sys; sys.modules['neural_tangents'] = None\n"
        "from ntk_air.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    args = [
        "air",
        "--dataset",
        "digits",
        "--arch",
        "cnn:depth=3,pool=global,shape=8x8x1",
        "--n-train",
        "24",
        "--n-test",
        "8",
        "--no-progress",
        "--out",
        str(tmp_path / "o"),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    run = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((tmp_path / "o" / "air.json").read_text())
    assert "cnn:" in json.dumps(report)


def test_spec_grammar_and_native_builder(x64):
    from ntk_air.nt_backend import specs

    net = specs._to_native(
        specs.layer_plan(specs._parse_spec("cnn:depth=2,residual=true,norm=layer,pool=avg2"))
    )
    assert _state_layout(net).full
    x = np.random.default_rng(6).normal(size=(3, 36))
    fn = specs.native_kernel_fn_from_spec(
        "cnn:depth=2,residual=true,norm=layer,pool=avg2,shape=6x6x1"
    )
    assert fn(x).ntk.shape == (3, 3)
    fc = specs.native_kernel_fn_from_spec("fc:depth=2,act=erf,w_std=1.3,b_std=0.2")
    np.testing.assert_allclose(
        fc(x).ntk, kernels.fc_kernel_fn(2, "erf", 1.3, 0.2)(x).ntk, rtol=1e-13
    )
    with pytest.raises(ValueError, match="residual=true needs padding=same or circular"):
        specs._parse_spec("cnn:residual=true,padding=valid")
    with pytest.raises(ValueError, match="expected global, flatten or avgK"):
        specs._parse_spec("cnn:pool=max2")
    with pytest.raises(ValueError, match="neural-tangents backend only"):
        specs.native_kernel_fn_from_spec("attention:shape=8x8")
