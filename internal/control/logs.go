package control

import "strconv"

// LogsQuery is what a request for a service's output asks for
// (GET /v1/services/{name}/logs).
type LogsQuery struct {
	Lines  int    // the last Lines lines first (0: none)
	Follow bool   // then what is written, until the client goes away
	Stream string // "stdout" (default) or "stderr"
}

// Encode is q as the request's query string.
func (q LogsQuery) Encode() string {
	v := "lines=" + strconv.Itoa(q.Lines)
	if q.Follow {
		v += "&follow=1"
	}
	if q.Stream != "" {
		v += "&stream=" + q.Stream
	}
	return v
}
