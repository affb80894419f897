#!/usr/bin/env python3
"""Trains the tiny character-level language model that the runtime embeds as
its default LLM, and writes it to `runtime/src/llm/nml-char-lm.onnx`.

The model is a neural probabilistic language model in the style of Bengio et
al. (2003): the previous K characters are looked up in a learned embedding
table, concatenated, sent through a tanh hidden layer, and projected to one
unnormalised score per vocabulary entry (the next character's logits).

Requirements: `pip install numpy onnx onnxruntime` (a private venv is enough:
`python3 -m venv /tmp/llmvenv && /tmp/llmvenv/bin/pip install numpy onnx
onnxruntime`). No torch: the forward pass, backpropagation and Adam are
written below in numpy.

Usage, from the repository root:

    python3 tools/make_llm.py               # trains, verifies, writes the model
    python3 tools/make_llm.py --steps 200   # quick smoke run (not the shipped model)

Unlike tools/make_models.py, the weights are not written here by hand: they
are TRAINED, deterministically (np.random.default_rng(0), a fixed number of
steps, float32), on the project's own English documentation (`README.md`
and `docs/*.md`, read at run time in sorted order). The same numpy/BLAS and
the same documents give the same weights; edited documents give a slightly
different model. Training takes two to three minutes on one core. The
script then runs the exported file in ONNX Runtime, compares it with the
numpy forward pass, and prints greedy samples.

The graph: input `context` int64 [1, K] (character ids, left-padded with 0),
output `logits` float32 [1, V]. Opset 17, IR version 8. Metadata:

    nml.vocab    the characters of ids 1..V-1 in id order, one string of 96:
                 "\\n" then ASCII 32..126. Id 0 (padding) is NOT written:
                 ONNX Runtime's C API returns metadata as NUL-terminated
                 strings, so a leading NUL would hide the rest. The
                 character at index i of the string has id i + 1.
    nml.context  K, in decimal.
    nml.about    one sentence on what the model is and what it was trained on.

Tokenizing: a character outside the vocabulary maps to the id of " " (2).
Greedy decoding takes the argmax over ids 1..V-1 (never the padding id).
"""

import os

# One BLAS thread: on a small shared machine it is much faster than several for
# these matrix sizes, and it keeps the summation order (and the weights) fixed.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import pathlib
import re
import sys
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "runtime" / "src" / "llm" / "nml-char-lm.onnx"
PRODUCER = "nml tools/make_llm.py"

# Vocabulary: 0 = padding/unknown, then "\n", then printable ASCII 32..126.
VOCAB = "\x00" + "\n" + "".join(chr(c) for c in range(32, 127))
V = len(VOCAB)  # 97
STOI = {ch: i for i, ch in enumerate(VOCAB) if i > 0}
SPACE = STOI[" "]

# Model and training hyperparameters (the shipped model uses these).
# K = 8: on this ~115 kB corpus a wider window only overfits (K = 32, E = 16
# reached 3.46 bits/char held out against 2.23 for this configuration).
K = 8           # context window, in characters
E = 32          # embedding width per character
H = 512         # hidden units
STEPS = 24000   # Adam steps
BATCH = 128
LR = 2e-3       # peak learning rate, cosine-decayed to LR / 20
WARMUP = 200
WEIGHT_DECAY = 0.01  # decoupled (AdamW), matrices only
DROPOUT = 0.3   # on the hidden layer, training only
SHORT_FRAC = 0.2  # fraction of examples whose context is cut (zero-padded) to a random length
HOLDOUT = 0.05  # last 5% of the corpus, never trained on


def encode(text):
    return np.array([STOI.get(ch, SPACE) for ch in text], dtype=np.int64)


def load_corpus():
    files = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
    raw = "".join(f.read_text(encoding="utf-8") for f in files)
    # Collapse runs of spaces/tabs and of blank lines; nothing else is changed.
    text = re.sub(r"[ \t]+", " ", raw)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return files, raw, text


def init_params(rng):
    fan_in = K * E
    return {
        "C": (rng.standard_normal((V, E)) * 1.0).astype(np.float32),
        "W1": (rng.standard_normal((fan_in, H)) * (1.0 / np.sqrt(fan_in))).astype(np.float32),
        "b1": np.zeros(H, np.float32),
        "W2": (rng.standard_normal((H, V)) * (0.1 / np.sqrt(H))).astype(np.float32),
        "b2": np.zeros(V, np.float32),
    }


def forward(p, X):
    """X int64 [B, K] -> logits float32 [B, V] (inference: no dropout)."""
    e = p["C"][X].reshape(X.shape[0], K * E)
    h = np.tanh(e @ p["W1"] + p["b1"])
    return h @ p["W2"] + p["b2"]


def log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def loss_and_grads(p, X, Y, rng):
    B = X.shape[0]
    e = p["C"][X].reshape(B, K * E)
    h = np.tanh(e @ p["W1"] + p["b1"])
    keep = (rng.random(h.shape) >= DROPOUT).astype(np.float32) / (1.0 - DROPOUT)
    hd = h * keep
    logits = hd @ p["W2"] + p["b2"]
    lp = log_softmax(logits)
    loss = -lp[np.arange(B), Y].mean()

    dlogits = np.exp(lp)
    dlogits[np.arange(B), Y] -= 1.0
    dlogits /= B
    g = {"W2": hd.T @ dlogits, "b2": dlogits.sum(axis=0)}
    dh = (dlogits @ p["W2"].T) * keep
    da = dh * (1.0 - h * h)
    g["W1"] = e.T @ da
    g["b1"] = da.sum(axis=0)
    de = (da @ p["W1"].T).reshape(B * K, E)
    dC = np.zeros_like(p["C"])
    np.add.at(dC, X.reshape(-1), de)
    g["C"] = dC
    return float(loss), g


def contexts(padded, positions):
    """Windows of K ids ending just before each position of the unpadded text."""
    return padded[positions[:, None] + np.arange(K)[None, :]]


def mean_bits(p, padded, ids, positions, chunk=4096):
    total = 0.0
    for s in range(0, len(positions), chunk):
        pos = positions[s:s + chunk]
        lp = log_softmax(forward(p, contexts(padded, pos)))
        total -= lp[np.arange(len(pos)), ids[pos]].sum()
    return total / len(positions) / np.log(2.0)


def train(ids, n_train, steps, rng):
    padded = np.concatenate([np.zeros(K, np.int64), ids])
    p = init_params(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    s = {k: np.zeros_like(v) for k, v in p.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8
    train_pos = np.arange(n_train)
    held_pos = np.arange(n_train, len(ids))

    start_bits = mean_bits(p, padded, ids, train_pos)
    print(f"step 0: train {start_bits:.3f} bits/char, held-out {mean_bits(p, padded, ids, held_pos):.3f}")
    t0 = time.time()
    avg = None
    for step in range(1, steps + 1):
        pos = rng.integers(0, n_train, BATCH)
        X = contexts(padded, pos)
        # Teach the model short (left-padded) prompts too.
        short = rng.random(BATCH) < SHORT_FRAC
        keep_len = rng.integers(1, K + 1, BATCH)
        cut = short[:, None] & (np.arange(K)[None, :] < (K - keep_len)[:, None])
        X = np.where(cut, 0, X)
        loss, g = loss_and_grads(p, X, ids[pos], rng)
        avg = loss if avg is None else 0.98 * avg + 0.02 * loss

        if step <= WARMUP:
            lr = LR * step / WARMUP
        else:
            frac = (step - WARMUP) / max(1, steps - WARMUP)
            lr = LR / 20 + (LR - LR / 20) * 0.5 * (1 + np.cos(np.pi * frac))
        for k in p:
            m[k] = b1 * m[k] + (1 - b1) * g[k]
            s[k] = b2 * s[k] + (1 - b2) * g[k] * g[k]
            mh = m[k] / (1 - b1 ** step)
            sh = s[k] / (1 - b2 ** step)
            if k in ("W1", "W2"):
                p[k] *= np.float32(1 - lr * WEIGHT_DECAY)
            p[k] -= (lr * mh / (np.sqrt(sh) + eps)).astype(np.float32)
        if step % 1000 == 0 or step == steps:
            print(f"step {step}: batch loss (ema) {avg / np.log(2):.3f} bits/char, "
                  f"lr {lr:.2e}, {time.time() - t0:.0f}s", flush=True)
    seconds = time.time() - t0
    end_bits = mean_bits(p, padded, ids, train_pos)
    held_bits = mean_bits(p, padded, ids, held_pos)
    return p, seconds, start_bits, end_bits, held_bits


def export(p, about):
    nodes = [
        helper.make_node("Gather", ["C", "context"], ["emb"], axis=0),  # [1, K, E]
        helper.make_node("Reshape", ["emb", "flat_shape"], ["flat"]),  # [1, K*E]
        helper.make_node("MatMul", ["flat", "W1"], ["a1"]),
        helper.make_node("Add", ["a1", "b1"], ["z1"]),
        helper.make_node("Tanh", ["z1"], ["h"]),
        helper.make_node("MatMul", ["h", "W2"], ["a2"]),
        helper.make_node("Add", ["a2", "b2"], ["logits"]),
    ]
    inits = [numpy_helper.from_array(p[k].astype(np.float32), k) for k in ("C", "W1", "b1", "W2", "b2")]
    inits.append(numpy_helper.from_array(np.array([1, K * E], dtype=np.int64), "flat_shape"))
    graph = helper.make_graph(
        nodes,
        "nml_char_lm",
        [helper.make_tensor_value_info("context", TensorProto.INT64, [1, K])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, V])],
        initializer=inits,
    )
    m = helper.make_model(graph, producer_name=PRODUCER, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    helper.set_model_props(m, {"nml.vocab": VOCAB[1:], "nml.context": str(K), "nml.about": about})
    onnx.checker.check_model(m, full_check=True)
    return m


def window(text):
    ids = encode(text)[-K:]
    return np.concatenate([np.zeros(K - len(ids), np.int64), ids])[None, :]


def greedy(run, prompt, n=80):
    out = prompt
    for _ in range(n):
        out += VOCAB[1 + int(np.argmax(run(window(out))[0][1:]))]  # never id 0
    return out[len(prompt):]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--out", type=pathlib.Path, default=OUT)
    args = ap.parse_args()

    files, raw, text = load_corpus()
    ids = encode(text)
    n_train = int(len(ids) * (1 - HOLDOUT))
    print(f"corpus: {len(files)} files, {len(raw.encode('utf-8'))} bytes read, "
          f"{len(ids)} characters after collapsing whitespace; "
          f"{n_train} train, {len(ids) - n_train} held out")

    rng = np.random.default_rng(0)
    p, seconds, start_bits, end_bits, held_bits = train(ids, n_train, args.steps, rng)
    n_params = sum(v.size for v in p.values())
    print(f"trained {args.steps} steps in {seconds:.0f}s; {n_params} parameters")
    print(f"train loss: {start_bits:.3f} -> {end_bits:.3f} bits/char; held-out (last 5%): {held_bits:.3f} bits/char")

    about = (f"A {n_params}-parameter character-level MLP language model (Bengio et al. 2003 style: "
             f"{K}-char window, {E}-d embeddings, {H} tanh units) trained by tools/make_llm.py "
             f"on the nml project's own README.md and docs/*.md ({len(ids)} characters).")
    m = export(p, about)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(m, str(args.out))
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out} "
          f"({args.out.stat().st_size} bytes), K={K}, V={V}")

    import onnxruntime as ort
    sess = ort.InferenceSession(str(args.out), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    assert meta["nml.vocab"] == VOCAB[1:] and meta["nml.context"] == str(K), "metadata mismatch"

    def run_ort(X):
        return sess.run(["logits"], {"context": X})[0]

    def run_np(X):
        return forward(p, X)

    X = window(text[n_train - 100:n_train])
    diff = float(np.abs(run_ort(X) - run_np(X)).max())
    X = window("The devnet ")
    diff = max(diff, float(np.abs(run_ort(X) - run_np(X)).max()))
    print(f"onnxruntime {ort.__version__} vs numpy forward: max abs diff {diff:.3g}")
    if diff > 1e-3:
        sys.exit("the exported model disagrees with the numpy forward pass")

    for prompt in ["The devnet ", "A contract calls ", "user: Is ETH going up?\nassistant:"]:
        sample = greedy(run_ort, prompt)
        if sample != greedy(run_np, prompt):
            print("  (numpy greedy sample differs)")
        print(f"greedy {prompt!r} -> {sample!r}")


if __name__ == "__main__":
    main()
