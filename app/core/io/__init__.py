"""Readers and writers shared by plug-ins (images, TIFF, HDF5, video)."""
