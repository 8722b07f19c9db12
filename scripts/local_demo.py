#!/usr/bin/env python3
"""`make local`: the whole service on this machine, end to end, then it stops by itself.

Run by scripts/local-demo.sh inside `scripts/emulator.sh run` (AWS_ENDPOINT_URL set):
  1. seeds demo buckets with archived media (GLACIER, DEEP_ARCHIVE, readable ones, awkward keys);
  2. starts `restore-local serve` (HTTP API + fan-out + the completion pipeline) on loopback;
     the pipeline points the bucket's restore notifications at an SQS queue on the emulator
     and feeds moto's messages to the events handler, so the counts come from those events;
  3. submits a restore with POST /api/v1/restore, as the Pluto frontend would;
  4. shows GET /api/v1/restore/{id} until the job is finished;
  5. prints how many restore completions arrived via SQS (from the pipeline's lines), where
     the manifest and report are, the CSV itself, and the mail that was sent (read back from
     the emulator's recorded SES messages).
Exit status 0 only when the job completed, every archived object was counted from an SQS
event, and exactly one mail went out.
"""
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import boto3

ENDPOINT = os.environ["AWS_ENDPOINT_URL"]
SERVE = os.environ.get("RESTORE_LOCAL", "target/debug/restore-local")
ASSETS = "pluto-assets-local"
MANIFESTS = "restore-manifests-local"
SENDER = "restore@example.com"
PROJECT = "4242"
PATH = "/srv/projects/Assets/Demo Project"
SAMPLES = [
    ("Demo Project/rushes/day 1/A001_C001.mov", "GLACIER", 3 << 20),
    ("Demo Project/rushes/day 1/A001+C002, take 2.mov", "GLACIER", 2 << 20),
    ("Demo Project/rushes/day 2/B001 100%.mxf", "DEEP_ARCHIVE", 4 << 20),
    ("Demo Project/audio/Café 映像 mix.wav", "DEEP_ARCHIVE", 1 << 20),
    ("Demo Project/proxies/A001_C001.mp4", "STANDARD", 256 << 10),
    ("Demo Project/graphics/title-card.png", "GLACIER_IR", 128 << 10),
]
TERMINAL = {"completed", "completed_with_errors", "failed"}
PIPELINE_LINE = re.compile(r"(\d+) SQS message\(s\): (\d+) restore completion\(s\), (\d+) object\(s\) settled")


class PipelineLog:
    """Echoes `restore-local serve`'s console lines and sums what the SQS events did."""

    def __init__(self, stream):
        self.messages = self.completions = self.settled = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream):
        for line in stream:
            line = line.rstrip()
            match = PIPELINE_LINE.search(line)
            if match:
                with self.lock:
                    self.messages += int(match[1])
                    self.completions += int(match[2])
                    self.settled += int(match[3])
            if line.startswith("restore-local pipeline:"):
                print(f"   [serve] {line.split(':', 1)[1].strip()}")

    def totals(self):
        with self.lock:
            return self.messages, self.completions, self.settled


def aws(service):
    return boto3.client(service, endpoint_url=ENDPOINT, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def http(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    s3 = aws("s3")
    s3.create_bucket(Bucket=ASSETS)
    for key, storage_class, size in SAMPLES:
        s3.put_object(Bucket=ASSETS, Key=key, StorageClass=storage_class, Body=b"m" * size)
    print(f"1. Seeded s3://{ASSETS}/Demo Project/ with {len(SAMPLES)} objects "
          f"({sum(1 for s in SAMPLES if s[1] in ('GLACIER', 'DEEP_ARCHIVE'))} archived)")

    port = free_port()
    env = dict(os.environ,
               AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               ASSET_BUCKET_LIST=ASSETS, MANIFEST_BUCKET=MANIFESTS, SMTP_FROM=SENDER,
               NOTIFICATION_EMAIL="media-ops@example.com", ALLOWED_USERS="editor@example.com",
               PLUTO_PROJECT_URL="http://localhost/pluto/project/",
               LISTEN_ADDR=f"127.0.0.1:{port}", RUST_LOG=os.environ.get("RUST_LOG", "warn"))
    api = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([SERVE, "serve"], env=env, stdout=subprocess.PIPE, text=True)
    log = PipelineLog(server.stdout)
    try:
        for _ in range(300):
            try:
                if http("GET", f"{api}/health")[0] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None:
                sys.exit(f"restore-local serve exited with {server.returncode}")
            time.sleep(0.1)
        print(f"2. restore-local serve is up at {api}")

        status, job = http("POST", f"{api}/api/v1/restore", {
            "id": PROJECT, "user": "editor@example.com", "path": PATH, "retrievalType": "Bulk"})
        if status not in (200, 202):
            sys.exit(f"POST /api/v1/restore answered {status}: {job}")
        job_id = job.get("id") or job.get("jobId")
        print(f"3. Restore submitted: job {job_id} ({status})")

        deadline = time.time() + 180
        while True:
            status, job = http("GET", f"{api}/api/v1/restore/{job_id}")
            state = job.get("status")
            objects = job.get("objects", {})
            print(f"   {state:<22} {job.get('percent', 0):>5}%  restored {objects.get('restored', 0)}"
                  f", already readable {objects.get('notNeeded', 0)}, pending {objects.get('pending', 0)}"
                  f", failed {objects.get('failed', 0)} of {objects.get('total', 0)}")
            if state in TERMINAL:
                break
            if time.time() > deadline:
                sys.exit("the job did not finish within 3 minutes")
            time.sleep(1)
        print(f"4. Job {job_id} finished: {state}")

        # The finalizer runs right after the last count; give it a moment to mail.
        for _ in range(50):
            mails = [m for m in json.loads(urllib.request.urlopen(
                f"{ENDPOINT}/moto-api/data.json").read())["ses"].get("Message", [])
                if m.get("source") == SENDER]
            if mails:
                break
            time.sleep(0.2)
        csv = s3.get_object(Bucket=MANIFESTS, Key=f"{job_id}/manifest.csv")["Body"].read().decode()
        archived = sum(1 for s in SAMPLES if s[1] in ("GLACIER", "DEEP_ARCHIVE"))
        for _ in range(50):  # the pass that finished the job prints its line just after
            messages, completions, settled = log.totals()
            if settled >= archived:
                break
            time.sleep(0.1)
        print(f"5. Events: {completions} restore completion(s) arrived via SQS from the emulator "
              f"({messages} message(s), the rest ObjectRestore:Post / s3:TestEvent, ignored); "
              f"they settled {settled} of the {archived} archived object(s)")
        print(f"6. Manifest: s3://{MANIFESTS}/{job_id}/manifest.csv (report: .../report.json)")
        for line in csv.splitlines():
            print(f"   {line}")
        print(f"7. Mail sent ({len(mails)}):")
        for mail in mails:
            print(f"   To: {', '.join(mail['destinations']['ToAddresses'])}")
            print(f"   Subject: {mail['subject']}")
            for line in mail["body"].splitlines():
                print(f"   | {line}")
        if state != "completed" or len(mails) != 1:
            sys.exit(f"expected a completed job and one mail, got {state} and {len(mails)}")
        if settled != archived:
            sys.exit(f"expected all {archived} archived objects counted from SQS events, got {settled}")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
