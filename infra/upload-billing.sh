#!/usr/bin/env bash
# Uploads a billing export to the local stack's bucket under incoming/, as the
# billing team does in AWS, and prints the import report when it appears.
#   infra/upload-billing.sh FILE
# Needs the local stack running (infra/run-local.sh prints AWS_ENDPOINT_URL;
# set it here too if it is not the default).
set -euo pipefail
cd "$(dirname "$0")/.."
file="${1:?usage: infra/upload-billing.sh FILE}"
infra/setup.sh
AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://127.0.0.1:5000}" BUCKET="${BUCKET:-local-billingbucket}" \
  .venv/bin/python - "$file" <<'PY'
import json, os, sys, time, urllib.parse
import boto3

path = sys.argv[1]
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1",
                  aws_access_key_id="local", aws_secret_access_key="local")
bucket = os.environ["BUCKET"]
name = os.path.basename(path)
key, report = f"incoming/{name}", f"reports/{name}.json"
try:
    s3.delete_object(Bucket=bucket, Key=report)
except Exception:
    pass
s3.upload_file(path, bucket, key)
print(f"uploaded s3://{bucket}/{key}; waiting for the import...")
for _ in range(3000):
    try:
        body = s3.get_object(Bucket=bucket, Key=report)["Body"].read()
        print(json.dumps(json.loads(body), ensure_ascii=False, indent=2))
        break
    except s3.exceptions.NoSuchKey:
        time.sleep(0.1)
else:
    sys.exit("no report after 5 minutes: is infra/run-local.sh running?")
PY
