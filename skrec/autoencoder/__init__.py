"""Row autoencoders (Mult-DAE, Mult-VAE, recoder, AsySVD, SDense) and the closed-form EASE."""

from ._autoencoder import AutoencoderRecommender
from ._ease import EASE
from ._module import AutoencoderModule

__all__ = ["AutoencoderRecommender", "AutoencoderModule", "EASE"]
