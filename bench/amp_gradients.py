"""Is bf16 autocast's training step the fp32 step? One held-out batch, four ways of computing it.

The paper's recipe stays in fp32 on the CPU because a whole clean ResNet-18 run in bf16 ended
several points below the same run in fp32 (``bench/evaluator.py --amp-check``; one seed each).
This script asks whether a single step explains it. A network is trained in fp32 by the
standard recipe (SGD, momentum, weight decay, the plans' batch and lr) on clean CIFAR-10; after
each number of steps in ``--steps`` the gradient of one held-out batch is computed

* in fp32 (the reference),
* under bf16 autocast (what ``amp="auto"`` trains with),
* under bf16 autocast with every BatchNorm in fp32 (its input cast up by a pre-hook), the
  suspect the records named, and
* in fp32 from inputs rounded to bf16: how much of the difference one rounding of the data
  alone makes (the network's own sensitivity),

and each is compared with the reference: the relative error and cosine of the whole gradient,
the ratio of its norm (a bias that slows or speeds training shows there, noise does not), and
BatchNorm's running variance after the step's forward pass. Nothing is trained in bf16: every
comparison starts from the same fp32 weights.

    python bench/amp_gradients.py --steps 0 40 150 --threads 1
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fuselib import data, models  # noqa: E402
from fuselib.experiments.store import host  # noqa: E402
from fuselib.train import bf16_ok, get_recipe, make_optimizer, to_input  # noqa: E402

WAYS = ("bf16 autocast", "bf16, BatchNorm fp32", "fp32, inputs rounded")


@contextlib.contextmanager
def batchnorm_in_fp32(model: nn.Module):
    """Every BatchNorm of ``model`` computes in fp32: its input is cast up before it runs (under
    autocast a BatchNorm runs in its input's dtype)."""
    hooks = [m.register_forward_pre_hook(lambda _m, args: (args[0].float(),))
             for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    try:
        yield
    finally:
        for h in hooks:
            h.remove()


def gradient(model, x, y, way: str):
    """The gradient (one flat float64 vector) and BatchNorm running variances after one forward
    and backward pass of a copy of ``model`` on ``(x, y)`` computed ``way``."""
    m = copy.deepcopy(model).train()
    if way == "fp32, inputs rounded":
        x = x.to(torch.bfloat16).float()
    bf16 = way in ("bf16 autocast", "bf16, BatchNorm fp32")
    fp32_bn = batchnorm_in_fp32(m) if way == "bf16, BatchNorm fp32" else contextlib.nullcontext()
    with fp32_bn, torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = F.cross_entropy(m(x).float(), y)
    loss.backward()
    # float64: sums over 11M entries in fp32 would blur the comparison (a cosine above 1)
    g = torch.cat([p.grad.double().flatten() for p in m.parameters()])
    var = torch.cat([b.double().flatten() for n, b in m.named_buffers()
                     if n.endswith("running_var")])
    return g, var


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="resnet18", choices=models.names())
    ap.add_argument("--steps", type=int, nargs="+", default=[0, 40, 150],
                    help="fp32 training steps before each comparison")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if sorted(args.steps) != args.steps or args.steps[0] < 0:
        ap.error("--steps: non-negative and increasing, e.g. 0 40 150")
    torch.manual_seed(args.seed)
    bs = args.batch_size
    x, y = data.load("cifar10", "train")
    # the held-out batch comes after every training batch the last comparison needs
    need = (args.steps[-1] + 1) * bs
    x, y = x[:need], y[:need]
    xh = to_input(x[-bs:]).contiguous(memory_format=torch.channels_last)
    yh = y[-bs:]
    recipe = get_recipe("standard", arch=args.arch, batch_size=bs, lr=args.lr)
    model = models.get(args.arch).to(memory_format=torch.channels_last)
    opt = make_optimizer(model, recipe)

    print(f"# python bench/amp_gradients.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(f"# {time.strftime('%Y-%m-%d')}, {host()['cpu']}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, native bf16: {bf16_ok(torch.device('cpu'))}")
    print(f"{args.arch}, batch {bs}, lr {args.lr}, seed {args.seed}: one held-out batch's "
          "gradient against fp32's, from the same fp32 weights")
    print(f"{'steps':>6}  {'computed':<22} {'rel. error':>10} {'cosine':>8} {'norm ratio':>10} "
          f"{'BN var err':>10}")
    done = 0
    for target in args.steps:
        model.train()
        for i in range(done, target):  # fp32 training by the recipe's optimizer
            xb = to_input(x[i * bs:(i + 1) * bs]).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(xb), y[i * bs:(i + 1) * bs])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        done = target
        g0, v0 = gradient(model, xh, yh, "fp32")
        for way in WAYS:
            g, v = gradient(model, xh, yh, way)
            err = ((g - g0).norm() / g0.norm()).item()
            cos = F.cosine_similarity(g, g0, 0).item()
            ratio = (g.norm() / g0.norm()).item()
            verr = ((v - v0).abs() / v0.abs().clamp_min(1e-12)).max().item()
            print(f"{target:>6}  {way:<22} {err:>10.4f} {cos:>8.4f} {ratio:>10.4f} {verr:>10.5f}")


if __name__ == "__main__":
    main()
