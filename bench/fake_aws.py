"""A tiny AWS JSON-protocol responder for the bench: it answers at the HTTP level, so the whole
client path (botocore's serialisation, signing, HTTP, parsing) runs in the measured process, and
it runs in a process of its own, so its CPU is not counted.

Every call is answered 200 ``{}`` (a PutItem that wrote, an UpdateItem applied, a SendMessage
sent) after ``--delay-ms`` (a DynamoDB round trip); each request on its own thread, so concurrent
writes overlap as they do against DynamoDB. Prints its port on stdout, then serves until killed.
"""

from __future__ import annotations

import argparse
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay-ms", type=float, default=0.0)
    delay = parser.parse_args().delay_ms / 1000

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: botocore reuses its connections, as in Lambda

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            if delay:
                time.sleep(delay)
            # One write for the whole answer: headers and body in separate segments meet the client's
            # delayed ACK (Nagle), 40 ms that are the loopback's, not DynamoDB's.
            self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\n"
                             b"content-length: 2\r\n\r\n{}")

        def log_message(self, *args) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
