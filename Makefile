# Two commands do everything on a fresh clone (only Python >= 3.11 and pip needed):
#   make figures   regenerate every figure into figures/
#   make test      unit tests + nbval re-run of the committed notebooks
# Both create .venv and install the pinned dependencies (requirements.lock) on first use.

PYTHON ?= python3
JOBS   ?= 2
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: figures smoke test report twins bench lab store baselines lock clean

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "error: $(PYTHON) is older than Python 3.11; run 'make PYTHON=python3.11 ...'"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

figures: $(STAMP)                 ## every figure, default parameters (unchanged ones are skipped)
	$(BIN)/dmf-repro build --jobs $(JOBS)

smoke: $(STAMP)                   ## every notebook with its quick smoke parameters
	$(BIN)/dmf-repro build --smoke --jobs $(JOBS)

test: $(STAMP)                    ## unit tests, nbval and the browser test, two workers, one file per worker
	@sh tests/install-chromium.sh
	$(BIN)/python -m pytest -n 2 --dist loadfile

report: figures                   ## build/report/index.html: every claim, figure, check, provenance
	$(BIN)/dmf-repro report

twins: $(STAMP)                   ## re-pair notebooks/*.ipynb and their jupytext .py twins (after editing either)
	cd notebooks && ../$(BIN)/jupytext --sync *.ipynb

store: $(STAMP)                   ## refresh the committed notebooks' outputs (deliberate), and their twins
	$(BIN)/dmf-repro build --store --force --jobs $(JOBS)
	cd notebooks && ../$(BIN)/jupytext --sync *.ipynb

baselines: $(STAMP)               ## refresh the figure-regression baselines (deliberate)
	$(BIN)/dmf-repro baseline

bench: $(STAMP)                   ## engine throughput against bounds measured in the same run
	$(BIN)/python benchmarks/bench.py

lab: $(STAMP)                     ## JupyterLab on the venv's kernel
	env -u JUPYTER_PATH JUPYTER_PREFER_ENV_PATH=1 $(BIN)/jupyter lab $(ROOT_FLAG)

lock:                             ## regenerate requirements.lock from pyproject.toml (deliberate)
	rm -rf $(VENV)-lock && $(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test,lab,distributed]"
	$(VENV)-lock/bin/python -m pip freeze --exclude-editable > requirements.lock
	rm -rf $(VENV)-lock

clean:                            ## remove executed notebooks (build/); figures stay
	rm -rf build
