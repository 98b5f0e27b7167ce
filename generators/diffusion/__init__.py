"""The ``diffusion`` generator: fakes from a diffusers pipeline on local disk (``facebench[diffusion]``).

Importing this package imports neither diffusers nor transformers; the generator does, when built.
"""

from .generator import DiffusionGenerator
from .loading import SCHEDULERS, DiffusionError
from .prompts import TEMPLATES, PromptTemplate

__all__ = ["DiffusionError", "DiffusionGenerator", "PromptTemplate", "SCHEDULERS", "TEMPLATES"]
