# Serve an export of this project on TensorFlow Serving itself (the C++ model server), same APIs as
# `recsys serve`: gRPC on 8500 (tensorflow.serving.PredictionService / ModelService), REST on 8501.
#
# The export layout is TF Serving's: <export base>/<model name>/<version>/saved_model.pb, with the
# warm-up requests in assets.extra (TF Serving replays them on load). Build from the repository root:
#   docker build -f docker/serving.Dockerfile --build-arg EXPORT_DIR=out/model/export/ranker \
#       --build-arg MODEL_NAME=ranker -t REGISTRY/recsys-serving:TAG .
#   docker run -p 8500:8500 -p 8501:8501 REGISTRY/recsys-serving:TAG
# Or mount the exports instead of baking them in (new versions are picked up while serving):
#   docker run -p 8500:8500 -p 8501:8501 -v $PWD/out/model/export/ranker:/models/ranker \
#       -e MODEL_NAME=ranker REGISTRY/recsys-serving:TAG
# The SavedModel uses only standard TensorFlow ops (the exporter traces portable kernels), so no
# custom-op build of the server is needed.
FROM tensorflow/serving:2.21.0

ARG MODEL_NAME=ranker
# A directory of integer version subdirectories; build with an empty one to mount exports at run time.
ARG EXPORT_DIR=docker/k8s/empty-export

ENV MODEL_NAME=${MODEL_NAME} \
    MODEL_BASE_PATH=/models

COPY ${EXPORT_DIR} /models/${MODEL_NAME}
COPY docker/k8s/config/batching.config /config/batching.config
COPY docker/k8s/config/monitoring.config /config/monitoring.config

EXPOSE 8500 8501

# The base image's entrypoint runs:
#   tensorflow_model_server --port=8500 --rest_api_port=8501 \
#       --model_name=${MODEL_NAME} --model_base_path=${MODEL_BASE_PATH}/${MODEL_NAME} "$@"
# and these are the extra flags (the same flag names `recsys serve` takes). To serve several models,
# version policies or labels (stable/canary), pass --model_config_file=/config/models.config
# (see docker/k8s/serving.yaml, which mounts it from a ConfigMap).
CMD ["--enable_batching=true", "--batching_parameters_file=/config/batching.config", \
     "--monitoring_config_file=/config/monitoring.config", "--file_system_poll_wait_seconds=30"]
