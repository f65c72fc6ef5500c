#!/usr/bin/env bash
# Puts an SES bounce (or complaint) event for ADDRESS on the local stack's
# MailEventsQueue, exactly as SNS delivers it from the configuration set in
# AWS (moto's SES does not publish events itself). Then log in with that
# address, or open /register/status, to see what the resident sees.
#   infra/simulate-bounce.sh ADDRESS [bounce|complaint]
set -euo pipefail
cd "$(dirname "$0")/.."
address="${1:?usage: infra/simulate-bounce.sh ADDRESS [bounce|complaint]}"
kind="${2:-bounce}"
infra/setup.sh
AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://127.0.0.1:5000}" QUEUE="${QUEUE:-local-MailEventsQueue}" \
  .venv/bin/python - "$address" "$kind" <<'PY'
import json, os, sys
import boto3

address, kind = sys.argv[1], sys.argv[2]
sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1",
                   aws_access_key_id="local", aws_secret_access_key="local")
if kind == "complaint":
    event = {"eventType": "Complaint", "complaint": {"complainedRecipients": [{"emailAddress": address}]}}
else:
    event = {"eventType": "Bounce", "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                                               "bouncedRecipients": [{"emailAddress": address}]}}
url = sqs.get_queue_url(QueueName=os.environ["QUEUE"])["QueueUrl"]
sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
print(f"{kind} for {address} queued on {url}")
PY
