"""Row autoencoders: Mult-DAE, Mult-VAE, recoder, AsySVD and the item-item SDense/EASE."""

from ._autoencoder import AutoencoderRecommender
from ._module import AutoencoderModule

__all__ = ["AutoencoderRecommender", "AutoencoderModule"]
