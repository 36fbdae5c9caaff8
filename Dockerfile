# Images for the riskpulse services, each from its lock in requirements/ (scripts/lock.sh):
#   serve (the default): worker, ingest, rss, dashboard on ONNX Runtime; requirements/serve.lock,
#                        no torch, no CUDA            docker build -t riskpulse .
#   train:               + training and export (torch, transformers, onnx); requirements/train.lock
#                                                     docker build --target train -t riskpulse:train .
#   gpu:                 train + TensorRT for the GPU scorer (tensorrt-cu12 from NVIDIA's index)
#                                                     docker build --target gpu -t riskpulse:tensorrt .
# A CPU scorer on RISKPULSE_BACKEND=torch-bf16 runs the train image built with
# --build-arg WITH_COMPILER=1: g++ lets TorchInductor compile the model (1.15-1.27x eager bf16).
FROM python:3.11-slim-bookworm AS serve
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    RISKPULSE_HOME=/data
# the model: /data/model once one is trained there (the train target), else the shipped one
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 riskpulse && mkdir -p /data && chown riskpulse /data
WORKDIR /app
COPY requirements/serve.lock requirements/
# --no-deps: the lock is complete, so pip skips the resolver; --require-hashes: the files the lock names
RUN pip install --no-cache-dir --no-deps --require-hashes -r requirements/serve.lock
COPY pyproject.toml README.md LICENSE ./
COPY riskpulse ./riskpulse
COPY stream ./stream
COPY models ./models
COPY alerts ./alerts
COPY dashboard ./dashboard
COPY store ./store
RUN pip install --no-cache-dir --no-deps --no-build-isolation . && rm -rf build ./*.egg-info
USER riskpulse
VOLUME ["/data"]
ENTRYPOINT ["riskpulse"]
CMD ["--help"]

FROM serve AS train
ARG WITH_COMPILER=0
USER root
RUN if [ "$WITH_COMPILER" = "1" ]; then apt-get update && apt-get install -y --no-install-recommends g++ \
        && rm -rf /var/lib/apt/lists/*; fi
COPY requirements/train.lock requirements/
RUN pip install --no-cache-dir --no-deps --require-hashes -r requirements/train.lock
USER riskpulse

FROM train AS gpu
USER root
# riskpulse[gpu]'s range: TensorRT's wheels live on NVIDIA's index, so this one is not in a lock
RUN pip install --no-cache-dir "tensorrt-cu12>=10,<11"
USER riskpulse

# `docker build .` without --target builds the last stage: the slim serving image
FROM serve
