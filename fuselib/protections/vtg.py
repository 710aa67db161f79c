"""``vtg``: the VTG generator loop (Li et al., "Versatile Transferable Unlearnable Example
Generator", NeurIPS 2025; repository zhli-cs/VTG) as a configuration of :mod:`fuselib.protections.fuse`:
FUSE with Random Spectral Masking and Cross-Band Guidance switched off and ``input="images"``
(the generator runs on every image, its outputs averaged per class). The same class and code
path as ``fuse``: only the defaults differ, and every FUSE setting can still be passed.

**Deviation:** VTG's CLIP text-alignment term is not here (no CLIP model offline), so this is
VTG's error-minimising generator without it. Its settings are FUSE's CPU defaults (fastnet
surrogate, 10 epochs, batch 128, 50% subset); VTG's own are ResNet-18, 30 epochs, batch 512
(``shared/reference/fuse-method.md``). Cost: that of ``fuse`` without the extra RSM/CBG passes.
"""
from . import REGISTRY
from .fuse import FUSE


@REGISTRY.register("vtg", primary="epochs")
class VTG(FUSE):
    paper = "Li et al., NeurIPS 2025 (Versatile Transferable Unlearnable Example Generator)"
    official = "zhli-cs/VTG"
    deviation = "no CLIP text-alignment term (no CLIP offline); FUSE's CPU defaults"
    defaults = dict(rsm=False, cbg=False, input="images")

    def __init__(self, eps: float = 8 / 255, seed: int = 0, **settings):
        super().__init__(eps, seed, **{**self.defaults, **settings})
