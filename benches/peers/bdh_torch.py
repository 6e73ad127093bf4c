"""BDH-GPU's per-token recurrent step in PyTorch (CPU), written from the equations (MODELS
§1.3, as specs/bdh_gpu.ng computes them): per layer and head xs = relu(x E_h),
a = rope(xs) S_h, S_h += rope(xs)^T x, ys = relu(LN(a) Ev_h), x = LN(x + LN(concat(xs ys) Dec)).
Untrained weights normal(0, 0.02), batch 1, greedy. Prints "tokens_per_s peak_rss_mib".

    python bdh_torch.py LAYERS D HEADS N VOCAB THREADS TOKENS"""

import math
import resource
import sys
import time

import torch

layers, d, heads, n, vocab, threads, tokens = (int(a) for a in sys.argv[1:8])
torch.set_num_threads(threads)
torch.set_grad_enabled(False)
g = torch.Generator().manual_seed(0)
embed = torch.randn(vocab, d, generator=g) * 0.02
enc = torch.randn(heads, d, n, generator=g) * 0.02
encv = torch.randn(heads, d, n, generator=g) * 0.02
dec = torch.randn(heads * n, d, generator=g) * 0.02
lm = torch.randn(d, vocab, generator=g) * 0.02
S = torch.zeros(layers, heads, n, d)
# RoPE on interleaved pairs (2k, 2k+1), theta 2^16, as the spec's `rope`.
k = torch.arange(0, n, 2, dtype=torch.float64)
freq = 1.0 / 65536.0 ** (k / n) / (2 * math.pi)


def ln(x):
    m = x.mean(-1, keepdim=True)
    v = ((x - m) ** 2).mean(-1, keepdim=True)
    return (x - m) / torch.sqrt(v + 1e-5)


def rope(x, t):
    phase = (t * freq) % 1.0
    ang = (2 * math.pi * phase).to(torch.float32)
    c, s = torch.cos(ang), torch.sin(ang)
    even, odd = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = even * c - odd * s
    out[..., 1::2] = odd * c + even * s
    return out


def step(tok, t):
    x = ln(embed[tok])
    for l in range(layers):
        xs = torch.relu(torch.einsum("d,hdn->hn", x, enc))
        xr = rope(xs, t)
        a = torch.bmm(xr.unsqueeze(1), S[l]).squeeze(1)  # read before the write
        # In place, no (H, N, D) temporary: stacked heads make one rank-1 update.
        S[l].view(heads * n, d).addr_(xr.reshape(-1), x)
        ys = torch.relu(torch.einsum("hd,hdn->hn", ln(a), encv))
        z = (xs * ys).reshape(-1) @ dec
        x = ln(x + ln(z))
    return int(torch.argmax(x @ lm))


tok, t = 65, 0
for _ in range(4):  # warm-up
    tok = step(tok, t)
    t += 1
start = time.perf_counter()
for _ in range(tokens):
    tok = step(tok, t)
    t += 1
elapsed = time.perf_counter() - start
print(f"{tokens / elapsed:.3f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")
