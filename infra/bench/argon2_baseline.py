"""The reference of the argon2 benchmark (infra/bench.sh): libargon2 through
argon2-cffi, argon2id m=19456 KiB t=2 p=1, median of 15 hashes."""

import statistics
import time

from argon2 import PasswordHasher, Type

hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, type=Type.ID)
hasher.hash("warm up")
times = []
for i in range(15):
    started = time.perf_counter()
    hasher.hash(f"correct horse battery staple {i}")
    times.append(time.perf_counter() - started)
print(f"argon2id libargon2 (argon2-cffi): {statistics.median(times) * 1000:>6.1f} ms median of 15")
