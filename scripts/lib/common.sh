# Shared by scripts/dev, scripts/test and scripts/bench. Sourced, not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

log() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }

# A venv with the pinned tools (moto, cargo-lambda, cfn-lint, ...); reinstalled only when
# scripts/requirements.txt changes.
ensure_venv() {
  local stamp="$VENV/.requirements.sha256"
  local want
  want="$(sha256sum "$ROOT/scripts/requirements.txt" | cut -d' ' -f1)"
  if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return
  fi
  log "creating $VENV with scripts/requirements.txt"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/scripts/requirements.txt"
  echo "$want" > "$stamp"
}

# cargo-lambda from PyPI installs its binary as `cargo-lambda`; cargo finds it on PATH.
with_venv_path() { export PATH="$VENV/bin:$PATH"; }

# Waits until something accepts TCP connections on 127.0.0.1:$1 (at most $2 seconds).
wait_for_port() {
  local port="$1" seconds="${2:-60}" what="${3:-port $1}"
  "$VENV/bin/python" - "$port" "$seconds" "$what" <<'PY'
import socket, sys, time
port, seconds, what = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
deadline = time.time() + seconds
while time.time() < deadline:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(f"{what} did not start listening on 127.0.0.1:{port} within {seconds:.0f}s")
PY
}

free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# The Lambda functions, one binary name a line: infra/template.yaml's functions, named by their
# CodeUri (../target/lambda/<binary>/bootstrap.zip). scripts/package, scripts/check-arm64 and
# scripts/bench take the list from here, so a function added to the template is built and checked.
lambda_functions() {
  "$VENV/bin/python" "$ROOT/scripts/local_aws.py" functions --template "$ROOT/infra/template.yaml"
}

# Where scripts/package leaves each function's zip: what the template's CodeUri names.
LAMBDA_DIR="$ROOT/target/lambda"

# Prints each function's artifact (target/lambda/<function>/bootstrap.zip) with the zip's size and
# the size of the bootstrap in it; fails if one is missing or holds anything but `bootstrap`.
lambda_sizes() {
  "$VENV/bin/python" - "$LAMBDA_DIR" "$@" <<'PY'
import os, sys, zipfile
lambda_dir, functions = sys.argv[1], sys.argv[2:]
width = max(map(len, functions))
print(f"  {'function':<{width}}  {'bootstrap':>9}  {'zip':>7}  artifact")
for function in functions:
    path = os.path.join(lambda_dir, function, "bootstrap.zip")
    if not os.path.exists(path):
        sys.exit(f"{path} is missing: run scripts/package")
    with zipfile.ZipFile(path) as z:
        if z.namelist() != ["bootstrap"]:
            sys.exit(f"{path} holds {z.namelist()}, not one `bootstrap`")
        bootstrap = z.getinfo("bootstrap").file_size
    mb = lambda n: f"{n / 1e6:.1f} MB"
    print(f"  {function:<{width}}  {mb(bootstrap):>9}  {mb(os.path.getsize(path)):>7}  {os.path.relpath(path)}")
PY
}
