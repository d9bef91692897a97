// Package hello is the one handler that every benchmark scenario serves, so
// that scenarios differ only in what stands between wrk and it.
package hello

import "net/http"

// Body is what every scenario answers; natsload replies with it too so that
// raw NATS moves the same bytes as the HTTP paths do.
var Body = []byte("hello, world\n")

// Pattern is the route the metro worker registers and the path wrk requests
// in every scenario.
const Pattern = "GET /hello"

// Path is the request path of Pattern.
const Path = "/hello"

// ServeHTTP answers Body as text/plain.
func ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	// Setting the type keeps net/http from sniffing the body on every request.
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	_, _ = w.Write(Body)
}
