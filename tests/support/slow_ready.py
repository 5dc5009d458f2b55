"""A helper that announces itself slowly: `ready`, then its port a moment later, or fails.

python -m tests.support.slow_ready 1234     # "ready" ... " 1234"
python -m tests.support.slow_ready fail     # "Address already in use", exit 1
"""

import sys
import time

if sys.argv[1] == "fail":
    print("OSError: [Errno 98] Address already in use", flush=True)
    sys.exit(1)
print("ready", end="", flush=True)
time.sleep(0.5)
print(f" {sys.argv[1]}", flush=True)
time.sleep(30)
