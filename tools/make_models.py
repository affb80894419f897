#!/usr/bin/env python3
"""Builds the small ONNX models used by the examples and the compiler's tests.

Requirements: `pip install onnx numpy` (add `onnxruntime` to use `--verify`).

Usage, from the repository root:

    python3 tools/make_models.py            # writes every model
    python3 tools/make_models.py --verify   # also runs each model in ONNX Runtime

Every weight is a constant written here: nothing is trained or downloaded, and
the same onnx version writes the same bytes on every run. The files are small
and committed; run this again only after changing a model below.
"""

import argparse
import pathlib
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = pathlib.Path(__file__).resolve().parent.parent
UI_MODELS = ROOT / "compiler" / "tests" / "ui" / "models"
TEMPLATES = ROOT / "templates" / "projects"
RUNTIME_MODELS = ROOT / "runtime" / "tests" / "models"

# Fixed so that the bytes do not depend on the installed onnx version.
PRODUCER = "nml tools/make_models.py"


def model(graph, opset, ir_version):
    m = helper.make_model(
        graph,
        producer_name=PRODUCER,
        opset_imports=[helper.make_opsetid("", opset)],
    )
    m.ir_version = ir_version
    onnx.checker.check_model(m, full_check=True)
    return m


def volatility(opset=17, ir_version=8):
    """returns float32[1, 30] -> vol float32[1] = sqrt(mean(returns^2))."""
    nodes = [helper.make_node("Mul", ["returns", "returns"], ["squared"])]
    initializers = []
    if opset >= 18:
        # From opset 18 on, ReduceMean takes its axes as an input.
        initializers.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"))
        nodes.append(helper.make_node("ReduceMean", ["squared", "axes"], ["mean_square"], keepdims=0))
    else:
        nodes.append(helper.make_node("ReduceMean", ["squared"], ["mean_square"], axes=[1], keepdims=0))
    nodes.append(helper.make_node("Sqrt", ["mean_square"], ["vol"]))
    graph = helper.make_graph(
        nodes,
        "volatility",
        [helper.make_tensor_value_info("returns", TensorProto.FLOAT, [1, 30])],
        [helper.make_tensor_value_info("vol", TensorProto.FLOAT, [1])],
        initializer=initializers,
    )
    return model(graph, opset, ir_version)


def graph_names():
    """input:0 float32[1, 30] -> output.1 float32[1]: the volatility model under
    tensor names that are not identifiers (TensorFlow's `input:0`, PyTorch's
    `output.1`)."""
    graph = volatility().graph
    renames = {"returns": "input:0", "vol": "output.1"}
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    for value in list(graph.input) + list(graph.output):
        value.name = renames.get(value.name, value.name)
    graph.name = "graph_names"
    return model(graph, 17, 8)


def multi():
    """a float32[1, 4], b int64[1, 2] -> y = a * 2 + 1, z = b + 1."""
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["a", "two"], ["a2"]),
            helper.make_node("Add", ["a2", "one_f"], ["y"]),
            helper.make_node("Add", ["b", "one_i"], ["z"]),
        ],
        "multi",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 4]),
            helper.make_tensor_value_info("b", TensorProto.INT64, [1, 2]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4]),
            helper.make_tensor_value_info("z", TensorProto.INT64, [1, 2]),
        ],
        initializer=[
            numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two"),
            numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one_f"),
            numpy_helper.from_array(np.array(1, dtype=np.int64), "one_i"),
        ],
    )
    return model(graph, 17, 8)


DYNAMIC_W = np.array([[0.5], [-1.0], [2.0]], dtype=np.float32)


def dynamic():
    """x float32[N, 3] -> y float32[N, 1] = x . w, with a symbolic batch N."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "dynamic",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
        initializer=[numpy_helper.from_array(DYNAMIC_W, "w")],
    )
    return model(graph, 17, 8)


def strings():
    """s string[1] -> s_out = s; x float32[1] -> y = x."""
    graph = helper.make_graph(
        [
            helper.make_node("Identity", ["s"], ["s_out"]),
            helper.make_node("Identity", ["x"], ["y"]),
        ],
        "strings",
        [
            helper.make_tensor_value_info("s", TensorProto.STRING, [1]),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1]),
        ],
        [
            helper.make_tensor_value_info("s_out", TensorProto.STRING, [1]),
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [1]),
        ],
    )
    return model(graph, 17, 8)


def with_initializer_input():
    """IR 3 style: the initializer `w` is also listed as a graph input.

    x float32[1, 2] -> y = x + w, w = [0.25, -0.75]. Only `x` is a real input.
    """
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "with_initializer_input",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, [1, 2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        initializer=[numpy_helper.from_array(np.array([[0.25, -0.75]], dtype=np.float32), "w")],
    )
    return model(graph, 7, 3)


# The runtime's models (runtime/tests/models): small graphs whose outputs the
# inference tests state exactly, and one that takes about 2 ms on one CPU core
# for the benchmarks.

MLP_W = np.array(
    [[0.5, -1.0, 0.25], [1.0, 0.5, -0.5], [-0.25, 2.0, 0.0], [0.125, -1.0, 1.0]],
    dtype=np.float32,
)
MLP_B = np.array([0.5, -0.25, -4.0], dtype=np.float32)


def mlp():
    """x float32[N, 4] -> y float32[N, 3] = relu(x . W + b).

    The weights are dyadic fractions, so every output for small integer inputs
    is exact in float32: x = [1, 2, 3, 4] gives y = [2.75, 1.75, 0].
    """
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["pre"]),
            helper.make_node("Relu", ["pre"], ["y"]),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        initializer=[numpy_helper.from_array(MLP_W, "w"), numpy_helper.from_array(MLP_B, "b")],
    )
    return model(graph, 17, 8)


def ints():
    """a int64[N], flags bool[2] -> next = a + 1 int64[N], positive = a > 0 bool[N], negated = not flags bool[2]."""
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["a", "one"], ["next"]),
            helper.make_node("Greater", ["a", "zero"], ["positive"]),
            helper.make_node("Not", ["flags"], ["negated"]),
        ],
        "ints",
        [
            helper.make_tensor_value_info("a", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("flags", TensorProto.BOOL, [2]),
        ],
        [
            helper.make_tensor_value_info("next", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("positive", TensorProto.BOOL, ["N"]),
            helper.make_tensor_value_info("negated", TensorProto.BOOL, [2]),
        ],
        initializer=[
            numpy_helper.from_array(np.array(1, dtype=np.int64), "one"),
            numpy_helper.from_array(np.array(0, dtype=np.int64), "zero"),
        ],
    )
    return model(graph, 17, 8)


# Every element type a TensorLib number converts to, with the input name used
# for it in the `types` model.
TYPES = [
    ("f64", TensorProto.DOUBLE),
    ("f16", TensorProto.FLOAT16),
    ("i8", TensorProto.INT8),
    ("i16", TensorProto.INT16),
    ("i32", TensorProto.INT32),
    ("u8", TensorProto.UINT8),
    ("u16", TensorProto.UINT16),
    ("u32", TensorProto.UINT32),
    ("u64", TensorProto.UINT64),
]


def types():
    """For each element type T in TYPES: input `<t>` T[2] -> output `<t>_out` = the input."""
    graph = helper.make_graph(
        [helper.make_node("Identity", [name], [f"{name}_out"]) for name, _ in TYPES],
        "types",
        [helper.make_tensor_value_info(name, ty, [2]) for name, ty in TYPES],
        [helper.make_tensor_value_info(f"{name}_out", ty, [2]) for name, ty in TYPES],
    )
    return model(graph, 17, 8)


def fails():
    """x float32[N] -> y float32[2, 2] = reshape(x): valid for N = 4, a runtime error otherwise."""
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        "fails",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])],
        initializer=[numpy_helper.from_array(np.array([2, 2], dtype=np.int64), "shape")],
    )
    return model(graph, 17, 8)


SLOW_W = (np.random.default_rng(11).standard_normal((32, 32)) / 4).astype(np.float32)


def slow():
    """n int64 (a scalar) -> y float32 (a scalar): n iterations of v = tanh(v . W), then mean(v).

    The running time grows with n (a few microseconds per iteration), so the
    tests can make a run that outlasts any timeout.
    """
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("MatMul", ["v_in", "w"], ["vw"]),
            helper.make_node("Tanh", ["vw"], ["v_out"]),
        ],
        "slow_body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [32, 32]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [32, 32]),
        ],
    )
    graph = helper.make_graph(
        [
            helper.make_node("Loop", ["n", "", "v0"], ["v"], body=body),
            helper.make_node("ReduceMean", ["v"], ["y"], keepdims=0),
        ],
        "slow",
        [helper.make_tensor_value_info("n", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])],
        initializer=[
            numpy_helper.from_array(np.full((32, 32), 0.5, dtype=np.float32), "v0"),
            numpy_helper.from_array(SLOW_W, "w"),
        ],
    )
    return model(graph, 17, 8)


BENCH_ROWS = 256
BENCH_LAYERS = 12


def bench_weights():
    rng = np.random.default_rng(3)
    w_in = (rng.standard_normal((64, 256)) / 8).astype(np.float32)
    w_hidden = (rng.standard_normal((256, 256)) / 16).astype(np.float32)
    w_out = (rng.standard_normal((256, 8)) / 16).astype(np.float32)
    return w_in, w_hidden, w_out


def bench():
    """x float32[1, 64] -> y float32[1, 8]: about 2 ms on one CPU core, from few weights.

    x is tiled to 256 rows, projected to 256 columns, sent through
    BENCH_LAYERS layers of tanh(h . W) that share one 256 x 256 weight, averaged
    over the rows and projected to 8 outputs.
    """
    w_in, w_hidden, w_out = bench_weights()
    nodes = [
        helper.make_node("Tile", ["x", "repeats"], ["rows"]),
        helper.make_node("MatMul", ["rows", "w_in"], ["h0_pre"]),
        helper.make_node("Tanh", ["h0_pre"], ["h0"]),
    ]
    for layer in range(1, BENCH_LAYERS + 1):
        nodes.append(helper.make_node("MatMul", [f"h{layer - 1}", "w_hidden"], [f"h{layer}_pre"]))
        nodes.append(helper.make_node("Tanh", [f"h{layer}_pre"], [f"h{layer}"]))
    nodes.append(helper.make_node("ReduceMean", [f"h{BENCH_LAYERS}"], ["pooled"], axes=[0], keepdims=1))
    nodes.append(helper.make_node("MatMul", ["pooled", "w_out"], ["y"]))
    graph = helper.make_graph(
        nodes,
        "bench",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        initializer=[
            numpy_helper.from_array(np.array([BENCH_ROWS, 1], dtype=np.int64), "repeats"),
            numpy_helper.from_array(w_in, "w_in"),
            numpy_helper.from_array(w_hidden, "w_hidden"),
            numpy_helper.from_array(w_out, "w_out"),
        ],
    )
    return model(graph, 17, 8)


def runtime_models():
    """The models of runtime/tests/models, by file stem."""
    return {
        "mlp": mlp(),
        "ints": ints(),
        "types": types(),
        "strings": strings(),
        "fails": fails(),
        "slow": slow(),
        "bench": bench(),
    }


def verify_runtime(models):
    """Runs the runtime's models in ONNX Runtime (one thread, as the devnet does) against numpy."""
    import time

    import onnxruntime as ort

    def session(m):
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        return ort.InferenceSession(m.SerializeToString(), options, providers=["CPUExecutionProvider"])

    (y,) = session(models["mlp"]).run(None, {"x": np.array([[1, 2, 3, 4], [-1, 0, 0, 0]], dtype=np.float32)})
    assert y.tolist() == [[2.75, 1.75, 0.0], [0.0, 0.75, 0.0]], y

    nxt, positive, negated = session(models["ints"]).run(
        None, {"a": np.array([-5, 0, 2**40], dtype=np.int64), "flags": np.array([True, False])}
    )
    assert nxt.tolist() == [-4, 1, 2**40 + 1] and positive.tolist() == [False, False, True]
    assert negated.tolist() == [False, True]

    feeds = {name: np.array([1, 2]).astype(onnx.helper.tensor_dtype_to_np_dtype(ty)) for name, ty in TYPES}
    outs = session(models["types"]).run(None, feeds)
    assert all(o.tolist() == [1, 2] for o in outs)

    (y,) = session(models["fails"]).run(None, {"x": np.arange(4, dtype=np.float32)})
    assert y.shape == (2, 2)
    try:
        session(models["fails"]).run(None, {"x": np.arange(3, dtype=np.float32)})
        raise AssertionError("fails.onnx ran with 3 elements")
    except ort.capi.onnxruntime_pybind11_state.Fail:
        pass

    slow = session(models["slow"])
    start = time.perf_counter()
    (y,) = slow.run(None, {"n": np.array(20000, dtype=np.int64)})
    per_iteration = (time.perf_counter() - start) / 20000
    v = np.full((32, 32), 0.5, dtype=np.float32)
    for _ in range(3):
        v = np.tanh(v @ SLOW_W)
    (y3,) = slow.run(None, {"n": np.array(3, dtype=np.int64)})
    assert y.shape == () and np.allclose(y3, v.mean(), rtol=1e-5)

    bench_session = session(models["bench"])
    x = np.linspace(-1, 1, 64, dtype=np.float32).reshape(1, 64)
    w_in, w_hidden, w_out = bench_weights()
    h = np.tanh(np.tile(x, (BENCH_ROWS, 1)) @ w_in)
    for _ in range(BENCH_LAYERS):
        h = np.tanh(h @ w_hidden)
    expected = h.mean(axis=0, keepdims=True) @ w_out
    (y,) = bench_session.run(None, {"x": x})
    assert np.allclose(y, expected, rtol=1e-4, atol=1e-6)
    runs = 200
    start = time.perf_counter()
    for _ in range(runs):
        bench_session.run(None, {"x": x})
    bench_ms = (time.perf_counter() - start) / runs * 1000
    print(f"runtime models verified: bench.onnx {bench_ms:.2f} ms per run, slow.onnx {per_iteration * 1e6:.1f} us per iteration")


def verify(models):
    """Runs each model in ONNX Runtime against a numpy reference."""
    import onnxruntime as ort

    rng = np.random.default_rng(7)

    def run(m, feeds):
        session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(None, feeds)

    returns = rng.normal(0, 0.01, size=(1, 30)).astype(np.float32)
    expected_vol = np.sqrt(np.mean(returns**2, axis=1))
    for name in ("vol", "opset20"):
        (vol,) = run(models[name], {"returns": returns})
        assert vol.shape == (1,) and np.allclose(vol, expected_vol, rtol=1e-5), name

    a = rng.normal(size=(1, 4)).astype(np.float32)
    b = np.array([[5, -3]], dtype=np.int64)
    y, z = run(models["multi"], {"a": a, "b": b})
    assert np.allclose(y, a * 2 + 1) and (z == b + 1).all() and z.dtype == np.int64

    x = rng.normal(size=(5, 3)).astype(np.float32)
    (y,) = run(models["dynamic"], {"x": x})
    assert y.shape == (5, 1) and np.allclose(y, x @ DYNAMIC_W, rtol=1e-5)

    s_out, y = run(models["strings"], {"s": np.array(["hi"], dtype=object), "x": np.array([1.5], dtype=np.float32)})
    assert list(s_out) == ["hi"] and y.tolist() == [1.5]

    x = np.array([[1.0, 2.0]], dtype=np.float32)
    (y,) = run(models["with_initializer_input"], {"x": x})
    assert np.allclose(y, [[1.25, 1.25]])
    print(f"verified in ONNX Runtime {ort.__version__}")


# The project templates' models (templates/projects/*/models): logistic
# scores with round weights, so their outputs can be worked out by hand.

RISK_W = np.array([[2.0], [3.0], [0.5], [4.0]], dtype=np.float32)
RISK_B = np.array([-4.0], dtype=np.float32)


def risk():
    """features float32[1, 4] -> score float32[1] = sigmoid(features . w + b).

    Features (18-decimal fractions on chain): utilisation of the credit line,
    debt / collateral, missed payments (count), collateral volatility.
    w = [2, 3, 0.5, 4], b = -4: a clean borrower [0, 0, 0, 0] scores 0.018,
    a stretched one [0.9, 0.8, 2, 0.3] scores sigmoid(1.4) = 0.802.
    """
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "w"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["logit"]),
            helper.make_node("Sigmoid", ["logit"], ["s"]),
            helper.make_node("Reshape", ["s", "shape"], ["score"]),
        ],
        "risk",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [1])],
        initializer=[
            numpy_helper.from_array(RISK_W, "w"),
            numpy_helper.from_array(RISK_B, "b"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "shape"),
        ],
    )
    return model(graph, 17, 8)


# Momentum: recent returns weigh more.
DIRECTION_W = (np.array([[1], [1], [2], [2], [3], [3], [4], [4]], dtype=np.float32) * 5.0)


def direction():
    """returns float32[1, 8] -> up float32[1] = sigmoid(returns . w), the probability that the price rises.

    w = 5 * [1, 1, 2, 2, 3, 3, 4, 4] (oldest first): eight returns of +2% give
    sigmoid(2) = 0.881, of -2% sigmoid(-2) = 0.119, flat ones 0.5.
    """
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["returns", "w"], ["logit"]),
            helper.make_node("Sigmoid", ["logit"], ["p"]),
            helper.make_node("Reshape", ["p", "shape"], ["up"]),
        ],
        "direction",
        [helper.make_tensor_value_info("returns", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("up", TensorProto.FLOAT, [1])],
        initializer=[
            numpy_helper.from_array(DIRECTION_W, "w"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "shape"),
        ],
    )
    return model(graph, 17, 8)


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    print(f"wrote {path.relative_to(ROOT)} ({len(data)} bytes)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verify", action="store_true", help="run every model in ONNX Runtime (needs onnxruntime)")
    args = parser.parse_args()

    models = {
        "vol": volatility(),
        "multi": multi(),
        "dynamic": dynamic(),
        "strings": strings(),
        "opset20": volatility(opset=20, ir_version=9),
        "with_initializer_input": with_initializer_input(),
        "graph_names": graph_names(),
    }
    runtime = runtime_models()
    if args.verify:
        verify(models)
        verify_runtime(runtime)

    vol = models["vol"].SerializeToString()
    write(ROOT / "examples" / "quickstart" / "models" / "volatility.onnx", vol)
    write(TEMPLATES / "dynamic-fee" / "models" / "volatility.onnx", vol)
    write(TEMPLATES / "credit-risk" / "models" / "risk.onnx", risk().SerializeToString())
    write(TEMPLATES / "trading-agent" / "models" / "direction.onnx", direction().SerializeToString())
    for name, m in models.items():
        write(UI_MODELS / f"{name}.onnx", m.SerializeToString())
    # Cut inside the graph: the reader must report a truncated file.
    write(UI_MODELS / "truncated.onnx", vol[: len(vol) * 6 // 10])
    write(UI_MODELS / "not_onnx.onnx", b"This is not an ONNX model, just a text file for the compiler's tests.\n")
    for name, m in runtime.items():
        write(RUNTIME_MODELS / f"{name}.onnx", m.SerializeToString())
    return 0


if __name__ == "__main__":
    sys.exit(main())
