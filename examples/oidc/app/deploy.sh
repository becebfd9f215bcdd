#!/bin/sh
# Deploys the sample application. `rolehop exec` runs this with the deployment role's
# credentials in AWS_*; CI_ENVIRONMENT_NAME is the job's GitLab environment.
set -eu
echo "deploying as $(aws sts get-caller-identity --query Arn --output text)"
# A re-deploy without changes is success (some CloudFormation endpoints refuse the empty
# change set instead of letting --no-fail-on-empty-changeset handle it).
if ! out=$(aws cloudformation deploy --template-file app/stack.yaml --stack-name acme-shop-app \
  --parameter-overrides "Environment=${CI_ENVIRONMENT_NAME}" --no-fail-on-empty-changeset 2>&1); then
  echo "$out"
  case "$out" in *"No updates are to be performed"*) ;; *) exit 1 ;; esac
fi
echo "$out"
