#!/usr/bin/env python3
"""Runs each arm64 Lambda artifact (the `bootstrap` inside target/lambda/<function>/bootstrap.zip,
as scripts/package built it) under qemu-user against a stub of the Lambda Runtime API, and checks
that it starts, takes one event, answers it as its handler should, and comes back for the next.
No network: AWS_ENDPOINT_URL and STRIPE_API_BASE point to a closed local port, and every event is
one the handler answers before calling anything (no caller / no API key / no signature / not a
sign-up). Then one function is started with a required variable missing and what it reports is
printed (not asserted).

  check_arm64.py --qemu qemu-aarch64-static --sysroot /usr/aarch64-linux-gnu FUNCTION...

The stub serves what a function's runtime client calls (Lambda Runtime API 2018-06-01):
  GET  /2018-06-01/runtime/invocation/next            one event, then holds the poll open
  POST /2018-06-01/runtime/invocation/<id>/response   recorded
  POST /2018-06-01/runtime/invocation/<id>/error      recorded
  POST /2018-06-01/runtime/init/error                 recorded
"""

import argparse
import copy
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import local_aws  # noqa: E402  (the template's reader: one list of functions, their environment)

REGION = "us-east-1"
ACCOUNT = local_aws.ACCOUNT
PREFIX = "/2018-06-01/runtime"


# ---- the stub Runtime API -------------------------------------------------------------------

class Invocation:
    """One function run: the event it is given and everything it sends back."""

    def __init__(self, function: str, event: dict):
        self.function = function
        self.event = event
        self.request_id = f"arm64-check-{function}-0001"
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.stopping = threading.Event()
        self.polls = 0  # GET /next received
        self.first_poll_at = None
        self.response = None  # (path, headers, body) of /response or /error
        self.init_error = None  # (headers, body) of /init/error
        self.unexpected = []  # anything else the function asked for

    def record(self, **changes):
        with self.changed:
            for k, v in changes.items():
                setattr(self, k, v)
            self.changed.notify_all()

    def wait_for(self, predicate, seconds: float) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout=seconds)


def stub_server(invocation: Invocation) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status: int, body: bytes = b'{"status":"OK"}', headers=None):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path != f"{PREFIX}/invocation/next":
                invocation.record(unexpected=invocation.unexpected + [f"GET {self.path}"])
                return self.reply(404, b'{"errorMessage":"unknown path"}')
            with invocation.changed:
                invocation.polls += 1
                first = invocation.polls == 1
                if first:
                    invocation.first_poll_at = time.monotonic()
                invocation.changed.notify_all()
            if not first:
                # Lambda holds the poll until the next event; the check ends before there is one.
                invocation.stopping.wait()
                self.close_connection = True
                return
            deadline_ms = int((time.time() + 30) * 1000)
            self.reply(200, json.dumps(invocation.event).encode(), {
                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:creditgate-{invocation.function}",
                "Lambda-Runtime-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0",
            })

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            base = f"{PREFIX}/invocation/{invocation.request_id}"
            if self.path in (f"{base}/response", f"{base}/error"):
                invocation.record(response=(self.path.rsplit("/", 1)[1], headers, body))
                return self.reply(202)
            if self.path == f"{PREFIX}/init/error":
                invocation.record(init_error=(headers, body))
                return self.reply(202)
            invocation.record(unexpected=invocation.unexpected + [f"POST {self.path}"])
            self.reply(404, b'{"errorMessage":"unknown path"}')

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ---- the functions' environment and events ---------------------------------------------------

class StandIns(local_aws.Resolver):
    """The template's values with stand-ins for what only a deployment has (table name, pool id,
    ARNs): the variables each function is given, by name, with plausible dummy values."""

    def ref(self, name):
        try:
            return super().ref(name)
        except KeyError:
            return f"creditgate-{name}-stand-in"

    def getatt(self, logical, attr):
        try:
            return super().getatt(logical, attr)
        except KeyError:
            return f"arn:aws:{logical.lower()}:{REGION}:{ACCOUNT}:{logical}/stand-in"


# Secrets: today resolved by CloudFormation into STRIPE_SECRET_KEY / STRIPE_WEBHOOK_SECRETS; read
# at run time from the secret STRIPE_SECRET_ARN names once issue #11 lands. Both sets are given.
SECRETS = {
    "STRIPE_SECRET_KEY": "sk_test_arm64check",
    "STRIPE_WEBHOOK_SECRETS": "whsec_arm64check",
    "STRIPE_SECRET_ARN": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:creditgate/stripe-AbCdEf",
}


def template_environments() -> dict:
    template = local_aws.load_template(os.path.join(ROOT, "infra", "template.yaml"))
    resolver = StandIns(template, "creditgate", {})
    globals_env = (((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}).get("Variables") or {}
    envs = {}
    for logical, binary in local_aws.lambda_binaries(template).items():
        own = ((template["Resources"][logical]["Properties"].get("Environment") or {}).get("Variables")) or {}
        resolved = resolver.resolve({**globals_env, **own})
        env = {}
        for name, value in resolved.items():
            if "{{resolve:" in str(value):
                value = SECRETS.get(name, "stand-in")
            env[name] = str(value)
        envs[binary] = env
    return envs


def runtime_environment(function: str, template_env: dict, runtime_api: str, closed: str) -> dict:
    env = dict(SECRETS)
    env.update(template_env)
    env.update({
        # What Lambda sets (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html).
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "ASIAARM64CHECK000000",
        "AWS_SECRET_ACCESS_KEY": "arm64-check-secret",
        "AWS_SESSION_TOKEN": "arm64-check-token",
        "AWS_LAMBDA_FUNCTION_NAME": f"creditgate-{function}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/creditgate-{function}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "arm64-check",
        "AWS_EXECUTION_ENV": "AWS_Lambda_provided.al2023",
        "_HANDLER": "bootstrap",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        # Nothing leaves this machine: every AWS and Stripe call would be refused at once.
        "AWS_ENDPOINT_URL": closed,
        "STRIPE_API_BASE": closed + "/",
        "AWS_EC2_METADATA_DISABLED": "true",
    })
    return env


def http_event(method: str, path: str, headers: dict, body: str) -> dict:
    """An API Gateway HTTP API (payload 2.0) event from the fixtures, without the JWT
    authorizer's claims."""
    with open(os.path.join(ROOT, "tests", "fixtures", "apigw", "me.json")) as f:
        event = json.load(f)
    event = copy.deepcopy(event)
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    event["rawPath"] = path
    event["requestContext"]["http"].update({"method": method, "path": path})
    event["requestContext"].pop("authorizer", None)
    event["headers"] = {"content-type": "application/json", **headers}
    event["body"] = body
    return event


def cognito_event() -> dict:
    with open(os.path.join(ROOT, "tests", "fixtures", "cognito", "post-confirmation-forgot-password.json")) as f:
        return json.load(f)


def expect_status(status: int):
    def check(body: dict):
        got = body.get("statusCode")
        return got == status, f"statusCode {got} {body.get('body', '')}"
    return check


def expect_unchanged(event: dict):
    def check(body):
        return body == event, f"the event back unchanged ({body.get('triggerSource') if isinstance(body, dict) else body!r})"
    return check


def expect_error(fragment: str):
    """An error answer (`/invocation/<id>/error`) whose message names the problem."""
    def check(body):
        message = body.get("errorMessage", "") if isinstance(body, dict) else str(body)
        return fragment in message, f"an error naming {fragment!r} ({message!r})"
    check.wants_error = True
    return check


def cases() -> dict:
    """Per function: an event its handler answers without the network, and what it must answer
    (see crates/<function>/src/handler.rs)."""
    cognito = cognito_event()
    return {
        # triggerSource is not PostConfirmation_ConfirmSignUp: nothing to do, the event back as is.
        "post-confirmation": (cognito, expect_unchanged(cognito)),
        # No JWT claims: adapters::http::caller refuses with 401 before anything is read.
        "create-session": (http_event("POST", "/checkout-sessions", {}, '{"plan":"basic","mode":"subscription"}'), expect_status(401)),
        "cancel-subscriptions": (http_event("POST", "/subscriptions/cancel", {}, "{}"), expect_status(401)),
        "account": (http_event("GET", "/me", {}, ""), expect_status(401)),
        # No x-api-key header: 401 before the key is looked up.
        "credit-meter": (http_event("POST", "/v1/meter", {}, '{"cost":1}'), expect_status(401)),
        # No Stripe-Signature header: the signature check refuses it (401) before any event work.
        "stripe-webhook": (http_event("POST", "/stripe/webhook", {}, '{"id":"evt_arm64check","type":"customer.created"}'), expect_status(401)),
        # An input it does not take: refused, naming the field, before anything is read.
        "reconcile": ({"lookback": 3}, expect_error("unknown field `lookback`")),
    }


# ---- running one bootstrap ------------------------------------------------------------------

def closed_port():
    """A local port bound but not listening: connections are refused at once. Kept bound for
    the check's duration so nothing else takes it."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s, f"http://127.0.0.1:{s.getsockname()[1]}"


def extract(zip_path: str, into: str) -> str:
    with zipfile.ZipFile(zip_path) as z:
        names = z.namelist()
        if names != ["bootstrap"]:
            raise SystemExit(f"{zip_path}: holds {names}, not one `bootstrap` (Handler: bootstrap)")
        z.extract("bootstrap", into)
    path = os.path.join(into, "bootstrap")
    os.chmod(path, 0o755)
    return path


def run(args, function: str, bootstrap: str, env_for, event: dict, until, seconds: float, grace: float = 0):
    """Starts the bootstrap under qemu with the stub, waits until `until(invocation)` or exit or
    timeout (then up to `grace` seconds for it to exit by itself), then stops it. Returns
    (invocation, exit code or None, output, seconds to first poll)."""
    invocation = Invocation(function, event)
    server = stub_server(invocation)
    env = env_for(f"127.0.0.1:{server.server_address[1]}")
    log_path = bootstrap + ".log"
    started = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([args.qemu, "-L", args.sysroot, bootstrap], env=env, cwd=os.path.dirname(bootstrap),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = started + seconds
            while time.monotonic() < deadline and proc.poll() is None and not until(invocation):
                invocation.wait_for(lambda: until(invocation), 0.1)
        finally:
            try:
                code = proc.wait(grace) if grace else proc.poll()
            except subprocess.TimeoutExpired:
                code = None
            if code is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            invocation.stopping.set()
            server.shutdown()
            server.server_close()
    with open(log_path, "rb") as f:
        output = f.read().decode(errors="replace")
    init = None if invocation.first_poll_at is None else invocation.first_poll_at - started
    return invocation, code, output, init


def indent(text: str, limit: int = 4000) -> str:
    text = text.strip()
    if len(text) > limit:
        text = text[:limit] + " …"
    return "\n".join("      " + line for line in text.splitlines()) or "      (nothing)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qemu", default="qemu-aarch64-static")
    parser.add_argument("--sysroot", default="/usr/aarch64-linux-gnu")
    parser.add_argument("--lambda-dir", default=os.path.join(ROOT, "target", "lambda"))
    parser.add_argument("--timeout", type=float, default=60, help="seconds a function gets to start and answer")
    parser.add_argument("--missing-env", default="credit-meter:TABLE_NAME",
                        help="FUNCTION:VARIABLE started without VARIABLE, to print what it reports")
    parser.add_argument("functions", nargs="+")
    args = parser.parse_args()

    envs = template_environments()
    table = cases()
    keep_closed, closed = closed_port()
    failures = []
    with tempfile.TemporaryDirectory(prefix="creditgate-arm64-") as tmp:
        for function in args.functions:
            if function not in table:
                failures.append(function)
                print(f"FAIL {function}: no event for it in scripts/check_arm64.py cases(): add one", flush=True)
                continue
            event, expected = table[function]
            zip_path = os.path.join(args.lambda_dir, function, "bootstrap.zip")
            if not os.path.exists(zip_path):
                failures.append(function)
                print(f"FAIL {function}: {zip_path} is missing (scripts/package builds it)", flush=True)
                continue
            bootstrap = extract(zip_path, os.path.join(tmp, function))
            env_for = lambda api, f=function: runtime_environment(f, envs.get(f, {}), api, closed)
            # Answered, and back for the next event (the runtime loop goes on).
            invocation, code, output, init = run(args, function, bootstrap, env_for, event,
                                                 lambda i: i.response is not None and i.polls >= 2 or i.init_error is not None,
                                                 args.timeout)
            problems = []
            detail = ""
            if invocation.init_error is not None:
                problems.append(f"reported an init error: {invocation.init_error[1].decode(errors='replace')}")
            if invocation.polls == 0:
                problems.append("never asked the Runtime API for an event")
            if invocation.response is None:
                problems.append("did not answer the event" + (f" (exited with {code})" if code is not None else f" within {args.timeout:.0f} s"))
            else:
                kind, headers, body = invocation.response
                try:
                    answer = json.loads(body)
                except ValueError:
                    answer = body.decode(errors="replace")
                wants_error = getattr(expected, "wants_error", False)
                if (kind != "response") != wants_error:
                    problems.append(f"answered with {'an error' if kind != 'response' else 'a response'} "
                                    f"({headers.get('lambda-runtime-function-error-type')}): {answer}")
                elif wants_error:
                    ok, detail = expected(answer)
                    if not ok:
                        problems.append(f"answered {detail}")
                else:
                    ok, detail = expected(answer if isinstance(answer, dict) else {})
                    if not ok:
                        problems.append(f"answered {detail}")
                if invocation.polls < 2:
                    problems.append("did not come back for the next event" + (f" (exited with {code})" if code is not None else ""))
            if invocation.unexpected:
                problems.append(f"unexpected Runtime API calls: {invocation.unexpected}")
            size = os.path.getsize(bootstrap) / 1e6
            if problems:
                failures.append(function)
                print(f"FAIL {function}: " + "; ".join(problems), flush=True)
                print(indent(output), flush=True)
            else:
                print(f"ok   {function}: bootstrap {size:.1f} MB, asked for an event after {init:.2f} s under qemu, answered {detail}, polled again", flush=True)

        # A required variable missing: the function must log one JSON line naming it
        # (metric=init_failed, what the init-crash alarm counts), POST it to
        # /runtime/init/error, and exit.
        function, _, variable = args.missing_env.partition(":")
        zip_path = os.path.join(args.lambda_dir, function, "bootstrap.zip")
        if function in table and os.path.exists(zip_path):
            bootstrap = extract(zip_path, os.path.join(tmp, function + "-missing-env"))
            def env_for(api, f=function):
                env = runtime_environment(f, envs.get(f, {}), api, closed)
                env.pop(variable, None)
                return env
            invocation, code, output, _ = run(args, function, bootstrap, env_for, table[function][0],
                                              lambda i: i.init_error is not None or i.response is not None, args.timeout, grace=3)
            if invocation.init_error:
                headers, body = invocation.init_error
                reported = f"yes ({headers.get('lambda-runtime-function-error-type')}): {body.decode(errors='replace')}"
            else:
                reported = "no"
            status = f"exited with {code}" if code is not None else ("still running" if invocation.polls == 0 else "took an event")
            logged = any('"init_failed"' in line and variable in line and line.lstrip().startswith("{")
                         for line in output.splitlines())
            ok = (code not in (None, 0) and invocation.init_error is not None and variable in reported
                  and invocation.response is None and logged)
            print(f"{'ok  ' if ok else 'FAIL'} {function} without {variable}: {status}; POSTed {PREFIX}/init/error: {reported}; "
                  f"logged JSON metric=init_failed: {'yes' if logged else 'no'}", flush=True)
            if not ok:
                failures.append(f"{function} without {variable}")
                print(indent(output, 1500), flush=True)
    keep_closed.close()
    if failures:
        print(f"arm64 check failed for: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
