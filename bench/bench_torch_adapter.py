"""Patched ResNet-18-like model vs plain PyTorch on CPU: forward+backward time.

Standalone script (not a pytest-benchmark suite)::

    python bench/bench_torch_adapter.py --threads 1 --repeat 5 --size 112

Both models live in one process, share the same threads (fastconv's and
PyTorch's), get the same input, and are timed alternately; the medians and
their ratio are printed. Only ratios are meaningful on a shared machine.
"""
import argparse
import copy
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

try:
    import fastconv
except ImportError:  # run from a source checkout built in place
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import fastconv
import fastconv.torch as fct


class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.down = None
        if stride != 1 or c_in != c_out:
            self.down = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                      nn.BatchNorm2d(c_out))

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet18(nn.Module):
    """torchvision's resnet18 layout; the global pool is an nn.AvgPool2d so it is patched too."""

    def __init__(self, size, classes=1000):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
                                  nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        layers, c = [], 64
        for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(c, c_out, stride), BasicBlock(c_out, c_out, 1)]
            c = c_out
        self.layers = nn.Sequential(*layers)
        final = -(-size // 32)
        self.pool = nn.AvgPool2d(final)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


def step(model, x):
    model.zero_grad(set_to_none=True)
    t0 = time.perf_counter()
    model(x).sum().backward()
    return time.perf_counter() - t0


def forward_only(model, x):
    t0 = time.perf_counter()
    with torch.no_grad():
        model(x)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="threads for fastconv and PyTorch")
    ap.add_argument("--repeat", type=int, default=5, help="timed alternating rounds")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=112, help="input height and width")
    ap.add_argument("--forward-only", action="store_true", help="also time no_grad forward")
    ap.add_argument("--profile", action="store_true",
                    help="print fastconv.profile() of one patched forward+backward")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    fastconv.set_num_threads(args.threads)
    torch.manual_seed(0)
    plain = ResNet18(args.size)
    fast = fct.patch(copy.deepcopy(plain))
    x = torch.rand(args.batch, 3, args.size, args.size) * 2 - 1

    # sanity: same forward before timing anything (train-mode BN on both)
    with torch.no_grad():
        err = (plain(x) - fast(x)).abs().max().item()
    print(f"ResNet-18-like, batch {args.batch}, {args.size}x{args.size}, float32, "
          f"{args.threads} thread(s); max |patched - plain| forward = {err:.2e}")

    cases = [("forward+backward", step)]
    if args.forward_only:
        cases.append(("forward (no_grad)", forward_only))
    for label, fn in cases:
        fn(plain, x), fn(fast, x)  # warm-up
        t_plain, t_fast = [], []
        for _ in range(args.repeat):
            t_plain.append(fn(plain, x))
            t_fast.append(fn(fast, x))
        mp, mf = statistics.median(t_plain) * 1e3, statistics.median(t_fast) * 1e3
        print(f"{label:18s}  pytorch {mp:9.1f} ms   fastconv {mf:9.1f} ms   "
              f"ratio fastconv/pytorch {mf / mp:5.2f}   (median of {args.repeat})")
    if args.profile:
        from fastconv.profile import profile
        with profile() as prof:
            step(fast, x)
        print(prof)


if __name__ == "__main__":
    main()
