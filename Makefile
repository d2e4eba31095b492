# Set-up and everyday commands. `make demo` and `make test` create .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
# The torch build to install; e.g. TORCH="torch==2.5.1 --index-url https://download.pytorch.org/whl/cu124"
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
DEMO_DIR ?= results/demo

.PHONY: venv test demo lint clean-demo

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(TORCH)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

test: venv
	$(PY) -m pytest -q tests

lint: venv
	$(PY) -m ruff check .

# The demo trains its two networks side by side, each on half of the CPU threads (one each on 2
# cores): the small layers of MotionRefineNet gain little from a second thread, SmoothNet's
# wide ones do, and together they finish sooner than one after the other.
DEMO_THREADS ?= $(shell $(PYTHON) -c "import os; print(max(1, (os.cpu_count() or 2) // 2))")

demo: venv
	mkdir -p $(DEMO_DIR)
	@echo "SmoothNet trains in the background (log: results/demo_smoothnet/log.txt);"\
	      "MotionRefineNet here; $(DEMO_THREADS) thread(s) each"
	OMP_NUM_THREADS=$(DEMO_THREADS) $(PY) train.py --cfg configs/sample_sim_3D_smoothnet.yaml \
		--overwrite EXP_NAME demo_smoothnet > $(DEMO_DIR)/smoothnet_train.out 2>&1 & \
	smoothnet=$$!; trap 'kill $$smoothnet 2>/dev/null; exit 130' INT TERM; \
	OMP_NUM_THREADS=$(DEMO_THREADS) $(PY) train.py --cfg configs/sample_sim_3D.yaml \
		--overwrite EXP_NAME demo_motionrefinenet; motionrefinenet_status=$$?; \
	wait $$smoothnet; smoothnet_status=$$?; \
	if [ $$smoothnet_status -ne 0 ]; then tail -n 20 $(DEMO_DIR)/smoothnet_train.out; \
		echo "SmoothNet's training failed (full output: $(DEMO_DIR)/smoothnet_train.out)"; fi; \
	test $$motionrefinenet_status -eq 0 -a $$smoothnet_status -eq 0
	$(PY) eval.py --cfg configs/sample_sim_3D.yaml --tradition all --overwrite \
		--checkpoint results/demo_motionrefinenet/checkpoints/best.pth \
		--checkpoint results/demo_smoothnet/checkpoints/best.pth \
		--json $(DEMO_DIR)/results.json --markdown $(DEMO_DIR)/results.md
