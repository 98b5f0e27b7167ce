"""The ``diffusion`` generator: fakes from a diffusers pipeline on local disk (``facebench[diffusion]``).

Importing this package imports neither diffusers nor transformers; the generator does, when built.
"""

from facebench.generators.diffusion.generator import DiffusionGenerator
from facebench.generators.diffusion.loading import SCHEDULERS, DiffusionError
from facebench.generators.diffusion.prompts import TEMPLATES, PromptTemplate

__all__ = ["DiffusionError", "DiffusionGenerator", "PromptTemplate", "SCHEDULERS", "TEMPLATES"]
