"""fastconv: fast CPU convolution and pooling for NumPy, with a cost model.

See README.md for a tour; ``fastconv.cost`` holds the theoretical cost model
and ``fastconv.profile()`` records what each call achieved.
"""
__version__ = "0.1.0"

from .config import set_num_threads, get_num_threads, show_config
from .conv import conv2d, conv2d_backward, conv_transpose2d, compose, algorithms
from .pool import max_pool2d, max_pool2d_backward, avg_pool2d, avg_pool2d_backward
from . import cost, reference
from .summary import summary
from .profile import profile
from .peak import peak
from .tune import tune

__all__ = [
    "__version__",
    "conv2d", "conv2d_backward", "conv_transpose2d", "compose", "algorithms",
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "cost", "summary", "reference", "profile", "peak", "tune",
    "set_num_threads", "get_num_threads", "show_config",
]
