// Package e2e holds Wedge's end-to-end tests: an in-process Wedge
// (server.New) in front of a real Gunicorn running the Flask app in
// testdata/app.py, talked to over 127.0.0.1 with net/http and raw TCP.
//
// The tests show what Wedge is for:
//   - TestSlowClients: slowloris, slow-body and slow-read attackers that
//     starve Gunicorn's sync workers when it faces them directly do not slow
//     a normal client down when Wedge stands in front.
//   - TestBodiesByteForByte: request and response bodies from 0 B to
//     200 MiB, fixed-length and chunked, cross Wedge unchanged, de-chunked
//     for the app, and no temp file is left behind.
//   - TestLimits: every limit and timeout answers its documented status,
//     logs it, never lets an ambiguous request through, and the server goes
//     on serving.
//   - TestCompress: the compress plugin in front of Gunicorn: gzip, br and
//     zstd decoded by curl and by Go's decoders give the app's bytes back
//     (bodies in memory and in temp files); 206, no-transform, already
//     encoded, small and unacceptable responses pass unchanged; HEAD and
//     304 carry the fields GET and 200 would.
//   - TestGoPlugin_*: filters written with proxy-wasm-go-sdk
//     (testdata/goplugins, built by the tests; `task plugins:test`) behave
//     as the SDK documents, in front of Go upstreams: header and body
//     rewrites, local responses, properties, shared data and queues across
//     VMs, metrics on /metrics, ticks, proxy_http_call, configuration and
//     reload, wedge.upstream routing, chains. They need no Gunicorn; they
//     skip when proxy-wasm-go-sdk cannot be downloaded.
//
// They skip when gunicorn is not installed (apt-get install gunicorn
// python3-flask) and fail instead under WEDGE_REQUIRE_ALL=1; the long ones
// skip under -short.
package e2e
