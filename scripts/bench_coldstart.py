"""Cold-start figures for scripts/bench.

Each run starts the handler as a fresh process with AWS_LAMBDA_RUNTIME_API pointing at a
stand-in runtime API on loopback, and measures the time from spawning the process until its
first `GET /runtime/invocation/next` (the end of Lambda's init phase), then reads the process's
peak resident memory (VmHWM) and stops it. Medians over the runs are printed, with the ratio of
the Python handler's init time to the Rust one's.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ENV = {
    "AWS_REGION": "eu-west-2",
    "AWS_DEFAULT_REGION": "eu-west-2",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_LAMBDA_FUNCTION_NAME": "bench",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_LOG_FORMAT": "JSON",
    "TABLE_NAME": "bench-table",
    "CREDIT_MANAGER_ARN": "arn:aws:states:eu-west-2:123456789012:stateMachine:bench",
    "STRIPE_SECRET_ARN": "arn:aws:secretsmanager:eu-west-2:123456789012:secret:bench-stripe-AbCdEf",
    "STRIPE_SECRET_KEY": "sk_test_bench",
    "STRIPE_WEBHOOK_SECRETS": "whsec_bench",
    "USER_POOL_ID": "eu-west-2_bench",
    "CHECKOUT_SUCCESS_URL": "https://app.example.com/ok",
    "CHECKOUT_CANCEL_URL": "https://app.example.com/cancel",
    "PORTAL_RETURN_URL": "https://app.example.com/account",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
}


class Runtime(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        self.first_next = threading.Event()
        self.at = None

        class Handler(BaseHTTPRequestHandler):
            def do_GET(h):
                if h.path.endswith("/runtime/invocation/next") and not self.first_next.is_set():
                    self.at = time.perf_counter()
                    self.first_next.set()
                # Hold the request: the process is measured and stopped while it waits.
                time.sleep(30)

            def log_message(h, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def run_once(cmd):
    runtime = Runtime()
    threading.Thread(target=runtime.serve_forever, daemon=True).start()
    env = dict(os.environ, **ENV, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{runtime.server_port}")
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if not runtime.first_next.wait(60):
        proc.kill()
        err = proc.stderr.read().decode(errors="replace")
        sys.exit(f"{cmd[0]} never asked for an event:\n{err}")
    init_ms = (runtime.at - start) * 1000
    rss = peak_rss_kib(proc.pid)
    proc.kill()
    proc.wait()
    runtime.shutdown()
    return init_ms, rss


def measure(label, cmd, runs):
    run_once(cmd)  # warm the page cache, as Lambda's own image cache would be
    inits, rsss = [], []
    for _ in range(runs):
        i, r = run_once(cmd)
        inits.append(i)
        rsss.append(r)
    return {
        "label": label,
        "init_median_ms": statistics.median(inits),
        "init_min_ms": min(inits),
        "init_max_ms": max(inits),
        "peak_rss_mib": statistics.median(rsss) / 1024,
    }


def server_start_ms(cmd, runs):
    """Median time from spawning a server until it prints its listening line."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = proc.stdout.readline()
        times.append((time.perf_counter() - start) * 1000)
        proc.kill()
        proc.wait()
        if not line:
            sys.exit(f"{cmd[0]} printed nothing")
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--rust", action="append", default=[], help="label=path of a release binary")
    parser.add_argument("--python", action="append", default=[], help="label=path of a Python handler")
    parser.add_argument("--server", action="append", default=[], help="label=command line of a server that prints a line once listening")
    args = parser.parse_args()
    rust, python = [], []
    for spec in args.rust:
        label, path = spec.split("=", 1)
        stripped = path + ".stripped"
        subprocess.run(["strip", "-o", stripped, path], check=True)
        result = measure(label, [path], args.runs)
        result["size_mib"] = os.path.getsize(stripped) / (1024 * 1024)
        rust.append(result)
    for spec in args.python:
        label, path = spec.split("=", 1)
        python.append(measure(label, [sys.executable, path], args.runs))

    print(f"\ncold start, {args.runs} runs each (init = process start until the first /next request)")
    print(f"{'handler':32} {'init median':>12} {'min':>8} {'max':>8} {'peak RSS':>10} {'stripped':>10}")
    for r in rust + python:
        size = f"{r['size_mib']:.1f} MiB" if "size_mib" in r else "-"
        print(f"{r['label']:32} {r['init_median_ms']:9.1f} ms {r['init_min_ms']:6.1f} ms {r['init_max_ms']:6.1f} ms {r['peak_rss_mib']:6.1f} MiB {size:>10}")
    for p in python:
        twin = next((r for r in rust if p["label"].startswith(r["label"])), None)
        if twin:
            print(f"\n{p['label']} / {twin['label']} init ratio: {p['init_median_ms'] / twin['init_median_ms']:.0f}x")
    print("targets: init < 20 ms, >= 20x faster than Python, peak memory < 20 MB, binary < 15 MB")
    for spec in args.server:
        label, command = spec.split("=", 1)
        print(f"{label} start (spawn until listening), median of {args.runs}: {server_start_ms(command.split(), args.runs):.1f} ms (target < 1 s)")


if __name__ == "__main__":
    main()
