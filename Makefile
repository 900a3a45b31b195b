# The two commands the README opens with: `make demo` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test unit integration system-deps controlplane cso tools lint bench bench-small clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

venv: $(STAMP)

## Linters of the deployment files (checkov, hadolint), in their own virtualenv.
TOOLS_STAMP := .venv-tools/.installed
$(TOOLS_STAMP): requirements-tools.txt
	$(PYTHON) -m venv .venv-tools
	.venv-tools/bin/python -m pip install -q --upgrade pip
	.venv-tools/bin/python -m pip install -q -r requirements-tools.txt
	touch $@

tools: $(TOOLS_STAMP)

## Run the whole play offline on the bundled demo data; writes reports/demo/.
## With small KEV and EPSS files and a previous run of 40 days ago (demo/triage_inputs.py), so that
## the page opens with overdue findings and ranks the exploited ones first; with an exceptions file and
## an OpenVEX document, so that it lists accepted, expiring and expired entries.
demo: $(STAMP)
	$(PY) demo/triage_inputs.py --out reports/demo-inputs
	$(PY) -m job run --pods demo/pods.json --secscan-dir demo/secscan --output reports/demo --cluster-name demo \
	  --kev-feed reports/demo-inputs/kev.json --epss-feed reports/demo-inputs/epss.csv \
	  --previous reports/demo-inputs/summary.json \
	  --exceptions reports/demo-inputs/exceptions.yaml --vex reports/demo-inputs/vex
	@echo "open reports/demo/report.html (also report.xlsx, summary.json, imagemanifestvulns.yaml)"

## System packages the tests drive for real: Chromium, LibreOffice, an OCI registry.
system-deps:
	@bash tests/system-deps.sh

## kube-apiserver and etcd for the tests (cached outside the checkout).
controlplane:
	@bash tests/controlplane/build.sh >/dev/null

## The Container Security Operator's labeller, the differential test's reference, and kubectl
## at the control plane's version (both cached like it).
## Without Go (outside CI) the test says so and is skipped.
cso:
	@if command -v go >/dev/null || [ "$${CI:-}" = true ]; then bash tests/cso/build.sh >/dev/null; fi
	@if command -v go >/dev/null || [ "$${CI:-}" = true ]; then bash tests/controlplane/kubectl.sh >/dev/null; fi

## Set up and run the whole test suite, the real control plane included.
test: $(STAMP) $(TOOLS_STAMP) system-deps controlplane cso
	KUBEBUILDER_ASSETS="$${KUBEBUILDER_ASSETS:-$$(bash tests/controlplane/build.sh)}" \
	  $(PY) -m pytest -q $(PYTEST_ARGS)
	$(VENV)/bin/lint-imports

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/lint-imports

## The whole play on a synthetic 50,000-pod cluster in a real control plane: figures per stage
## (BENCHMARKS.md). BENCH_ARGS for more, e.g. BENCH_ARGS="--json bench.json --latency 0.1".
bench: $(STAMP) controlplane
	KUBEBUILDER_ASSETS="$${KUBEBUILDER_ASSETS:-$$(bash tests/controlplane/build.sh)}" \
	  $(PY) bench/bench_play.py $(BENCH_ARGS)

## The same on 1,000 pods, in under a minute.
bench-small: $(STAMP) controlplane
	KUBEBUILDER_ASSETS="$${KUBEBUILDER_ASSETS:-$$(bash tests/controlplane/build.sh)}" \
	  $(PY) bench/bench_play.py --small $(BENCH_ARGS)

clean:
	rm -rf $(VENV) reports/demo reports/demo-inputs .pytest_cache
