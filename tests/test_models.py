import pytest
import torch

from fuselib import models


@pytest.mark.parametrize("name", models.names())
def test_forward_backward(name):
    torch.manual_seed(0)
    m = models.get(name, num_classes=7)
    x = torch.randn(4, 3, 32, 32)
    out = m(x)
    assert out.shape == (4, 7)
    out.logsumexp(1).mean().backward()
    grads = [p.grad for p in m.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_larger_inputs_use_torchvision():
    m = models.get("resnet18", num_classes=5, image_size=96)
    assert m(torch.randn(1, 3, 96, 96)).shape == (1, 5)
    assert models.get("vit", image_size=64)(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_unknown_model():
    with pytest.raises(KeyError, match="unknown model 'lenet'"):
        models.get("lenet")
