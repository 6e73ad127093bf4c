"""Writes the BDH-GPU spec (the network of specs/bdh_gpu.ng) for any configuration, e.g. the
reference default (6 layers, D = 256, 4 heads, N = 8192 per head):

    python bdh_spec.py OUT.ng [--layers 6] [--d 256] [--heads 4] [--n 8192] [--vocab 256]
                              [--text data/tiny.txt] [--precision f32]

The layers are unrolled as populations as in the bundled spec; encoder, encoder_v and decoder
are one synapse type each, shared by every layer (as the reference's weights are)."""

import argparse
import re
from pathlib import Path


BUNDLED = Path(__file__).resolve().parents[2] / "specs" / "bdh_gpu.ng"


def spec(layers, d, heads, n, vocab, text, precision, record=()):
    """The spec text: the cell and synapse types of specs/bdh_gpu.ng (read from it, so the
    two cannot drift apart), its constants set to this configuration, and the network unrolled
    over `layers` layers and `heads` heads; `record` adds record items (e.g. X1h0.xs)."""
    bundled = BUNDLED.read_text()
    types = bundled[: bundled.index("// --- network")]
    for name, value in (("d_model", d), ("n_neuron", n), ("n_vocab", vocab)):
        types, count = re.subn(rf"^const {name} = \d+", f"const {name} = {value}", types, flags=re.M)
        assert count == 1, name
    out = [
        f"// BDH-GPU, {layers} layers, D = {d}, {heads} heads, N = {n} per head, vocab {vocab}:",
        "// written by benches/peers/bdh_spec.py from specs/bdh_gpu.ng.",
        types,
    ]
    w = out.append
    w(f'input Tok = tokens("{text}", vocab = n_vocab, cycle = true)')
    w("population Res0 = Embedded[d_model]")
    for l in range(1, layers + 1):
        for kind, cell, size in (("X", "XNeuron", "n_neuron"), ("A", "AttnRead", "d_model"),
                                 ("Y", "YNeuron", "n_neuron")):
            for h in range(heads):
                w(f"population {kind}{l}h{h} = {cell}[{size}]")
        w(f"population Res{l} = Residual[d_model]")
    w("population Out = Logit[n_vocab]")
    w("project Emb: Tok -> Res0 via Embed { connect all_to_all; post.e = sum(w * pre.x) }")
    for l in range(1, layers + 1):
        prev = f"Res{l - 1}"
        xs = ", ".join(f"X{l}h{h}" for h in range(heads))
        as_ = ", ".join(f"A{l}h{h}" for h in range(heads))
        ys = ", ".join(f"Y{l}h{h}" for h in range(heads))
        w(f"project Enc{l}: {prev} -> ({xs}) via Encoder {{ connect all_to_all; post.lat = sum(w * pre.x) }}")
        for h in range(heads):
            w(f"project Val{l}h{h}: {prev} -> A{l}h{h} {{ connect one_to_one; post.v = sum(pre.x) }}")
            w(f"project Mem{l}h{h}: X{l}h{h} -> A{l}h{h} via Memory {{ connect all_to_all; post.a = sum(S * pre.xr) }}")
        w(f"project EncV{l}: ({as_}) -> ({ys}) via EncoderV {{")
        w("  connect bernoulli(floor(i / d_model) == floor(j / n_neuron))")
        w("  post.lat = sum(w * pre.ykv)")
        w("}")
        w(f"project Gate{l}: ({xs}) -> ({ys}) {{ connect one_to_one; post.xs = sum(pre.xs) }}")
        w(f"project Dec{l}: ({ys}) -> Res{l} via Decoder {{ connect all_to_all; post.z = sum(w * pre.xy) }}")
        w(f"project Skip{l}: {prev} -> Res{l} {{ connect one_to_one; post.prev = sum(pre.x) }}")
    w(f"project Head: Res{layers} -> Out via LMHead {{ connect all_to_all; post.logit = sum(w * pre.x) }}")
    w("record " + ", ".join(["Out.logit", *record]))
    w(f"run {{ dt = 1 ms; duration = 512 ms; seed = 1337; precision = {precision} }}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--d", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--n", type=int, default=8192)
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--text", default="data/tiny.txt")
    p.add_argument("--precision", default="f32")
    p.add_argument("--record", action="append", default=[], help="extra record items")
    a = p.parse_args()
    with open(a.out, "w") as f:
        f.write(spec(a.layers, a.d, a.heads, a.n, a.vocab, a.text, a.precision, a.record))
