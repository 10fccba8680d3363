#!/usr/bin/env bash
# The GPU runbook: every performance measurement of this project on a fresh GPU machine,
# in at most RUNBOOK_BUDGET_S seconds (default 1200 = 20 min), all JSON into one folder.
#
#   benchmarks/gpu_runbook.sh                     # install from the registry, then measure
#   benchmarks/gpu_runbook.sh --wheels DIR        # install offline from wheels in DIR
#   benchmarks/gpu_runbook.sh --skip-install      # the environment is ready
#
# Options: --wheels DIR | --skip-install, --allow-cpu (run without a GPU, for a smoke
# test), --quick (tiny sizes: a smoke test of the runbook itself, not a measurement).
# Environment: OUT (output folder; default benchmarks/results/<device>/), PYTHON (default
# python), RUNBOOK_BUDGET_S (default 1200), SWEEP_UPDATES (the sweep slice's budget per
# run, a multiple of 1000; default 20000), JAX_DEFAULT_MATMUL_PRECISION (default highest)
# and NVIDIA_TF32_OVERRIDE (default 0): full float32, as PyTorch's default; PASCANU_JAX_COMMIT
# (the commit a copy without .git came from, for the provenance).
#
# Offline wheels: on a machine with a registry, `pip download -d DIR setuptools
# ".[cuda12,bench,test]"` (same Python version and platform as the GPU machine).
#
# Stages, each under a time cap taken from what is left of the budget (a stage that runs
# out of time is recorded as timed out and the runbook goes on):
#   1 install     pip install -e ".[cuda12,bench,test]" (jax[cuda12]==0.10.2, PyTorch)
#   2 sanity      tests of the rnn, regularizer, clipping, engine and PyTorch peers
#                 (recorded in runbook.json's "sanity"; a failure marks the rest suspect)
#   3 sweep       a paper-preset slice: L = 50, SWEEP_UPDATES updates -> sweep-paper-L50/
#   4 projection  the full paper-scale Fig. 7 grid projected from 3 -> fig7_projection.json
#   5 throughput  the table at T = 200: engine, naive JAX, the three PyTorch peers on
#                 CUDA, 1, 15 and 45 runs, 2 alternating rounds -> throughput-T200.json
#   6 cmdbuf      the engine at T = 200 (15 and 45 runs, MSGD-CR) with XLA's command
#                 buffers off, at XLA's default set, and with while loops and conditionals
#                 added (+ unrolled) -> cmdbuf-<variant>.json
#   7 pallas      the engine with EngineConfig(backend="pallas") where pascanu_jax has it
#                 -> pallas.json (or the reason it was skipped)
#   8 throughput  the same table at T = 50 -> throughput-T50.json
# runbook.json records each stage's status and seconds.
set -euo pipefail

usage_error() {
    echo "gpu_runbook.sh: error: $1" >&2
    exit 2
}

WHEELS=""
INSTALL=1
ALLOW_CPU=0
QUICK=0
while [ $# -gt 0 ]; do
    case "$1" in
        --wheels)
            [ $# -ge 2 ] || usage_error "--wheels needs a folder"
            [ -d "$2" ] || usage_error "--wheels: no folder $2"
            WHEELS="$2"
            shift 2
            ;;
        --skip-install) INSTALL=0; shift ;;
        --allow-cpu) ALLOW_CPU=1; shift ;;
        --quick) QUICK=1; shift ;;
        -h | --help) awk 'NR > 1 && /^set -euo/ {exit} NR > 1' "$0"; exit 0 ;;
        *) usage_error "unknown option $1 (options: --wheels DIR, --skip-install, --allow-cpu, --quick)" ;;
    esac
done
if [ -n "$WHEELS" ] && [ "$INSTALL" = 0 ]; then
    usage_error "--wheels and --skip-install exclude each other"
fi
BUDGET=${RUNBOOK_BUDGET_S:-1200}
SWEEP_UPDATES=${SWEEP_UPDATES:-20000}
case "$BUDGET$SWEEP_UPDATES" in *[!0-9]*) usage_error "RUNBOOK_BUDGET_S and SWEEP_UPDATES must be integers" ;; esac
if [ $((SWEEP_UPDATES % 1000)) -ne 0 ] || [ "$SWEEP_UPDATES" -lt 1000 ]; then
    usage_error "SWEEP_UPDATES must be a positive multiple of 1000 (the paper preset's evaluation interval), got $SWEEP_UPDATES"
fi
PY=${PYTHON:-python}
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# Full float32 matrix products on both sides, unless the caller says otherwise: JAX uses
# TF32 for them on recent NVIDIA GPUs by default and PyTorch does not, and the sanity
# tests' tolerances assume float32. Every JSON's provenance records both settings.
export JAX_DEFAULT_MATMUL_PRECISION=${JAX_DEFAULT_MATMUL_PRECISION:-highest}
export NVIDIA_TF32_OVERRIDE=${NVIDIA_TF32_OVERRIDE:-0}
START=$SECONDS
STAGES=""

left() { echo $((BUDGET - (SECONDS - START))); }

# stage NAME CAP_S CMD...: run CMD with a time cap of min(CAP_S, what is left - 10 s);
# records status (ok, failed rc, timed out, skipped) and seconds in runbook.json.
stage() {
    local name=$1 cap=$2
    shift 2
    local avail=$(($(left) - 10))
    [ "$cap" -lt "$avail" ] || cap=$avail
    local t0=$SECONDS status rc=0
    if [ "$cap" -le 0 ]; then
        status="skipped: no time left"
    else
        echo "== $name (cap ${cap} s, $(left) s left)" >&2
        timeout --kill-after=10 "$cap" "$@" || rc=$?
        case $rc in
            0) status=ok ;;
            124 | 137) status="timed out after ${cap} s" ;;
            *) status="failed (exit $rc)" ;;
        esac
    fi
    echo "== $name: $status, $((SECONDS - t0)) s" >&2
    STAGES="$STAGES$name	$status	$((SECONDS - t0))
"
    return 0
}

# 1 install
if [ "$INSTALL" = 1 ]; then
    if [ -n "$WHEELS" ]; then
        "$PY" -m pip install --no-index --find-links "$WHEELS" -e ".[cuda12,bench,test]"
    else
        "$PY" -m pip install -e ".[cuda12,bench,test]"
    fi
fi
INSTALL_S=$((SECONDS - START))

PLATFORM=$("$PY" -c 'import jax; print(jax.devices()[0].platform)')
if [ "$PLATFORM" != gpu ] && [ "$ALLOW_CPU" = 0 ]; then
    echo "gpu_runbook.sh: error: JAX sees no GPU (platform $PLATFORM); check the CUDA install, or pass --allow-cpu" >&2
    exit 1
fi
DEVICE=$("$PY" -c 'import jax; print(jax.devices()[0].device_kind)' | tr -c 'A-Za-z0-9.\n-' '-' | tr 'A-Z' 'a-z')
OUT=${OUT:-benchmarks/results/$DEVICE}
mkdir -p "$OUT"
echo "device $DEVICE, output $OUT, install ${INSTALL_S} s, budget ${BUDGET} s" >&2
if command -v nvidia-smi > /dev/null; then nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true; fi

if [ "$QUICK" = 1 ]; then
    SIZES=(--quick)
    CMD_SIZES=(--quick)
    SWEEP_UPDATES=1000
else
    SIZES=(--runs 1 15 45 --repeats 2)
    CMD_SIZES=(--length 200 --runs 15 45 --method MSGD-CR --repeats 2)
fi

# 2 sanity: a failing test makes every number below suspect. The runbook records it in
# runbook.json ("sanity") and goes on: a lent GPU is rare, and the failures themselves are
# evidence (sanity.xml). The tests spread over the CPU cores where pytest-xdist is there,
# each process taking GPU memory as it needs it rather than preallocating most of it.
if [ "$QUICK" = 0 ]; then
    XDIST=()
    if "$PY" -c 'import xdist' 2> /dev/null; then XDIST=(-p xdist -n 8); fi
    stage sanity 180 env XLA_PYTHON_CLIENT_PREALLOCATE=false "$PY" -m pytest -q \
        "${XDIST[@]}" tests/test_rnn.py tests/test_regularizer.py \
        tests/test_clipping.py tests/test_engine.py tests/test_torch_peer.py \
        --junitxml "$OUT/sanity.xml"
    case "$STAGES" in *"sanity	ok"*) ;; *)
        echo "gpu_runbook.sh: warning: the sanity tests did not pass; the numbers below are suspect" >&2
        ;;
    esac
fi

# 3 a slice of the paper-scale sweep, 4 the projection of the whole grid from it (early:
# they are short, and the later stages are the ones the time cap may cut).
SWEEP="$OUT/sweep-paper-L50"
rm -rf "$SWEEP"
stage sweep 180 "$PY" scripts/sweep_lengths.py --preset paper --lengths 50 \
    --max-updates "$SWEEP_UPDATES" --out "$SWEEP"
stage projection 30 "$PY" benchmarks/project_fig7.py "$SWEEP" --json "$OUT/fig7_projection.json"


# 5 the full table at T = 200 (the headline): every implementation, PyTorch on CUDA (cpu
# with --allow-cpu). throughput.py rewrites its JSON after every round, so a stage cut by
# its cap still leaves the rounds it finished. T = 50 comes last (stage 8).
TORCH_DEVICE=cuda
[ "$PLATFORM" = gpu ] || TORCH_DEVICE=cpu
stage throughput-T200 360 "$PY" benchmarks/throughput.py --impl all --length 200 "${SIZES[@]}" \
    --torch-device "$TORCH_DEVICE" --json "$OUT/throughput-T200.json"

# 6 XLA command buffers (CUDA graphs) for the engine's while loops. The flag takes a list of
# command types, or +TYPE / -TYPE to add to or remove from XLA's default list; an empty
# list turns command buffers off (names checked against jaxlib 0.10.2's flag parser).
BASE_FLAGS=${XLA_FLAGS:-}
for variant in off default while while-unrolled; do
    case $variant in
        off) flags="--xla_gpu_enable_command_buffer=" ;;
        default) flags="" ;;
        while) flags="--xla_gpu_enable_command_buffer=+WHILE,+CONDITIONAL" ;;
        while-unrolled) flags="--xla_gpu_enable_command_buffer=+WHILE,+CONDITIONAL --xla_gpu_command_buffer_unroll_loops=true" ;;
    esac
    stage "cmdbuf-$variant" 75 env XLA_FLAGS="$BASE_FLAGS $flags" \
        "$PY" benchmarks/throughput.py --impl pascanu_jax "${CMD_SIZES[@]}" \
        --json "$OUT/cmdbuf-$variant.json"
done

# 7 the Pallas backend, where the engine has one.
if "$PY" -c 'import sys; sys.path.insert(0, "benchmarks"); import throughput; sys.exit(0 if throughput.engine_backends() else 1)'; then
    stage pallas 120 "$PY" benchmarks/throughput.py --impl pascanu_jax "${CMD_SIZES[@]}" \
        --backend pallas --json "$OUT/pallas.json"
else
    echo '{"skipped": "this pascanu_jax has no EngineConfig(backend=...)"}' > "$OUT/pallas.json"
    STAGES="${STAGES}pallas	skipped: no EngineConfig(backend=...)	0
"
fi

# 8 the full table at T = 50, with what time is left.
stage throughput-T50 360 "$PY" benchmarks/throughput.py --impl all --length 50 "${SIZES[@]}" \
    --torch-device "$TORCH_DEVICE" --json "$OUT/throughput-T50.json"

printf '%s' "$STAGES" | "$PY" -c '
import json, sys
out, install_s, wall_s, budget = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
stages = [dict(zip(("stage", "status", "seconds"), line.split("\t"))) for line in sys.stdin if line.strip()]
for s in stages:
    s["seconds"] = int(s["seconds"])
# The sanity outcome up front: the numbers of a run whose tests failed are suspect.
sanity = next((s["status"] for s in stages if s["stage"] == "sanity"), "not run")
sanity = "passed" if sanity == "ok" else sanity
record = {"install_s": install_s, "wall_s": wall_s, "budget_s": budget, "sanity": sanity, "stages": stages}
with open(f"{out}/runbook.json", "w") as f:
    json.dump(record, f, indent=1)
print(json.dumps(record, indent=1))
' "$OUT" "$INSTALL_S" $((SECONDS - START)) "$BUDGET"
echo "runbook done in $((SECONDS - START)) s; results in $OUT" >&2
