#!/usr/bin/env python3
"""An independent receiver-side check of a fleetflow webhook request,
written from the Standard Webhooks specification
(https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md)
and CloudEvents 1.0 (structured JSON mode), with Python's standard library
only, so that a test does not check fleetflow's signing with fleetflow's own
code.

Input on stdin, JSON: {"secret": "whsec_...", "headers": {name: value},
"body": "<the raw request body>", "now": <unix seconds, optional>}.
Exit 0 and print the event type when the request is authentic, fresh
(timestamp within 5 minutes) and a valid CloudEvent; else exit 1 and print
why.
"""
import base64
import hashlib
import hmac
import json
import sys
import time

TOLERANCE = 5 * 60


def fail(why):
    print(why)
    sys.exit(1)


def main():
    req = json.load(sys.stdin)
    headers = {k.lower(): v for k, v in req["headers"].items()}
    body = req["body"].encode("utf-8")
    msg_id = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sigs = headers.get("webhook-signature")
    if not (msg_id and ts and sigs):
        fail("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        ts_int = int(ts)
    except ValueError:
        fail("webhook-timestamp is not an integer")
    now = req.get("now") or time.time()
    if abs(now - ts_int) > TOLERANCE:
        fail("timestamp outside the 5 minute tolerance")
    secret = req["secret"]
    if not secret.startswith("whsec_"):
        fail("secret without whsec_ prefix")
    key = base64.b64decode(secret[len("whsec_"):])
    signed = msg_id.encode() + b"." + ts.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    ok = False
    for versioned in sigs.split(" "):
        version, _, sig = versioned.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            ok = True
    if not ok:
        fail("no matching v1 signature")
    if headers.get("content-type", "").split(";")[0].strip() != "application/cloudevents+json":
        fail("content-type is not application/cloudevents+json")
    ev = json.loads(body)
    for attr in ("specversion", "id", "source", "type"):
        if not isinstance(ev.get(attr), str) or not ev[attr]:
            fail("CloudEvent without " + attr)
    if ev["specversion"] != "1.0":
        fail("specversion is not 1.0")
    if ev["id"] != msg_id:
        fail("webhook-id differs from the CloudEvent id")
    print(ev["type"])


main()
