"""moto's server, with each DynamoDB request handled atomically.

DynamoDB applies a conditional write, an update or a transaction as one
step (transactions are serializable). moto's threaded server checks the
conditions and then writes without a lock, so two concurrent transactions
can both pass `attribute_not_exists` and both write, and a rolled-back
transaction restores a copy of the table taken before another thread's
write. The concurrency tests (one winner among parallel registrations, no
more password checks than the lock allows) would then test moto's race
rather than the cabinet. One lock around each DynamoDB request gives them
the semantics DynamoDB documents.

It also answers `GET /_letters?to=ADDRESS`: the raw letters SES has
accepted for one address (every letter without `to`), oldest first. moto's
own `/moto-api/data.json` dumps every model of every service; it grows
through a test run until one look at a resident's letters takes seconds and
holds up every other request meanwhile. Everything else is moto unchanged.
"""

import functools
import json
import threading
from urllib.parse import parse_qs

from moto.dynamodb.responses import DynamoHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.server import main
from moto.ses.models import ses_backends

_lock = threading.RLock()
_call_action = DynamoHandler.call_action


@functools.wraps(_call_action)
def _atomic_call_action(self, *args, **kwargs):
    with _lock:
        return _call_action(self, *args, **kwargs)


DynamoHandler.call_action = _atomic_call_action

_dispatch = DomainDispatcherApplication.__call__


def _letters(to):
    letters = []
    for regions in list(ses_backends.values()):
        for backend in list(regions.values()):
            for message in list(backend.sent_messages):
                raw = getattr(message, "raw_data", None)
                if raw is None or (to is not None and to not in message.destinations):
                    continue
                letters.append({"destinations": message.destinations, "raw_data": raw})
    return letters


@functools.wraps(_dispatch)
def _dispatch_with_letters(self, environ, start_response):
    if environ.get("PATH_INFO") != "/_letters":
        return _dispatch(self, environ, start_response)
    # `?to=` (an empty address) matches no letter rather than all of them.
    to = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).get("to", [None])[0]
    body = json.dumps(_letters(to)).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


DomainDispatcherApplication.__call__ = _dispatch_with_letters

if __name__ == "__main__":
    main()
