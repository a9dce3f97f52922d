"""Neighbourhood models: item-based collaborative filtering."""

from ._itemknn import ItemKNN

__all__ = ["ItemKNN"]
