"""The import path of earlier releases (``from torchclassics.export import export``): the code lives in
:mod:`torchclassics.deploy`."""
from .deploy import QUANTIZE, SUFFIX, default_path, describe, export

__all__ = ["QUANTIZE", "SUFFIX", "default_path", "describe", "export"]
