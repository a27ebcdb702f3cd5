.PHONY: install format lint typecheck imports deadcode test unit integration bench demo up ci

install:
	uv sync --locked --compile-bytecode
	uv run python -m compileall -q orchestrator workers policies

format:
	uv run ruff format .
	uv run ruff check --fix .

lint:
	uv run ruff check .
	uv run ruff format --check .

typecheck:
	uv run mypy

imports:
	uv run lint-imports

deadcode:
	uv run vulture

test:
	uv run pytest

unit:
	uv run pytest tests/unit

integration:
	uv run pytest tests/integration

bench:
	uv run itom-orch bench

demo:
	uv run itom-orch demo

up:
	uv run itom-orch up

ci:
	bash .ci/run
