"""Where events go: a Lambda function's triggers, as AWS wires them, ending in one queue per
function that the test bed's Lambda service (``tests/src/night.rs``) reads and invokes the
real binary with.

- EventBridge rules (moto's own rule matching) target the function's queue, as a rule
  targets a Lambda function (asynchronous invocation).
- SNS topics the function subscribes to deliver their envelope to the queue; the Lambda
  service wraps it in the `Records` event Lambda gives a subscribed function.
- A CloudWatch alarm action naming the function's ARN delivers the alarm's Lambda-action
  payload to the queue (CloudWatch User Guide, "Lambda alarm actions").
"""

import json
from typing import Any

from moto.events.models import events_backends
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends

from .core import ACCOUNT


class Functions:
    def __init__(self) -> None:
        self.functions: dict[str, dict[str, Any]] = {}  # function ARN -> its queue
        self.undelivered: list[dict[str, Any]] = []

    def register(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        region = body["region"]
        queue_name = f"drsim-fn-{name}"
        queue = sqs_backends[ACCOUNT][region].create_queue(queue_name)
        queue_arn = queue.queue_arn
        events = events_backends[ACCOUNT][region]
        for rule in body.get("rules", []):
            events.put_rule(rule["name"], event_pattern=json.dumps(rule["pattern"]), state="ENABLED")
            events.put_targets(rule["name"], None, [{"Id": f"fn-{name}", "Arn": queue_arn}])
        for topic in body.get("topics", []):
            topic_region = topic.split(":")[3]
            sns_backends[ACCOUNT][topic_region].subscribe(topic, queue_arn, "sqs")
        arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"
        entry = {"name": name, "arn": arn, "region": region, "queue_name": queue_name, "queue_arn": queue_arn}
        self.functions[arn] = entry
        return entry

    def invoke_async(self, function_arn: str, payload: dict[str, Any]) -> None:
        target = self.functions.get(function_arn)
        if target is None:
            self.undelivered.append({"function": function_arn, "payload": payload})
            return
        sqs_backends[ACCOUNT][target["region"]].send_message(target["queue_name"], json.dumps(payload))


FUNCTIONS = Functions()


def register(body: dict[str, Any], _q: dict[str, str], name: str) -> dict[str, Any]:
    return FUNCTIONS.register(name, body)


def undelivered(_b: dict[str, Any], _q: dict[str, str]) -> dict[str, Any]:
    return {"undelivered": FUNCTIONS.undelivered}
