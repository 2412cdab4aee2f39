# One command sets up and runs each job on a fresh machine; .venv is created as needed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: demo test bench bench-speed bench-distortions bench-deep clean

$(STAMP): pyproject.toml constraints/cpu.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints/cpu.txt -e ".[dev,deep,vlm,ray]"
	touch $(STAMP)

# The demo installs only what it shows: the core package and the sample photos' packages (no torch).
$(DEMO_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[samples]"
	touch $(DEMO_STAMP)

## make demo: analyse the sample photos (real photos shipped by scikit-image, scikit-learn, matplotlib)
demo: $(DEMO_STAMP)
	$(PY) -m picinspector samples out/samples
	$(VENV)/bin/picinspector analyze out/samples/astronaut.jpg out/samples/china_motion_blur.jpg out/samples/china_noisy.jpg
	$(VENV)/bin/picinspector analyze out/samples -o out/demo.jsonl
	$(VENV)/bin/picinspector report out/demo.jsonl -o out/report.html
	@echo "All results: out/demo.jsonl; the visual report: out/report.html"

## make test: the whole test suite (2 workers)
test: $(STAMP)
	$(PY) -m pytest -n 2 -q

## make bench: speed and graded-distortion benchmarks (results go in README.md)
bench: bench-speed bench-distortions

bench-speed: $(STAMP)
	$(PY) bench/speed.py

bench-distortions: $(STAMP)
	$(PY) bench/distortions.py

## make bench-deep: DINOv2 and SmolVLM speed on this CPU, random weights (results go in README.md)
bench-deep: $(STAMP)
	cd bench && ../$(PY) dinov2_speed.py --n 4 --compile
	cd bench && ../$(PY) vlm_speed.py --threads 2

clean:
	rm -rf $(VENV) out bench/_work .pytest_cache

## make bench-peers: PicInspector next to BRISQUE and PIQE (peers go into .venv for benchmarking only;
## pypiqe with --no-deps so that its opencv-python does not replace the headless cv2; torch never)
PEERS_STAMP := $(VENV)/.installed-peers
PEERS_DATA  ?= ../shared/data/biq2021_train
.PHONY: bench-peers

$(PEERS_STAMP): $(STAMP) bench/peers/requirements.txt
	$(PY) -m pip install --quiet -r bench/peers/requirements.txt
	$(PY) -m pip install --quiet --no-deps pypiqe==1.2
	@if $(PY) -m pip list --format=freeze | grep -iE '^(torch|opencv-python|opencv-contrib-python)=='; then \
		echo "bench-peers: the packages above must not be installed in $(VENV)" >&2; exit 1; fi
	touch $(PEERS_STAMP)

bench-peers: $(PEERS_STAMP)
	$(PY) bench/peers/run.py --dataset $(PEERS_DATA) --n 500 --seed 0 -j 2
	$(PY) bench/peers/distortions.py -j 2

## make bench-serve: load test of `picinspector serve` on loopback, 8 clients x 500 requests of real photos
## make bench-report: size and Chromium load time of a 2,000-photo HTML report (both need ../shared; see
## docs/report-and-server.md)
.PHONY: bench-serve bench-report

bench-serve: $(STAMP)
	$(PY) bench/load.py --photos $(PEERS_DATA)/images --clients 8 --requests 500

bench-report: $(STAMP)
	$(PY) bench/report_scale.py --photos $(PEERS_DATA)/images --n 2000

## make bench-cull: grouping precision/recall, picks and the culling step's speed on 2,000 photos built from
## ../shared (analysis cached under /tmp; see docs/cull.md)
.PHONY: bench-cull

bench-cull: $(STAMP)
	$(PY) bench/cull_groups.py --photos $(PEERS_DATA)/images --groups 200 --unrelated 600 -j 2 --similarity embedding
	$(PY) bench/cull_groups.py --photos $(PEERS_DATA)/images --groups 200 --unrelated 600 -j 2 --similarity phash
	$(PY) bench/cull_groups.py --photos $(PEERS_DATA)/images --groups 200 --unrelated 600 --seed 1 --groups-only --similarity embedding
