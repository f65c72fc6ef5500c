#!/usr/bin/env bash
# Moves what ended in the cabinet's dead-letter queues back to the queues
# their consumers read, with SQS's message move task, once the cause is
# fixed (the logs of the function say why: see README, "Operations").
#
#   infra/redrive.sh STACK [identify|mail-events|import-failures|all]
#   infra/redrive.sh STACK status     # what is waiting, and the move tasks
#
# Needs the AWS CLI (v2) with credentials for the stack's account and region.
# Moving is safe to repeat: every consumer is idempotent (identification
# writes conditionally, the letters are claimed once, a bounce is a bounce).
set -euo pipefail
stack="${1:?usage: infra/redrive.sh STACK [identify|mail-events|import-failures|all|status]}"
which="${2:-all}"

output() {
  aws cloudformation describe-stacks --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
arn_of() {
  aws sqs get-queue-attributes --queue-url "$1" --attribute-names QueueArn --query Attributes.QueueArn --output text
}
waiting() {
  aws sqs get-queue-attributes --queue-url "$1" --attribute-names ApproximateNumberOfMessages \
    --query Attributes.ApproximateNumberOfMessages --output text
}

# name, dead-letter queue output, source queue output
pairs=(
  "identify IdentifyDeadLetterQueueUrl IdentifyQueueUrl"
  "mail-events MailEventsDeadLetterQueueUrl MailEventsQueueUrl"
  "import-failures ImportFailuresDeadLetterQueueUrl ImportFailuresQueueUrl"
)

for pair in "${pairs[@]}"; do
  read -r name dead_output source_output <<<"$pair"
  if [[ "$which" != all && "$which" != status && "$which" != "$name" ]]; then continue; fi
  dead_url="$(output "$dead_output")"
  dead_arn="$(arn_of "$dead_url")"
  count="$(waiting "$dead_url")"
  if [[ "$which" == status ]]; then
    echo "$name: $count message(s) in $dead_url"
    aws sqs list-message-move-tasks --source-arn "$dead_arn" --max-results 3 \
      --query 'Results[].[Status,ApproximateNumberOfMessagesMoved,ApproximateNumberOfMessagesToMove,FailureReason]' \
      --output text
    continue
  fi
  if [[ "$count" == 0 ]]; then
    echo "$name: nothing to move"
    continue
  fi
  # The destination is named: the mail events dead-letter queue also keeps
  # what SNS could not deliver, which has no source queue of its own.
  source_arn="$(arn_of "$(output "$source_output")")"
  echo "$name: moving $count message(s) back to $source_arn"
  aws sqs start-message-move-task --source-arn "$dead_arn" --destination-arn "$source_arn" \
    --max-number-of-messages-per-second 10 --query TaskHandle --output text
done
[[ "$which" == status ]] || echo "follow with: infra/redrive.sh $stack status"
