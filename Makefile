# The two commands of the README, plus helpers.
.PHONY: demo test test-fast install bench
install:
	bash scripts/install.sh
demo:
	bash scripts/preflight.sh  # before installing anything: Java, Maven, disk, ports, a model or the data
	bash scripts/install.sh --serve  # what the demo runs (no torch, no test tools); `make test` installs the rest
	.venv/bin/riskpulse demo
test: install
	bash scripts/install-system.sh
	bash scripts/test.sh
test-fast: install  # unit and property tests: no broker, no browser, no training
	bash scripts/install-system.sh  # the store's tests start a PostgreSQL of their own
	bash scripts/test.sh -m "not integration and not browser and not training" --durations=10
bench: install
	.venv/bin/python bench/bench_model.py && .venv/bin/python bench/bench_stream.py \
		&& .venv/bin/python bench/bench_alerts.py && .venv/bin/python bench/bench_dashboard.py \
		&& .venv/bin/python bench/bench_aggregate.py && .venv/bin/python bench/bench_aggregate_broker.py \
		&& .venv/bin/python bench/bench_env_size.py
