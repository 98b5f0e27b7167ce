"""StyleGAN3 (configs T and R): our own implementation of the generator, loading of official pickles.

``Generator`` takes the official constructor arguments and state dicts; ``load_network`` (the
same function as StyleGAN2's, which tells the two families apart) reads an official pickle
without running any code from it, or our safetensors format.
"""

from .networks import Generator, make_transform
from ..stylegan2.loading import convert, load_network, save_network

__all__ = ["Generator", "convert", "load_network", "make_transform", "save_network"]
