"""Datasets and the data pipeline (transforms run on NumPy arrays, in the loader's workers)."""
