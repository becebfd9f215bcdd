#!/usr/bin/env bash
# The classic approach: two `aws sts assume-role` calls parsed with --query.
set -euo pipefail
read -r k s t < <(aws sts assume-role --role-arn "$ROLEHOP_SERVICE_ROLE_ARN" --role-session-name bench \
  --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text)
AWS_ACCESS_KEY_ID=$k AWS_SECRET_ACCESS_KEY=$s AWS_SESSION_TOKEN=$t \
  aws sts assume-role --role-arn "$ROLEHOP_DEPLOY_ROLE_ARN" --role-session-name bench \
  --query 'Credentials.AccessKeyId' --output text
