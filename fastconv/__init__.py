"""fastconv: fast CPU convolution and pooling for NumPy, with a cost model.

See README.md for a tour; ``fastconv.cost`` holds the theoretical cost model
and ``fastconv.profile()`` records what each call achieved.
"""
__version__ = "0.1.0"

from .config import set_num_threads, get_num_threads, show_config
