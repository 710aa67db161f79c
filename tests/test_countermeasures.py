import pytest
import torch

from fuselib import countermeasures as C


@pytest.mark.parametrize("spec", ["none", "lowpass:0.3", "lowpass:cutoff=0.5,basis=fft",
                                  "lowpass:cutoff=0.2,profile=gaussian", "rsk",
                                  "rsk:keep=0.5,strength=1.0,std=0.2,seed=3"])
def test_shape_dtype_range(spec, cifar_small):
    x, _ = cifar_small
    out = C.get(spec)(x)
    assert out.shape == x.shape and out.dtype == torch.uint8


@pytest.mark.parametrize("basis", ["dct", "fft"])
def test_lowpass_extremes(basis, cifar_small):
    x, _ = cifar_small
    assert torch.equal(C.get("lowpass", cutoff=1.0, basis=basis)(x), x)
    flat = C.get("lowpass", cutoff=0.0, basis=basis)(x).float()
    mean = x.float().mean(dim=(-2, -1), keepdim=True)
    assert (flat - mean).abs().max() <= 0.5 + 1e-4  # a constant image per channel


def test_lowpass_removes_detail(cifar_small):
    x, _ = cifar_small
    out = C.get("lowpass:0.1")(x)
    assert (out.float() - x.float()).abs().mean() > 5


def test_errors():
    with pytest.raises(KeyError, match="unknown countermeasure 'blur9'"):
        C.get("blur9")
    with pytest.raises(ValueError, match="cutoff"):
        C.get("lowpass", cutoff=2)
    with pytest.raises(ValueError, match="uint8"):
        C.get("lowpass")(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="positional"):
        C.get("none:3")


# ------------------------------------------------------------------ the whole suite
QUICK = {"dvae": dict(epochs=1, width=16), "orthogonal": dict(epochs=2)}


@pytest.mark.parametrize("spec", C.SUITE + ("highpass:cutoff=0.3,basis=fft,profile=gaussian",
                                            "mean:5", "median:5", "gaussian:sigma=1"))
def test_suite_keeps_shape_dtype_range(spec, cifar_small):
    x, y = cifar_small
    cm = C.get(spec, **QUICK.get(spec.split(":")[0], {}))
    out = cm(x, y)
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert cm.kind in ("preprocessing", "learned", "training")
    if cm.kind == "training":
        assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()
    assert isinstance(cm.recipe, dict)
    assert torch.equal(C.get(spec, **QUICK.get(spec.split(":")[0], {}))(x, y), out)  # seeded


def test_highpass_and_bandstop_complement_lowpass(cifar_small):
    x, _ = cifar_small
    xf = x.float()
    hp = C.get("highpass", cutoff=0.3, keep_mean=False).transform(xf / 255)
    lp = C.get("lowpass", cutoff=0.3).transform(xf / 255)
    assert torch.allclose(hp + lp, xf / 255, atol=1e-5)
    assert torch.equal(C.get("bandstop", lo=0.0, hi=0.0)(x), x)  # an empty band
    # keep_mean: the result keeps each channel's mean
    kept = C.get("highpass:0.3")(x).float().mean(dim=(-2, -1))
    assert (kept - xf.mean(dim=(-2, -1))).abs().mean() < 2.0


def test_squeezing_members_do_what_they_say(cifar_small):
    x, _ = cifar_small
    levels = torch.unique(C.get("bdr:2")(x))
    assert set(levels.tolist()) <= {0, 85, 170, 255}
    g = C.get("grayscale")(x)
    assert torch.equal(g[:, 0], g[:, 1]) and torch.equal(g[:, 1], g[:, 2])
    flat = torch.full((2, 3, 8, 8), 100, dtype=torch.uint8)
    for spec in ("mean", "median", "gaussian:sigma=1"):
        assert torch.equal(C.get(spec)(flat), flat)  # a constant image is a fixed point
    spike = flat.clone()
    spike[:, :, 4, 4] = 255
    assert torch.equal(C.get("median")(spike), flat)  # the median removes an isolated spike
    assert torch.equal(C.get("gaussian")(x), x)  # σ 0.1 on 3×3: the published, near-identity
    n = C.get("noise:0.1")(flat).float() - 100
    assert 20 < float(n.std()) < 31 and not torch.equal(C.get("noise", seed=1)(flat),
                                                        C.get("noise", seed=0)(flat))


def test_jpeg_is_a_real_codec(cifar_small):
    x, _ = cifar_small
    err = {q: float((C.get("jpeg", quality=q)(x).float() - x.float()).abs().mean())
           for q in (100, 50, 10)}
    assert err[100] < 1.5 < err[50] < err[10] and err[10] > 8, err
    with pytest.raises(ValueError, match="quality"):
        C.get("jpeg:0")


def test_orthogonal_projection_removes_a_linear_shortcut(cifar_small):
    """On LSP-protected data the linear model's class directions recover the class patterns
    (far more than on clean data), and the projection leaves nothing along them."""
    from fuselib import protections

    x, y = cifar_small
    p = protections.get("lsp", seed=0).fit(x, y)
    px = p.apply(x, y)
    pat = (p.perturb(torch.full((10, 3, 32, 32), 0.5), torch.arange(10)) - 0.5).flatten(1)
    pat = pat / pat.norm(dim=1, keepdim=True)
    captured = {}
    for name, data in (("protected", px), ("clean", x)):
        cm = C.get("orthogonal", epochs=100, batch_size=64, lr=1.0)
        out = cm(data, y)
        captured[name] = float(((pat @ cm.directions.T) ** 2).sum(1).mean())
    assert captured["protected"] > max(0.15, 3 * captured["clean"]), captured
    def along(imgs):  # typical size of the centred images' components along the directions
        f = imgs.flatten(1).float() / 255
        return float(((f - f.mean(0)) @ cm.directions.T).abs().median())

    assert along(out) < 0.25 * along(x)  # removed, up to rounding and the clip to [0, 1]
    with pytest.raises(ValueError, match="labels"):
        cm(px)


def test_dvae_learns_to_reconstruct(cifar_small):
    x, _ = cifar_small
    cm = C.get("dvae", epochs=4, width=16, batch_size=64)
    out = cm(x)
    mse = [h[0] for h in cm.history]
    assert mse[-1] < mse[0] and out.shape == x.shape
    assert "VAE" in cm.cost
