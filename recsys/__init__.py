"""recsys: reproducible recommender training with smooth activations.

Importing the package is cheap: TensorFlow is loaded by the submodules that need it, always through
:mod:`recsys.compat`, the one place that selects Keras 2.
"""

__version__ = "0.1.0"
