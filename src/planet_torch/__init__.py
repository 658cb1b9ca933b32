"""planet-torch: PlaNet (Hafner et al., ICML 2019) in PyTorch."""

from planet_torch import gl as _gl

__version__ = "0.1.0"

# Before any submodule can make a GL context: MUJOCO_GL and triton's LLVM (see `gl`).
_gl.prepare()
