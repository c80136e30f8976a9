.PHONY: test demo bootstrap lint

bootstrap:
	scripts/bootstrap

test:
	scripts/test

demo:
	scripts/demo

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
