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
EXAMPLE_MODELS = ROOT / "examples" / "dynamic-fee" / "models"

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
    }
    if args.verify:
        verify(models)

    vol = models["vol"].SerializeToString()
    write(EXAMPLE_MODELS / "volatility.onnx", vol)
    for name, m in models.items():
        write(UI_MODELS / f"{name}.onnx", m.SerializeToString())
    # Cut inside the graph: the reader must report a truncated file.
    write(UI_MODELS / "truncated.onnx", vol[: len(vol) * 6 // 10])
    write(UI_MODELS / "not_onnx.onnx", b"This is not an ONNX model, just a text file for the compiler's tests.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
