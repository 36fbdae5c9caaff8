# One image for every riskpulse service (worker, dashboard, ingest, rss, training).
# The GPU scorer builds it with --build-arg WITH_TENSORRT=1 (TensorRT's pip wheels on top).
# A CPU scorer on RISKPULSE_BACKEND=torch-bf16 builds it with --build-arg WITH_COMPILER=1: g++ lets
# TorchInductor compile the model (1.15-1.27x eager bf16); without it that backend serves eager.
FROM python:3.11-slim-bookworm

ARG WITH_TENSORRT=0
ARG WITH_COMPILER=0
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    RISKPULSE_HOME=/data RISKPULSE_MODEL_DIR=/data/model
RUN apt-get update && apt-get install -y --no-install-recommends curl \
        $(if [ "$WITH_COMPILER" = "1" ]; then echo g++; fi) && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 riskpulse && mkdir -p /data && chown riskpulse /data
WORKDIR /app
COPY requirements.lock ./
# --no-deps: the lock is complete, so pip skips the resolver
RUN pip install --no-cache-dir --no-deps -r requirements.lock \
    && if [ "$WITH_TENSORRT" = "1" ]; then pip install --no-cache-dir "tensorrt-cu12>=10,<11"; fi
COPY pyproject.toml README.md ./
COPY riskpulse ./riskpulse
COPY stream ./stream
COPY models ./models
COPY alerts ./alerts
COPY dashboard ./dashboard
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e .
USER riskpulse
VOLUME ["/data"]
ENTRYPOINT ["riskpulse"]
CMD ["--help"]
