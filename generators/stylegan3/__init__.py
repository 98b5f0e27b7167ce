"""StyleGAN3 (configs T and R): our own implementation of the generator, loading of official pickles.

``Generator`` takes the official constructor arguments and state dicts; networks are loaded with
:func:`facebench.generators.stylegan2.loading.load_network`, which tells the two families apart.
"""

from facebench.generators.stylegan3.networks import Generator, make_transform

__all__ = ["Generator", "make_transform"]
