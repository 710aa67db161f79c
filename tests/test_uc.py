"""Unlearnable Clusters (``uc``): cluster-wise, label-agnostic, savable, and the generators
really push features towards their target centroids."""
import pytest
import torch
import torch.nn.functional as F

from fuselib import protections
from fuselib.protections import uc  # noqa: F401  (registers "uc")
from fuselib.protections.uc import UnlearnableClusters, kmeans

TINY = dict(clusters=4, surrogate_epochs=4, gen_width=8, gen_blocks=1, gen_steps=20,
            batch_size=32, lr=1e-3)


def _make(**kw):
    p = protections.get("uc", **{**TINY, **kw})
    p.device = torch.device("cpu")
    return p


@pytest.fixture(scope="module")
def data():
    import fuselib

    x, y = fuselib.data.load("cifar10", "test")
    keep = torch.cat([(y == c).nonzero().flatten()[:20] for c in range(10)]).sort().values
    return x[keep], y[keep]


@pytest.fixture(scope="module")
def fitted(data):
    x, y = data
    return _make(seed=0).fit(x, y)


def test_kmeans_recovers_separated_blobs():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 6, generator=g) * 20
    truth = torch.arange(4).repeat_interleave(50)
    pts = centres[truth] + torch.randn(200, 6, generator=g)
    c, a = kmeans(pts, 4, seed=3)
    assert c.shape == (4, 6) and a.shape == (200,)
    # each true blob is one found cluster, and the found clusters are distinct
    found = [set(a[truth == k].tolist()) for k in range(4)]
    assert all(len(s) == 1 for s in found), found
    assert len(set.union(*found)) == 4
    for k in range(4):  # centroids sit on the blob means
        assert torch.allclose(c[a[truth == k][0]], pts[truth == k].mean(0), atol=1e-4)
    c2, a2 = kmeans(pts, 4, seed=3)
    assert torch.equal(c, c2) and torch.equal(a, a2)


def test_apply_is_uint8_within_budget(fitted, data):
    x, y = data
    out = fitted.apply(x, y)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    assert int((out.int() - x.int()).abs().max()) <= 8
    assert fitted.deltas.shape == (4, 3, 32, 32)
    assert int(fitted.deltas.abs().max()) <= 8
    assert "generators" in fitted.cost and "K-means" in fitted.cost


def test_perturbation_is_cluster_wise(fitted, data):
    x, _ = data
    out = fitted.apply(x)
    a = fitted.assign(x)
    assert torch.equal(a, fitted.assignments)  # apply assigns as fit did
    assert len(torch.unique(a)) >= 2
    expect = (x.int() + fitted.deltas[a].int()).clamp(0, 255)
    assert torch.equal(out.int(), expect)
    # two images of the same cluster share δ wherever neither is clipped at 0/255
    k = int(torch.bincount(a).argmax())
    i, j = (a == k).nonzero().flatten()[:2].tolist()
    mid = ((x[i] > 10) & (x[i] < 245) & (x[j] > 10) & (x[j] < 245))
    d = out.int() - x.int()
    assert torch.equal(d[i][mid], d[j][mid])


def test_labels_play_no_part_at_apply(fitted, data):
    x, y = data
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(1))
    out = fitted.apply(x, y)
    assert torch.equal(out, fitted.apply(x, y[perm]))
    assert torch.equal(out, fitted.apply(x))
    assert torch.equal(out[perm], fitted.apply(x[perm]))  # order of the images: irrelevant
    with pytest.raises(ValueError, match="fitted on"):
        fitted.apply(x[:, :, :16, :16])


def test_save_load_round_trip(fitted, data, tmp_path):
    x, y = data
    fitted.save(tmp_path / "uc.pt")
    q = protections.load(tmp_path / "uc.pt")
    q.device = torch.device("cpu")
    assert isinstance(q, UnlearnableClusters) and q.config() == fitted.config()
    assert torch.equal(q.apply(x, y), fitted.apply(x, y))


def test_same_seed_same_result_and_kmeans_surrogate_ignores_labels(data):
    x, y = data[0][::2], data[1][::2]
    quick = dict(surrogate_epochs=1, gen_steps=2)
    a = _make(seed=0, **quick).fit(x, y)
    b = _make(seed=0, **quick).fit(x, y)
    assert torch.equal(a.deltas, b.deltas) and torch.equal(a.centroids, b.centroids)
    assert torch.equal(a.apply(x), b.apply(x))
    assert not torch.equal(_make(seed=1, **quick).fit(x, y).deltas, a.deltas)
    # surrogate_labels="kmeans": fully label-agnostic, the labels given to fit are unused
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(2))
    k1 = _make(seed=0, surrogate_labels="kmeans", **quick).fit(x, y)
    k2 = _make(seed=0, surrogate_labels="kmeans", **quick).fit(x, y[perm])
    assert k1.surrogate_classes == 4
    assert torch.equal(k1.deltas, k2.deltas) and torch.equal(k1.apply(x), k2.apply(x))


def test_generators_pull_features_to_their_target_centroid(fitted, data):
    """δ_i was trained towards centroid t(i) = i + 1 mod K. Measured by the training objective
    KL(softmax(c_t) ‖ softmax(f(x + δ_i))) and by the Euclidean distance ‖f(x + δ_i) − c_t‖
    (means over the images), it must bring the features closer to c_t(i) than the clean
    images and than random ±ε noise do, and closer on average than the other clusters' δs."""
    x, _ = data
    p = fitted
    xf = x.float() / 255
    k = p.clusters
    deltas = p.deltas.float() / 255

    def kl(z, t):
        f = p.features(z.clamp(0, 1))
        target = F.softmax(p.centroids[t], -1).expand_as(f)
        return float(F.kl_div(F.log_softmax(f, -1), target, reduction="batchmean"))

    def dist(z, t):
        return float((p.features(z.clamp(0, 1)) - p.centroids[t]).norm(dim=1).mean())

    g = torch.Generator().manual_seed(0)
    noise = (torch.randint(0, 2, (3, 32, 32), generator=g) * 2 - 1) * p.eps
    K = torch.tensor([[kl(xf + deltas[i], t) for t in range(k)] for i in range(k)])
    on, off = [], []
    for i in range(k):
        t = (i + 1) % k
        assert K[i, t] < kl(xf, t) and K[i, t] < kl(xf + noise, t), (i, K)
        assert dist(xf + deltas[i], t) < dist(xf, t), i
        on.append(K[i, t])
        off += [K[j, t] for j in range(k) if j != i]
    assert sum(on) / len(on) < sum(off) / len(off), K
