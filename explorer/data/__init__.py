"""Datasets: float images in [0,1] shaped (N, C, H, W), int labels, class names, fixed splits."""

from explorer.data.base import Dataset, Split
from explorer.data.datasets import DATASET_NAMES, datasets_of_shape, load_dataset
from explorer.data.npz import load_npz

__all__ = ["DATASET_NAMES", "Dataset", "Split", "datasets_of_shape", "load_dataset", "load_npz"]
