"""planet-torch: PlaNet (Hafner et al., ICML 2019) in PyTorch."""

__version__ = "0.1.0"
