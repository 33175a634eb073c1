"""Datasets read from their original files: CIFAR-10's pickles (cifar10.py), and a folder of
your own images, one subfolder per class (image_folder.py, Keras's image_dataset_from_directory)."""
from . import cifar10
from .image_folder import image_dataset_from_directory

__all__ = ["cifar10", "image_dataset_from_directory"]
