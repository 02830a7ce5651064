"""torchclassics: the classic PyTorch lessons as one reproducible, fast experiment system."""
__version__ = "0.1.0"

from .api import evaluate, list_experiments, predict, run  # noqa: E402,F401
from .errors import UserError  # noqa: E402,F401
