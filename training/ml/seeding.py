"""One place to seed Python, NumPy and TensorFlow, and to import TensorFlow quietly."""

from __future__ import annotations

import os
import random
from types import ModuleType

import numpy as np


def import_tensorflow() -> ModuleType:
    """Import TensorFlow with its C++ log noise and oneDNN rounding differences switched off."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import tensorflow as tf

    return tf


def seed_everything(seed: int, *, tensorflow: bool = True) -> None:
    """Seed every random number generator a training run touches.

    TensorFlow is imported lazily (it takes seconds); pass ``tensorflow=False`` from
    numpy-only code paths so they do not pay for it.
    """
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if tensorflow:
        import_tensorflow()
        import keras

        keras.utils.set_random_seed(seed)
        # Same seed, same data -> same weights: the seed a version records then reproduces it.
        import_tensorflow().config.experimental.enable_op_determinism()
