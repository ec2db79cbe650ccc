"""Variants of the anomaly model on digits, trained by a plain PyTorch loop (no Lightning).

Trains a ConvEncoder and a set head on ``SetAnomalyDataModule`` (digits) for ``--steps`` fresh
batches with AdamW and a one-cycle schedule, as ``anomaly.yaml`` does, then reports the accuracy on
the fixed validation and test sets of 16 and 64. The head is ``--net similarity`` (``anomaly.yaml``'s:
minus the mean cosine similarity of each image to the set, ``configs/models/odd_one_out.yaml``) or
``--net deepsets`` (DeepSets with mean pooling). Used to compare heads, encoder and regularisation
settings, and to measure how much the result depends on the initialisation (``--init-seed``) and
on the split of the images (``--seed``). The defaults are the settings of ``anomaly.yaml``.

    python benchmarks/anomaly_variants.py --init-seed 1
    python benchmarks/anomaly_variants.py --net deepsets --shift 0 --dropout 0.3
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import yaml
from torch import nn

from symlight.cli import resolve_config
from symlight.models import ConvEncoder, DeepSets, EquivariantNetwork
from symlight.tasks import SetAnomalyDataModule


class Encoded(nn.Module):
    """Encoder on every element (the sets here are never padded), then the set network."""

    def __init__(self, enc: nn.Module, net: nn.Module) -> None:
        super().__init__()
        self.enc, self.net = enc, net

    def forward(self, x, mask):
        batch, n = x.shape[:2]
        return self.net(self.enc(x.flatten(0, 1)).view(batch, n, -1), mask=mask)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--net", choices=("similarity", "deepsets"), default="similarity")
    p.add_argument("--pool", default="mean", help="--net deepsets: pooling")
    p.add_argument("--hidden", type=int, default=64, help="--net deepsets: width")
    p.add_argument("--depth", type=int, default=3, help="--net deepsets: layers")
    p.add_argument("--ch", default="32,64", help="encoder channels, comma-separated")
    p.add_argument("--out", type=int, default=64)
    p.add_argument("--head", default="flatten")
    p.add_argument("--norm", default="group")
    p.add_argument("--shift", type=int, default=1)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--wd", type=float, default=0.0)
    p.add_argument("--bs", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0, help="data seed: the split and the sets")
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--init-seed", type=int, default=0, help="seed of the weights")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.init_seed)
    channels = [int(c) for c in a.ch.split(",")]
    enc = ConvEncoder(
        (1, 8, 8), channels, out_channels=a.out, norm=a.norm, head=a.head, dropout=a.dropout
    )
    if a.net == "similarity":  # the shipped spec, as anomaly.yaml uses it
        spec = yaml.safe_load(Path(resolve_config("models/odd_one_out.yaml")).read_text())
        net = EquivariantNetwork(a.out, 1, 1, **spec["init_args"])
    else:
        net = DeepSets(a.out, 1, 1, hidden=a.hidden, depth=a.depth, pooling=a.pool)
    model = Encoded(enc, net)
    task = SetAnomalyDataModule(
        seed=a.seed, shift=a.shift, batch_size=a.bs, batches_per_epoch=a.steps
    )
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.wd)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.steps)

    def evaluate(split: str) -> dict[int, float]:
        model.eval()
        res = {}
        with torch.no_grad():
            for n in (16, 64):
                right = total = 0
                for b in task.fixed_sets(split, n):
                    right += task.evaluate(model(b["x"], b["mask"]), b)["acc"].sum().item()
                    total += len(b["y"])
                res[n] = right / total
        model.train()
        return res

    start = time.time()
    for i, b in enumerate(task.train_dataloader()):
        loss = task.loss(model(b["x"], b["mask"]), b)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if i % 200 == 0:
            print(i, round(loss.item(), 4), round(time.time() - start, 1), flush=True)
    seconds = time.time() - start
    print(vars(a), "train_s", round(seconds, 1), "val", evaluate("val"), "test", evaluate("test"))


if __name__ == "__main__":
    main()
