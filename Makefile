# Every target sets itself up first (.ci/setup-env.sh is a no-op once installed).
PY := .venv/bin/python
OUT ?= outputs/arm_demo
export HF_HUB_OFFLINE := 1
export WANDB_MODE := disabled

.PHONY: setup demo demo-toy test test-fast lint bench-multimodal bench-latency bench-emulator bench-closed-loop gpu-carry gpu-check

setup:
	@bash .ci/setup-env.sh

demo: setup
	$(PY) -m lerobot_policy_drift.demos.arm --out $(OUT)

demo-toy: setup
	$(PY) -m lerobot_policy_drift.demos.toy --out outputs/demo

test: setup
	$(PY) -m pytest -m "slow or not slow" -q

test-fast: setup
	$(PY) -m pytest -q

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

bench-multimodal: setup
	$(PY) -m benchmarks.multimodal --out outputs/multimodal.json

bench-latency: setup
	$(PY) -m benchmarks.latency --out outputs/latency.json

bench-emulator: setup
	$(PY) -m benchmarks.emulator_roundtrip --rounds 5000 --out outputs/emulator_roundtrip.json

bench-closed-loop: setup
	$(PY) -m benchmarks.closed_loop --out outputs/closed_loop --dataset outputs/closed_loop/dataset --demos 60 --steps 2000 --episodes 50

# The GPU check (benchmarks/gpu_check.py): prepare its carry here, then run it where the GPU is
# (device tool: carry outputs/gpu_carry; command: python benchmarks/gpu_check.py).
gpu-carry: setup
	$(PY) -m benchmarks.gpu_check_prepare --out outputs/gpu_carry

gpu-check: gpu-carry
	$(PY) benchmarks/gpu_check.py --carry outputs/gpu_carry --out outputs/gpu_check.json
