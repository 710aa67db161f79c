import pytest
import torch

from fuselib import countermeasures as C


@pytest.mark.parametrize("spec", ["none", "lowpass:0.3", "lowpass:cutoff=0.5,basis=fft",
                                  "lowpass:cutoff=0.2,profile=gaussian"])
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
