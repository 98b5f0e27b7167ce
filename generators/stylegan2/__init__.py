"""StyleGAN2(-ADA): our own implementation of the generator, safe loading of official pickles.

``Generator`` takes the official constructor arguments and state dicts; ``load_network``
reads an official network pickle (without running any code from it) or our own
safetensors + JSON format.
"""

from .loading import convert, load_network, save_network
from .networks import Generator

__all__ = ["Generator", "convert", "load_network", "save_network"]
