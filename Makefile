# The two Quickstart commands (`make demo`, `make test`) create .venv when it is missing and install with the
# tested pins of constraints.txt (torch 2.13.0 first: an unpinned torch would pull the CUDA wheels).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PRESETS := kunlun-small kunlun-base interformer-small wukong-small

.PHONY: install test lint demo clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,postgres]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: $(STAMP) lint
	$(VENV)/bin/pytest -q

demo: $(STAMP)
	@for p in $(PRESETS); do $(VENV)/bin/kunlun flops $$p || exit 1; echo; done
	$(PY) -c "import torch; from kunlun.model import KunlunConfig, KunlunModel; from kunlun.data import synthetic_batch; \
	[print(f'{p}: loss {KunlunModel(c).loss(synthetic_batch(c, 64, 0)).item():.4f} (forward+backward ok)') \
	 for p in '$(PRESETS)'.split() for c in [KunlunConfig.preset(p)] if KunlunModel(c).loss(synthetic_batch(c, 64, 0)).backward() is None]"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
