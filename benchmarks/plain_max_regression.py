"""A minimal plain-PyTorch loop for the max-regression protocol (Set Transformer, Lee et al. 2019,
Table 1): n ~ U{1..10}, x ~ U[0, 100], L1 loss, batch 128, 20,000 steps, DeepSets with max
pooling (hidden 64, depth 3), masks for padding, AdamW with a one-cycle schedule. It prints the test
MAE and the wall time: the floor that the whole ``python -m symlight fit --config
max_regression.yaml`` command is compared with in ``benchmarks/overhead.py --whole-process``.

    python benchmarks/plain_max_regression.py [STEPS]
"""

import sys
import time

import torch
import torch.nn as nn

torch.manual_seed(0)
STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 20000


class Layer(nn.Module):
    def __init__(s, cin, cout):
        super().__init__()
        s.a = nn.Linear(cin, cout)
        s.b = nn.Linear(cin, cout, bias=False)

    def forward(s, x, mask):
        p = x.masked_fill(~mask[..., None], torch.finfo(x.dtype).min).max(1, keepdim=True).values
        return (s.a(x) + s.b(p)) * mask[..., None]


class DS(nn.Module):
    def __init__(s, w=64, depth=3):
        super().__init__()
        s.layers = nn.ModuleList([Layer(1 if i == 0 else w, w) for i in range(depth)])
        s.head = nn.Linear(w, 1)

    def forward(s, x, mask):
        for layer in s.layers:
            x = torch.relu(layer(x, mask))
        x = x.masked_fill(~mask[..., None], torch.finfo(x.dtype).min).max(1).values
        return s.head(x).squeeze(-1)


def batch(B=128):
    n = torch.randint(1, 11, (B,))
    mask = torch.arange(10)[None] < n[:, None]
    x = torch.rand(B, 10, 1) * 100 * mask[..., None]
    y = x.squeeze(-1).masked_fill(~mask, -1).max(1).values
    return x, mask, y


m = DS()
opt = torch.optim.AdamW(m.parameters(), 1e-3)
sch = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=STEPS)
t0 = time.time()
for _ in range(STEPS):
    x, mask, y = batch()
    loss = (m(x, mask) - y).abs().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    sch.step()
t = time.time() - t0
with torch.no_grad():
    torch.manual_seed(1)
    errs = [(m(x, mk) - y).abs().mean() for x, mk, y in (batch(1000) for _ in range(10))]
print(f"plain max regression: test MAE {torch.stack(errs).mean():.4f} in {t:.1f}s ({STEPS} steps)")
