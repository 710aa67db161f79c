"""``none``: no protection, the clean baseline every table starts from."""
from . import REGISTRY
from .base import Protection


@REGISTRY.register("none")
class NoProtection(Protection):
    """Returns the images unchanged."""

    paper = ""
    official = ""
    deviation = ""
    norm = None
    needs_fit = False

    def perturb(self, x, labels):
        return x
