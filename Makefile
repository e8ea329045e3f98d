# Shortcuts; the scripts are the source of truth (README uses them directly).
.PHONY: demo test test-fast bench wheel

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

test-fast:
	bash scripts/test.sh -m "not slow and not container and not browser"

wheel:
	.venv/bin/python -m pip wheel --no-deps -w dist .
