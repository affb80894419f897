"""Writes a tiny llama-architecture GGUF model with random weights, for the
real OpenAI-compatible server of tests/llm_server.rs (llama-cpp-python's
`llama_cpp.server`): no model can be downloaded here, and the test needs a
model the server really runs, not its answers.

2 layers, width 64, 4 heads, F32; a GPT-2 style byte-level BPE tokenizer of
106 tokens (printable ASCII, tab, newline, 5 merges, 4 specials) and a
ChatML chat template. The specials' output rows are zero, so greedy decoding
never ends early: a temperature-0 answer runs to max_tokens or a stop
sequence. The same seed writes the same bytes.

Usage: python make_tiny_gguf.py OUT.gguf [SEED]   (needs `gguf` and `numpy`)
"""

import sys

import gguf
import numpy as np


def byte_symbols():
    """GPT-2's reversible byte → printable-character map."""
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


def main(out, seed):
    rng = np.random.default_rng(seed)
    symbol = byte_symbols()
    tokens = [symbol[b] for b in [9, 10] + list(range(32, 127))]
    merges = ["Ġ t", "h e", "Ġt he", "i n", "e r"]
    tokens += [m.replace(" ", "") for m in merges]
    specials = ["<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    bos, _eos, _start, im_end = range(len(tokens), len(tokens) + 4)
    tokens += specials
    types = [gguf.TokenType.NORMAL] * (len(tokens) - 4) + [gguf.TokenType.CONTROL] * 4
    n_vocab, d, n_ff, n_layer, n_head = len(tokens), 64, 128, 2, 4

    w = gguf.GGUFWriter(out, "llama")
    w.add_name("nml-tiny-random")
    w.add_context_length(512)
    w.add_embedding_length(d)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(d // n_head)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(n_vocab)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(bos)
    w.add_eos_token_id(im_end)
    w.add_add_bos_token(False)
    w.add_chat_template(
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )

    def weights(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    output = weights(n_vocab, d, scale=0.25)
    output[-4:] = 0.0
    w.add_tensor("token_embd.weight", weights(n_vocab, d))
    w.add_tensor("output_norm.weight", np.ones(d, np.float32))
    w.add_tensor("output.weight", output)
    for i in range(n_layer):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", np.ones(d, np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            w.add_tensor(p + name + ".weight", weights(d, d, scale=d**-0.5))
        w.add_tensor(p + "ffn_norm.weight", np.ones(d, np.float32))
        w.add_tensor(p + "ffn_gate.weight", weights(n_ff, d, scale=d**-0.5))
        w.add_tensor(p + "ffn_up.weight", weights(n_ff, d, scale=d**-0.5))
        w.add_tensor(p + "ffn_down.weight", weights(d, n_ff, scale=n_ff**-0.5))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0)
