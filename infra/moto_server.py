"""moto's server, with each DynamoDB request handled atomically.

DynamoDB applies a conditional write, an update or a transaction as one
step (transactions are serializable). moto's threaded server checks the
conditions and then writes without a lock, so two concurrent transactions
can both pass `attribute_not_exists` and both write, and a rolled-back
transaction restores a copy of the table taken before another thread's
write. The concurrency tests (one winner among parallel registrations, no
more password checks than the lock allows) would then test moto's race
rather than the cabinet. One lock around each DynamoDB request gives them
the semantics DynamoDB documents; everything else is moto unchanged.
"""

import functools
import threading

from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_lock = threading.RLock()
_call_action = DynamoHandler.call_action


@functools.wraps(_call_action)
def _atomic_call_action(self, *args, **kwargs):
    with _lock:
        return _call_action(self, *args, **kwargs)


DynamoHandler.call_action = _atomic_call_action

if __name__ == "__main__":
    main()
