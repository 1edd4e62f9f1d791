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
