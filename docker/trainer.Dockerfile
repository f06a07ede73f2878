# The trainer image that `recsys submit --cluster kubernetes` runs: this project on TensorFlow's GPU image.
#
# Build and push from the repository root (see docs/cluster.md):
#   docker build -f docker/trainer.Dockerfile -t REGISTRY/recsys-trainer:TAG .
#   docker push REGISTRY/recsys-trainer:TAG
#
# The base image carries the pinned TensorFlow 2.21.0 with CUDA/cuDNN/NCCL; pip keeps it (same version)
# and adds the rest of the pinned stack (tf-keras, TFRS, Beam, ...). The project is installed editable
# from /opt/recsys so the named experiments in configs/ resolve as they do in a checkout.
FROM tensorflow/tensorflow:2.21.0-gpu

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    TF_USE_LEGACY_KERAS=1 \
    TF_CPP_MIN_LOG_LEVEL=1

# recsys pins Python 3.11 (pyproject.toml); fail the build early and clearly on any other base Python.
RUN python3 -c "import sys; v = sys.version_info[:2]; assert v == (3, 11), \
    f'recsys needs Python 3.11, tensorflow/tensorflow:2.21.0-gpu has {sys.version}'"

WORKDIR /opt/recsys
COPY pyproject.toml README.md ./
COPY recsys ./recsys
COPY pipelines ./pipelines
COPY serving ./serving
COPY configs ./configs
RUN python3 -m pip install -e . \
    && python3 -c "import tensorflow as tf; assert tf.__version__ == '2.21.0', tf.__version__" \
    && recsys --help

# Run as an unprivileged user (uid 1000, the manifests' runAsUser and fsGroup: the restricted Pod
# Security Standard). The PVC is group-writable for it through fsGroup.
RUN useradd --uid 1000 --user-group --create-home --shell /usr/sbin/nologin recsys
USER 1000:1000
ENV HOME=/home/recsys

# TensorFlow's collective ops talk on this port (TF_CONFIG from the TFJob operator or the Indexed Job).
EXPOSE 2222
ENTRYPOINT ["recsys"]
CMD ["--help"]
