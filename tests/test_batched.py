"""Several seeds as one grouped model (fuselib.batched) train as separate runs would."""
import pytest
import torch
import torch.nn.functional as F

from fuselib import batched, models
from fuselib import train as T

WIDTHS = {"widths": (8, 16, 16), "stem": 8}


def _nets(seeds):
    out = []
    for s in seeds:
        torch.manual_seed(s)
        out.append(models.get("fastnet", 10, **WIDTHS))
    return out


def test_grouped_model_is_the_copies_side_by_side():
    nets = _nets((0, 1, 2))
    g = batched.GroupedFastNet(nets).eval()
    for net in nets:
        net.eval()
    xs = [torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    out = g(torch.cat(xs, 1))
    for k, (net, x) in enumerate(zip(nets, xs)):
        # float reassociation only: a grouped convolution sums in another order
        assert torch.allclose(out[:, k], net(x), atol=1e-5)
    for net, back in zip(nets, g.split(nets[0])):  # and back, exactly
        for (name, v), w in zip(net.state_dict().items(), back.state_dict().values()):
            assert torch.equal(v, w), name


def test_the_summed_loss_gives_each_copy_its_own_gradient():
    nets = _nets((3, 4))
    g = batched.GroupedFastNet(nets)
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(8, 3, 32, 32, generator=gen) for _ in nets]
    ys = [torch.randint(0, 10, (8,), generator=gen) for _ in nets]
    logits = g(torch.cat(xs, 1))
    sum(F.cross_entropy(logits[:, k], ys[k]) for k in range(2)).backward()
    for net, x, y in zip(nets, xs, ys):
        F.cross_entropy(net(x), y).backward()
    first = g.features[0].weight.grad.chunk(2)
    for k, net in enumerate(nets):
        assert torch.allclose(first[k], net.features[0].weight.grad, atol=1e-5)
        assert torch.allclose(g.head.grad[k], net.head.weight.grad, atol=1e-5)


@pytest.fixture(scope="module")
def cifar_2k():
    import fuselib

    x, y = fuselib.data.load("cifar10", "test")
    return x[:2560], y[:2560]


def test_batched_seeds_match_separate_runs(cifar_2k):
    """Each seed of a batched run against the same seed trained alone: the same initial weights
    and random draws, so the runs differ only by floating-point order. Over 3 epochs that
    drifts; the tolerance (6 points on 512 test images, where two seeds of the same separate
    run differ by about as much) says the batched runs are draws of the same distribution."""
    x, y = cifar_2k
    xt, yt = x[-512:], y[-512:]
    kw = dict(epochs=3, batch_size=64, model_kwargs=WIDTHS, amp="off")
    runs = batched.train_seeds(x[:-512], y[:-512], xt, yt, seeds=(0, 1), device="cpu", **kw)
    for r in runs:
        alone = T.train(x[:-512], y[:-512], xt, yt, seed=r["seed"], device="cpu", **kw)
        assert abs(r["accuracy"] - alone["accuracy"]) <= 0.06, (r["seed"], r["curve"],
                                                                 alone["curve"])
        assert r["batched"] == 2 and len(r["curve"]) == 3
        # the returned model is an ordinary fastnet with the run's accuracy
        assert T.evaluate(r["model"], xt, yt, tta=True, amp="off") == pytest.approx(r["accuracy"])
    assert runs[0]["curve"] != runs[1]["curve"]


def test_train_seeds_refuses_what_it_cannot_batch(cifar_small):
    x, y = cifar_small
    with pytest.raises(ValueError, match="fastnet only"):
        batched.train_seeds(x, y, x, y, arch="resnet18", seeds=(0, 1))
    with pytest.raises(ValueError, match="defences"):
        batched.train_seeds(x, y, x, y, cutout=16, seeds=(0, 1))
    with pytest.raises(ValueError, match="distinct"):
        batched.train_seeds(x, y, x, y, seeds=(1, 1))


def test_one_training_set_per_copy(cifar_2k):
    """Several protections' data (here: clean and a shuffled-label copy) in one batched run;
    each copy learns its own data."""
    x, y = cifar_2k
    xt, yt = x[-512:], y[-512:]
    xs, ys = x[:2048], y[:2048]
    shuffled = ys[torch.randperm(len(ys), generator=torch.Generator().manual_seed(0))]
    kw = dict(epochs=3, batch_size=64, model_kwargs=WIDTHS, amp="off")
    clean, noise = batched.train_seeds([xs, xs], [ys, shuffled], xt, yt, seeds=(0, 0),
                                       device="cpu", **kw)
    assert clean["accuracy"] > 0.25 and noise["accuracy"] < 0.2, (clean["curve"], noise["curve"])
    with pytest.raises(ValueError, match="one per seed"):
        batched.train_seeds([xs, xs], ys, xt, yt, seeds=(0, 1, 2))
