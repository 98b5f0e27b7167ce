"""The parametric face generator: procedural faces, a real counterpart per seed, known artifacts."""

from .generator import ParametricGenerator

__all__ = ["ParametricGenerator"]
