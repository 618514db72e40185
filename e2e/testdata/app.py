"""Flask app that the e2e tests put behind Wedge (run by gunicorn, sync workers).

  GET  /                         -> "ok"
  GET  /big?n=BYTES[&chunked=1]  -> BYTES bytes of the pattern below, with Content-Length
                                    (or, with chunked=1, streamed: gunicorn sends it chunked)
  POST /upload, PUT /upload      -> reads the whole body and answers JSON
                                    {"len", "sha256", "content_length", "transfer_encoding"}
  GET  /sleep?s=SECONDS          -> sleeps, then "slept"
  GET  /headers                  -> JSON list of [name, value] of the request's fields
  GET  /cacheable?k=KEY          -> for e2e/cache_test.go: N (default 20000) bytes of HTML that name this
       [&cc=CC][&etag=E][&sleep=S]  fetch ("fetched <time>"), Cache-Control CC, ETag "E" (If-None-Match
       [&n=N][&vary=V]              answered 304), Vary V, after sleeping S seconds; other methods: "changed"
  GET  /compressible?n=BYTES     -> BYTES (default 102400) of HTML, with ETag and X-Body-Sha256 (the body's
       [&type=T][&cc=CC][&ce=gzip]  SHA-256); Range and If-None-Match honoured (206, 304); type sets the
                                    Content-Type, cc a Cache-Control, ce=gzip sends the body gzip-encoded

The pattern: byte i of a body is PATTERN[i % 65521] with
PATTERN[j] = ((j * 2654435761) >> 13) & 0xff; e2e/gunicorn_test.go makes the same bytes.
Run by e2e/gunicorn_test.go: gunicorn --workers 2 --worker-class sync --timeout 120 app:app
"""
import gzip
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


def html_page(n):
    rows = []
    size = 0
    i = 0
    while size < n:
        row = '<tr><td>%d</td><td><a href="/items/%d">item %d</a></td><td>%d.%02d EUR</td></tr>\n' % (
            i, i * 7 % 1000, i, i * 37 % 500, i % 100)
        rows.append(row)
        size += len(row)
        i += 1
    return ("".join(rows)).encode()[:n]


@app.route("/compressible", methods=["GET", "HEAD"])
def compressible():
    body = html_page(int(request.args.get("n", "102400")))
    digest = hashlib.sha256(body).hexdigest()
    if request.args.get("ce") == "gzip":
        body = gzip.compress(body, mtime=0)
    resp = Response(body, mimetype=request.args.get("type", "text/html"))
    resp.headers["X-Body-Sha256"] = digest
    if request.args.get("ce") == "gzip":
        resp.headers["Content-Encoding"] = "gzip"
    if "cc" in request.args:
        resp.headers["Cache-Control"] = request.args["cc"]
    resp.set_etag(digest[:16])
    return resp.make_conditional(request, accept_ranges=True, complete_length=len(body))


@app.route("/cacheable", methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"])
def cacheable():
    if request.method not in ("GET", "HEAD"):
        return Response(b"changed", mimetype="text/plain")
    if "sleep" in request.args:
        time.sleep(float(request.args["sleep"]))
    n = int(request.args.get("n", "20000"))
    body = ("<!-- fetched %.6f -->\n" % time.time()).encode() + html_page(n)
    resp = Response(body, mimetype="text/html")
    if "cc" in request.args:
        resp.headers["Cache-Control"] = request.args["cc"]
    if "vary" in request.args:
        resp.headers["Vary"] = request.args["vary"]
    if "etag" in request.args:
        resp.set_etag(request.args["etag"])
        return resp.make_conditional(request)
    return resp
