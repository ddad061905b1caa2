"""Vitascope: compressed tiny Vision Transformers at work for imaging labs."""

__version__ = "0.1.0"
