"""The real model server of tests/remote_models.rs and benches/remote.rs:
KServe's own Python model server (the `kserve` package, KServe v2 / Open
Inference Protocol REST) serving ONNX files on onnxruntime, CPU only. The
server, its routing, validation and wire format are KServe's; this file only
tells it how to load and run an ONNX file (a `kserve.Model`), as a KServe
user writes a custom predictor.

Usage: python kserve_onnx.py PORT model1.onnx [model2.onnx ...]   (each served under its file stem)
Env: SERVE_DELAY_MS=N sleeps N ms before each run (a stand-in for a model on a busy GPU).
"""
import asyncio, os, pathlib, sys, time, uuid
from concurrent.futures import ThreadPoolExecutor

import onnxruntime as ort
import uvicorn
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer
from kserve.errors import InferenceError, InvalidInput

ORT_TO_V2 = {"float": "FP32", "double": "FP64", "float16": "FP16", "bool": "BOOL", "string": "BYTES",
             **{t: t.upper() for t in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")}}
POOL = ThreadPoolExecutor(max_workers=16)  # ORT releases the GIL: runs go side by side
DELAY = int(os.environ.get("SERVE_DELAY_MS", "0")) / 1000


class LoopbackConfig(uvicorn.Config):  # kserve hardcodes host 0.0.0.0
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{**kwargs, "host": "127.0.0.1"})


uvicorn.Config = LoopbackConfig


def describe(args):
    return [{"name": a.name, "datatype": ORT_TO_V2[a.type[7:-1]],  # "tensor(float)" -> "float"
             "shape": [d if isinstance(d, int) else -1 for d in a.shape]} for a in args]


class OnnxModel(Model):
    def __init__(self, path):
        super().__init__(pathlib.Path(path).stem)
        self.path = path

    def load(self):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(self.path, opts, providers=["CPUExecutionProvider"])
        self.inputs, self.outputs = describe(self.session.get_inputs()), describe(self.session.get_outputs())
        self.ready = True
        return True

    def get_input_types(self):
        return self.inputs

    def get_output_types(self):
        return self.outputs

    def run(self, feeds):
        time.sleep(DELAY)
        return self.session.run(None, feeds)

    async def predict(self, request: InferRequest, headers=None) -> InferResponse:
        expected, feeds = {i["name"]: i for i in self.inputs}, {}
        for t in request.inputs:
            spec = expected.get(t.name)
            if spec is None:
                raise InvalidInput(f"unknown input '{t.name}'; expected {sorted(expected)}")
            if t.datatype != spec["datatype"]:
                raise InvalidInput(f"input '{t.name}' has datatype {t.datatype}, expected {spec['datatype']}")
            if len(t.shape) != len(spec["shape"]) or any(e not in (-1, g) for e, g in zip(spec["shape"], t.shape)):
                raise InvalidInput(f"input '{t.name}' has shape {list(t.shape)}, expected {spec['shape']}")
            try:
                feeds[t.name] = t.as_numpy()
            except ValueError as e:  # data does not fit the shape, or a string for a number
                raise InvalidInput(f"input '{t.name}': {e}")
        missing = sorted(set(expected) - set(feeds))
        if missing:
            raise InvalidInput(f"missing inputs {missing}")
        try:
            results = await asyncio.get_running_loop().run_in_executor(POOL, self.run, feeds)
        except Exception as e:
            raise InferenceError(f"onnxruntime: {e}")  # -> 500 {"error": ...}
        outputs = []
        for spec, value in zip(self.outputs, results):
            out = InferOutput(spec["name"], list(value.shape), spec["datatype"])
            out.set_data_from_numpy(value, binary_data=False)
            outputs.append(out)
        return InferResponse(model_name=self.name, infer_outputs=outputs, response_id=request.id or str(uuid.uuid4()))


if __name__ == "__main__":
    port, files = int(sys.argv[1]), sys.argv[2:]
    models = [OnnxModel(f) for f in files]
    for m in models:
        m.load()
    ModelServer(http_port=port, enable_grpc=False, workers=1).start(models)
