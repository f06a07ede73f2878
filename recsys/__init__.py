"""recsys: reproducible recommender training with smooth activations.

Importing the package is cheap: TensorFlow is loaded by the submodules that need it, through
:mod:`recsys.compat`. The package selects Keras 2 here, before any submodule runs, so that no import
order (``from serving import ...`` first, a submodule that reaches TensorFlow some other way) can load
TensorFlow with Keras 3; :mod:`recsys.compat` checks that it worked.
"""

import os as _os
import sys as _sys

# TensorFlow reads this once, at its own import; TFRS needs tf-keras (Keras 2). serving/ and pipelines/
# set it too (as a default) because they may be imported first. No TensorFlow import here.
if "tensorflow" not in _sys.modules:
    _os.environ["TF_USE_LEGACY_KERAS"] = "1"

__version__ = "0.1.0"
