"""The boto3 way to chain: what a user writes in Python without rolehop."""
import os

import boto3

first = boto3.client("sts").assume_role(RoleArn=os.environ["ROLEHOP_SERVICE_ROLE_ARN"], RoleSessionName="bench")["Credentials"]
second = boto3.client(
    "sts",
    aws_access_key_id=first["AccessKeyId"],
    aws_secret_access_key=first["SecretAccessKey"],
    aws_session_token=first["SessionToken"],
).assume_role(RoleArn=os.environ["ROLEHOP_DEPLOY_ROLE_ARN"], RoleSessionName="bench")["Credentials"]
print(f"export AWS_ACCESS_KEY_ID={second['AccessKeyId']}")
