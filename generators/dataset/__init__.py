"""The ``dataset`` source: the field's benchmark datasets on local disk read as corpora, one per generator."""

from .generator import DatasetGenerator
from .layouts import ALL, LAYOUTS, Dataset, DatasetError, read_dataset

__all__ = ["ALL", "LAYOUTS", "Dataset", "DatasetError", "DatasetGenerator", "read_dataset"]
