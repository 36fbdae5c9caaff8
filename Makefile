# The two commands of the README, plus helpers.
.PHONY: demo test install bench
install:
	bash scripts/install.sh
demo: install
	.venv/bin/riskpulse demo
test: install
	bash scripts/install-system.sh
	bash scripts/test.sh
bench: install
	.venv/bin/python bench/bench_model.py && .venv/bin/python bench/bench_stream.py \
		&& .venv/bin/python bench/bench_alerts.py && .venv/bin/python bench/bench_dashboard.py
