"""The parametric face generator: procedural faces, a real counterpart per seed, known artifacts."""

from facebench.generators.parametric.generator import ParametricGenerator

__all__ = ["ParametricGenerator"]
