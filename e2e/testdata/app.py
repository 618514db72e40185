"""Flask app that the e2e tests put behind Wedge (run by gunicorn, sync workers).

  GET  /                         -> "ok"
  GET  /big?n=BYTES[&chunked=1]  -> BYTES bytes of the pattern below, with Content-Length
                                    (or, with chunked=1, streamed: gunicorn sends it chunked)
  POST /upload, PUT /upload      -> reads the whole body and answers JSON
                                    {"len", "sha256", "content_length", "transfer_encoding"}
  GET  /sleep?s=SECONDS          -> sleeps, then "slept"
  GET  /headers                  -> JSON list of [name, value] of the request's fields

The pattern: byte i of a body is PATTERN[i % 65521] with
PATTERN[j] = ((j * 2654435761) >> 13) & 0xff; e2e/gunicorn_test.go makes the same bytes.
Run by e2e/gunicorn_test.go: gunicorn --workers 2 --worker-class sync --timeout 120 app:app
"""
import hashlib
import json
import time

from flask import Flask, Response, request

app = Flask(__name__)

PERIOD = 65521
PATTERN = bytes(((j * 2654435761) >> 13) & 0xFF for j in range(PERIOD))


def pattern(n):
    reps = n // PERIOD + 1
    return (PATTERN * reps)[:n]


@app.route("/")
def index():
    return Response(b"ok", mimetype="text/plain")


@app.route("/big")
def big():
    n = int(request.args.get("n", "1048576"))
    if request.args.get("chunked") == "1":
        def gen():
            off = 0
            step = 65536
            while off < n:
                k = min(step, n - off)
                start = off % PERIOD
                chunk = (PATTERN * ((start + k) // PERIOD + 1))[start:start + k]
                yield chunk
                off += k
        return Response(gen(), mimetype="application/octet-stream")
    return Response(pattern(n), mimetype="application/octet-stream")


@app.route("/upload", methods=["POST", "PUT"])
def upload():
    h = hashlib.sha256()
    n = 0
    stream = request.stream
    while True:
        b = stream.read(1 << 16)
        if not b:
            break
        h.update(b)
        n += len(b)
    out = {
        "len": n,
        "sha256": h.hexdigest(),
        "content_length": request.headers.get("Content-Length"),
        "transfer_encoding": request.headers.get("Transfer-Encoding"),
    }
    return Response(json.dumps(out), mimetype="application/json")


@app.route("/sleep")
def sleep():
    time.sleep(float(request.args.get("s", "1")))
    return Response(b"slept", mimetype="text/plain")


@app.route("/headers")
def headers():
    return Response(json.dumps([[k, v] for k, v in request.headers.items()]), mimetype="application/json")
