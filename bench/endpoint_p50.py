"""Run under `rolehop exec --refresh on`: fetches the served credentials N times with botocore's
own container fetcher (what boto3 and the aws CLI call), and prints the latency percentiles."""
import json
import os
import statistics
import sys
import time

from botocore.utils import ContainerMetadataFetcher

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
url = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
headers = {"Authorization": os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]}
fetcher = ContainerMetadataFetcher()
for _ in range(20):
    fetcher.retrieve_full_uri(url, headers=headers)
times = []
for _ in range(n):
    t = time.perf_counter()
    fetcher.retrieve_full_uri(url, headers=headers)
    times.append((time.perf_counter() - t) * 1000)
times.sort()
print(json.dumps({
    "requests": n,
    "p50_ms": round(statistics.median(times), 3),
    "p90_ms": round(times[int(n * 0.9)], 3),
    "p99_ms": round(times[int(n * 0.99)], 3),
    "min_ms": round(times[0], 3),
}))
