"""Seeds the broker pattern into a moto server for the chain benchmark and prints shell
variables: a broker user in account 111111111111 that may assume a service role, which may
assume a deployment role in account 222222222222. Uses raw query calls with moto's
x-moto-account-id header (boto3 cannot pick moto accounts)."""
import re
import sys
import urllib.parse
import urllib.request

url = sys.argv[1]
BROKER, TARGET = "111111111111", "222222222222"


def iam(account, action, **params):
    body = urllib.parse.urlencode({"Action": action, "Version": "2010-05-08", **params}).encode()
    req = urllib.request.Request(url + "/", data=body, method="POST")
    req.add_header("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0")
    req.add_header("x-moto-account-id", account)
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    return urllib.request.urlopen(req).read().decode()


svc = f"arn:aws:iam::{BROKER}:role/bench-service"
dep = f"arn:aws:iam::{TARGET}:role/bench-deploy"
acts = '["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]'
allow = lambda arn: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":%s,"Resource":"%s"}]}' % (acts, arn)
trust = lambda arn: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"%s"},"Action":%s}]}' % (arn, acts)
iam(BROKER, "CreateUser", UserName="bench")
iam(BROKER, "PutUserPolicy", UserName="bench", PolicyName="p", PolicyDocument=allow(svc))
keys = iam(BROKER, "CreateAccessKey", UserName="bench")
iam(BROKER, "CreateRole", RoleName="bench-service", AssumeRolePolicyDocument=trust(f"arn:aws:iam::{BROKER}:user/bench"))
iam(BROKER, "PutRolePolicy", RoleName="bench-service", PolicyName="p", PolicyDocument=allow(dep))
iam(TARGET, "CreateRole", RoleName="bench-deploy", AssumeRolePolicyDocument=trust(svc))
kid = re.search("<AccessKeyId>(.*?)</AccessKeyId>", keys).group(1)
sec = re.search("<SecretAccessKey>(.*?)</SecretAccessKey>", keys).group(1)
print(f"export AWS_ACCESS_KEY_ID='{kid}' AWS_SECRET_ACCESS_KEY='{sec}'")
print(f"export ROLEHOP_SERVICE_ROLE_ARN='{svc}' ROLEHOP_DEPLOY_ROLE_ARN='{dep}'")
