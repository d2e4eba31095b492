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

demo: venv
	$(PY) train.py --cfg configs/sample_sim_3D.yaml --overwrite EXP_NAME demo_motionrefinenet
	$(PY) train.py --cfg configs/sample_sim_3D_smoothnet.yaml --overwrite EXP_NAME demo_smoothnet
	mkdir -p $(DEMO_DIR)
	$(PY) eval.py --cfg configs/sample_sim_3D.yaml --tradition all --overwrite \
		--checkpoint results/demo_motionrefinenet/checkpoints/best.pth \
		--checkpoint results/demo_smoothnet/checkpoints/best.pth \
		--json $(DEMO_DIR)/results.json --markdown $(DEMO_DIR)/results.md
