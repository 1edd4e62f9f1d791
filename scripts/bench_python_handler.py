"""The Python equivalent of post-confirmation's cold start, for scripts/bench: what the seed
systems' handlers did at import time (boto3 and stripe imported, a DynamoDB resource and a Step
Functions client built), then the Lambda runtime API loop asking for the first event."""

import json
import os
import urllib.request

import boto3
import stripe

stripe.api_key = os.environ["STRIPE_SECRET_KEY"]
dynamodb = boto3.resource("dynamodb")
table = dynamodb.Table(os.environ["TABLE_NAME"])
sfn = boto3.client("stepfunctions")


def handler(event, context):
    return event


def main():
    api = os.environ["AWS_LAMBDA_RUNTIME_API"]
    while True:
        with urllib.request.urlopen(f"http://{api}/2018-06-01/runtime/invocation/next") as r:
            request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
            event = json.loads(r.read())
        body = json.dumps(handler(event, None)).encode()
        urllib.request.urlopen(urllib.request.Request(
            f"http://{api}/2018-06-01/runtime/invocation/{request_id}/response", data=body, method="POST"))


if __name__ == "__main__":
    main()
