#!/usr/bin/env python3
"""The local AWS side of creditgate's stack, on moto.

  serve      moto's server on 127.0.0.1, requests serialised (see DESIGN.md: stock moto loses
             conditional updates under concurrency), Step Functions executions switched on.
  provision  creates the DynamoDB table, Cognito user pool and client, the Stripe secret and
             the state machine from infra/template.yaml itself, so local and deployed cannot drift; prints the
             stack outputs as JSON.
  functions  the template's Lambda functions, one binary name a line (from each CodeUri).

Only the resource types creditgate's template uses are understood; anything else in the
template is reported and skipped, never guessed.
"""

import argparse
import json
import os
import re
import sys
import threading

REGION = os.environ.get("AWS_REGION", "us-east-1")
ACCOUNT = "123456789012"


# ---- serve ------------------------------------------------------------------------------------

def serve(port: int) -> None:
    # The state machine's tasks call back into this server at localhost:MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)
    from werkzeug.serving import make_server
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from moto.moto_api._internal.models import moto_api_backend

    patch_sfn_start_execution()
    patch_cognito_email_change()
    patch_cognito_username_sub()
    moto_api_backend.set_config({"stepfunctions": {"execute_state_machine": True}})
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialised(environ, start_response):
        # One request at a time, body included: DynamoDB's per-item atomicity, which stock
        # moto's threaded server does not give.
        with lock:
            result = app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close:
                    close()
        return [body]

    server = make_server("127.0.0.1", port, serialised, threaded=True, request_handler=MotoRequestHandler)
    print(f"moto listening on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


def patch_sfn_start_execution() -> None:
    """moto's optimised `states:startExecution` integration passes the ASL's PascalCase
    parameters (StateMachineArn, Name, Input) to boto3 unchanged; the API's members are
    camelCase, so the call fails. Real Step Functions maps them; so does this patch."""
    try:
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
            state_task_service_sfn as sfn_task,
        )
    except ImportError:
        return
    cls = sfn_task.StateTaskServiceSfn
    original = cls._normalise_parameters

    def normalise(self, parameters, boto_service_name=None, service_action_name=None):
        original(self, parameters, boto_service_name, service_action_name)
        if service_action_name is None and self._get_boto_service_action() == "start_execution":
            for key in list(parameters):
                camel = key[:1].lower() + key[1:]
                if camel != key:
                    parameters[camel] = parameters.pop(key)

    cls._normalise_parameters = normalise


def patch_cognito_email_change() -> None:
    """moto applies a user's own email change (UpdateUserAttributes) at once and keeps
    `email_verified: true`, so anyone could take another person's address and the ID token would
    vouch for it. Cognito does not: with `AttributesRequireVerificationBeforeUpdate: [email]` (the
    template's pool) the old email stays in force until the new one's code is confirmed (the local
    stack sends no codes, so it stays), and without it the new email is unverified. This patch
    gives the local stack Cognito's rule."""
    from moto.cognitoidp.models import CognitoIdpBackend

    original = CognitoIdpBackend.update_user_attributes

    def update_user_attributes(self, access_token, attributes):
        wants_email = any(a.get("Name") == "email" for a in attributes)
        pool = next((p for p in self.user_pools.values() if access_token in p.access_tokens), None)
        if not wants_email or pool is None:
            return original(self, access_token, attributes)
        settings = pool.extended_config.get("UserAttributeUpdateSettings") or {}
        if "email" in settings.get("AttributesRequireVerificationBeforeUpdate", []):
            rest = [a for a in attributes if a.get("Name") not in ("email", "email_verified")]
            return original(self, access_token, rest) if rest else None
        unverified = [a for a in attributes if a.get("Name") != "email_verified"]
        return original(self, access_token, unverified + [{"Name": "email_verified", "Value": "false"}])

    CognitoIdpBackend.update_user_attributes = update_user_attributes


def patch_cognito_username_sub() -> None:
    """Cognito takes a user's `sub` wherever an admin call takes a `Username`; moto only the
    username or, in pools whose username is the email, the email. With this patch the functions
    address users by sub locally as deployed, and their roles need no `ListUsers` to find one."""
    from moto.cognitoidp.models import CognitoIdpUserPool

    original = CognitoIdpUserPool._get_user

    def _get_user(self, username):
        user = original(self, username)
        if user is None:
            user = next((u for u in self.users.values() if u.id == username), None)
        return user

    CognitoIdpUserPool._get_user = _get_user


# ---- the template -----------------------------------------------------------------------------

def load_template(path: str) -> dict:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def tag(name):
        def construct(loader, node):
            if isinstance(node, yaml.ScalarNode):
                value = loader.construct_scalar(node)
                if name == "GetAtt":
                    return {"Fn::GetAtt": value.split(".", 1)}
            elif isinstance(node, yaml.SequenceNode):
                value = loader.construct_sequence(node, deep=True)
            else:
                value = loader.construct_mapping(node, deep=True)
            return {"Ref": value} if name == "Ref" else {f"Fn::{name}": value}
        return construct

    for name in ["Ref", "Sub", "GetAtt", "If", "Not", "Equals", "Join", "Select", "Split", "And", "Or", "FindInMap", "Base64", "ImportValue", "GetAZs"]:
        Loader.add_constructor(f"!{name}", tag(name))
    with open(path) as f:
        return yaml.load(f, Loader=Loader)


def lambda_binaries(template: dict) -> dict:
    """Each function's logical id -> its binary, read from its CodeUri (the artifact that
    scripts/package builds: `../target/lambda/<binary>/bootstrap.zip`). The template is the one
    list of functions: scripts/package, scripts/check-arm64, scripts/bench and scripts/dev read it
    from here."""
    binaries = {}
    for logical, res in (template.get("Resources") or {}).items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        code_uri = str((res.get("Properties") or {}).get("CodeUri", ""))
        match = re.fullmatch(r"(?:\.\./)?target/lambda/([A-Za-z0-9_-]+)/bootstrap\.zip", code_uri)
        if not match:
            raise SystemExit(f"{logical}: CodeUri {code_uri!r} is not ../target/lambda/<binary>/bootstrap.zip (what scripts/package builds)")
        binaries[logical] = match.group(1)
    return binaries


class NoValue:
    pass


class Resolver:
    def __init__(self, template: dict, stack: str, parameters: dict):
        self.template = template
        self.stack = stack
        self.params = {}
        for name, spec in (template.get("Parameters") or {}).items():
            self.params[name] = parameters.get(name, spec.get("Default", ""))
        self.physical = {}  # logical id -> Ref value
        self.attrs = {}  # (logical id, attribute) -> value

    def pseudo(self, name):
        return {
            "AWS::StackName": self.stack,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NoValue,
        }.get(name)

    def ref(self, name):
        if name in self.params:
            return self.params[name]
        value = self.pseudo(name)
        if value is not None:
            return value
        if name in self.physical:
            return self.physical[name]
        raise KeyError(f"!Ref {name}: not created yet or unknown")

    def condition(self, name):
        return bool(self.resolve(self.template["Conditions"][name]))

    def resolve(self, value):
        if isinstance(value, list):
            return [v for v in (self.resolve(v) for v in value) if v is not NoValue]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
                def sub(m):
                    name = m.group(1)
                    if name in extra:
                        return str(extra[name])
                    if "." in name:
                        logical, attr = name.split(".", 1)
                        return str(self.getatt(logical, attr))
                    return str(self.ref(name))
                # {{resolve:...}} dynamic references stay as text; the caller decides.
                return re.sub(r"\$\{([^}!]+)\}", sub, text)
            if key == "Fn::GetAtt":
                return self.getatt(arg[0], arg[1])
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::Equals":
                return self.resolve(arg[0]) == self.resolve(arg[1])
            if key == "Fn::Join":
                return arg[0].join(str(v) for v in self.resolve(arg[1]))
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in value.items()) if v is not NoValue}

    def getatt(self, logical, attr):
        if (logical, attr) in self.attrs:
            return self.attrs[(logical, attr)]
        resource = self.template["Resources"].get(logical)
        if resource and resource["Type"] == "AWS::Serverless::Function" and attr == "Arn":
            # Functions run under `cargo lambda watch`, not in moto: a stand-in ARN.
            name = self.resolve(resource["Properties"].get("FunctionName", logical))
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        raise KeyError(f"!GetAtt {logical}.{attr}: not created yet or unknown")


def provision(template_path: str, endpoint: str, stack: str, parameters: dict) -> dict:
    import boto3

    template = load_template(template_path)
    r = Resolver(template, stack, parameters)
    kw = dict(endpoint_url=endpoint, region_name=REGION, aws_access_key_id="local", aws_secret_access_key="local")
    ddb = boto3.client("dynamodb", **kw)
    idp = boto3.client("cognito-idp", **kw)
    sfn = boto3.client("stepfunctions", **kw)
    secrets = boto3.client("secretsmanager", **kw)
    # Resources whose Condition is false are not created, as in CloudFormation.
    resources = {k: v for k, v in template["Resources"].items() if "Condition" not in v or r.condition(v["Condition"])}
    by_type = lambda t: [(k, v) for k, v in resources.items() if v["Type"] == t]
    handled = {"AWS::DynamoDB::Table", "AWS::SecretsManager::Secret", "AWS::Cognito::UserPool", "AWS::Cognito::UserPoolClient",
               "AWS::Serverless::StateMachine", "AWS::Serverless::Function", "AWS::Lambda::Permission",
               # Served by `cargo lambda watch` (function URLs stand in for the HTTP API's routes).
               "AWS::Serverless::HttpApi"}
    # Alarms, log groups and the like are many and all alike: one line per type, not per resource.
    skipped = {}
    for res in resources.values():
        if res["Type"] not in handled:
            skipped[res["Type"]] = skipped.get(res["Type"], 0) + 1
    if skipped:
        print("provision: not part of the local stack, skipped: "
              + ", ".join(f"{n} {kind}" for kind, n in sorted(skipped.items())), file=sys.stderr)

    for logical, res in by_type("AWS::DynamoDB::Table"):
        p = r.resolve(res["Properties"])
        args = {k: p[k] for k in ["TableName", "BillingMode", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes"] if k in p}
        try:
            ddb.create_table(**args)
        except ddb.exceptions.ResourceInUseException:
            pass
        if "TimeToLiveSpecification" in p:
            ttl = p["TimeToLiveSpecification"]
            ddb.update_time_to_live(TableName=p["TableName"], TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": bool(ttl["Enabled"])})
        r.physical[logical] = p["TableName"]
        r.attrs[(logical, "Arn")] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{p['TableName']}"

    # The Stripe secret: created with the template's placeholder; scripts/dev then puts the
    # emulator's key and webhook secret into it, as an operator does after deploying.
    for logical, res in by_type("AWS::SecretsManager::Secret"):
        p = r.resolve(res["Properties"])
        try:
            arn = secrets.describe_secret(SecretId=p["Name"])["ARN"]
        except secrets.exceptions.ResourceNotFoundException:
            args = {k: p[k] for k in ["Name", "Description", "SecretString"] if k in p}
            arn = secrets.create_secret(**args)["ARN"]
        r.physical[logical] = arn

    for logical, res in by_type("AWS::Serverless::StateMachine"):
        # Only what creates it here: its Logging and Policies name resources moto does not hold.
        p = r.resolve({k: v for k, v in res["Properties"].items() if k in ("Name", "Type", "DefinitionUri", "DefinitionSubstitutions")})
        with open(os.path.join(os.path.dirname(template_path), p["DefinitionUri"])) as f:
            definition = f.read()
        for name, value in (p.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + name + "}", str(value))
        name = p["Name"]
        arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
        existing = [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"] if m["name"] == name]
        if not existing:
            arn = sfn.create_state_machine(name=name, definition=definition, type=p.get("Type", "STANDARD"),
                                           roleArn=f"arn:aws:iam::{ACCOUNT}:role/{name}")["stateMachineArn"]
        r.physical[logical] = arn
        r.attrs[(logical, "Arn")] = arn
        r.attrs[(logical, "Name")] = name

    for logical, res in by_type("AWS::Cognito::UserPool"):
        p = r.resolve(res["Properties"])
        args = {("PoolName" if k == "UserPoolName" else k): v for k, v in p.items()
                if k in ["UserPoolName", "Policies", "Schema", "UsernameAttributes", "AutoVerifiedAttributes", "LambdaConfig", "MfaConfiguration",
                          "UsernameConfiguration", "UserAttributeUpdateSettings"]}
        for attr in args.get("Schema", []):
            for key in ["StringAttributeConstraints", "NumberAttributeConstraints"]:
                if key in attr:
                    attr[key] = {k: str(v) for k, v in attr[key].items()}
        pools = [x for x in idp.list_user_pools(MaxResults=60)["UserPools"] if x["Name"] == args["PoolName"]]
        pool = pools[0] if pools else idp.create_user_pool(**args)["UserPool"]
        r.physical[logical] = pool["Id"]
        r.attrs[(logical, "Arn")] = pool.get("Arn") or f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{pool['Id']}"
        r.attrs[(logical, "ProviderName")] = f"cognito-idp.{REGION}.amazonaws.com/{pool['Id']}"

    for logical, res in by_type("AWS::Cognito::UserPoolClient"):
        p = r.resolve(res["Properties"])
        args = {k: v for k, v in p.items() if k in ["UserPoolId", "ClientName", "GenerateSecret", "ExplicitAuthFlows", "ReadAttributes", "WriteAttributes",
                                                         "PreventUserExistenceErrors"]}
        # The local stack's tools and tests sign in with a password (USER_PASSWORD_AUTH); the
        # deployed client allows SRP only.
        flows = args.get("ExplicitAuthFlows", [])
        if "ALLOW_USER_PASSWORD_AUTH" not in flows:
            args["ExplicitAuthFlows"] = flows + ["ALLOW_USER_PASSWORD_AUTH"]
        clients = [c for c in idp.list_user_pool_clients(UserPoolId=p["UserPoolId"], MaxResults=60)["UserPoolClients"] if c["ClientName"] == p["ClientName"]]
        client = clients[0] if clients else idp.create_user_pool_client(**args)["UserPoolClient"]
        r.physical[logical] = client["ClientId"]

    outputs = {}
    unresolved = []
    for name, o in (template.get("Outputs") or {}).items():
        try:
            outputs[name] = r.resolve(o["Value"])
        except KeyError:
            unresolved.append(name)
    if unresolved:
        print("provision: outputs with no local value: " + ", ".join(unresolved), file=sys.stderr)
    # What each function would get as its environment (dynamic references left to the caller).
    functions = {}
    globals_env = ((template.get("Globals") or {}).get("Function") or {}).get("Environment", {}).get("Variables", {})
    binaries = lambda_binaries(template)
    for logical, res in by_type("AWS::Serverless::Function"):
        env = dict(globals_env)
        env.update(((res["Properties"].get("Environment") or {}).get("Variables")) or {})
        resolved = r.resolve(env)
        functions[binaries[logical]] = {k: v for k, v in resolved.items() if "{{resolve:" not in str(v)}
    return {"outputs": outputs, "functions": functions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port", type=int, required=True)
    p = sub.add_parser("provision")
    p.add_argument("--template", required=True)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--stack", default="creditgate")
    p.add_argument("--param", action="append", default=[], help="Name=Value for a template parameter")
    f = sub.add_parser("functions", help="the template's Lambda binaries, one a line")
    f.add_argument("--template", required=True)
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.port)
    elif args.command == "functions":
        print("\n".join(lambda_binaries(load_template(args.template)).values()))
    else:
        params = dict(kv.split("=", 1) for kv in args.param)
        print(json.dumps(provision(args.template, args.endpoint, args.stack, params), indent=2))


if __name__ == "__main__":
    main()
