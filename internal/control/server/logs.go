package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/logs"
)

// LogsFunc opens one output stream ("stdout" or "stderr") of the named
// service for the logs endpoint; the Reader sends what it reads with emit.
// It answers an unknown name with an error wrapping control.ErrNotFound, and output
// that horust never sees with one wrapping logs.ErrNotKept. ctx bounds the
// question to the supervisor, not the reading.
type LogsFunc func(ctx context.Context, name, stream string, emit func([]byte) error) (*logs.Reader, error)

// The bounds of a logs request.
const (
	defaultLogLines = 100
	maxLogLines     = 1_000_000
)

// parseLogsQuery reads the parameters of GET /v1/services/{name}/logs.
func parseLogsQuery(r *request) (control.LogsQuery, error) {
	q := control.LogsQuery{Lines: defaultLogLines, Stream: "stdout"}
	for k, vs := range r.URL.Query() {
		v := vs[len(vs)-1]
		switch k {
		case "lines":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > maxLogLines {
				return q, fmt.Errorf("bad lines=%q: a number from 0 to %d", v, maxLogLines)
			}
			q.Lines = n
		case "follow":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return q, fmt.Errorf("bad follow=%q: 1 or 0", v)
			}
			q.Follow = b
		case "stream":
			if v != "stdout" && v != "stderr" {
				return q, fmt.Errorf("bad stream=%q: stdout or stderr", v)
			}
			q.Stream = v
		default:
			return q, fmt.Errorf("unknown parameter %q: logs takes lines, follow and stream", k)
		}
	}
	return q, nil
}

// logs serves GET /v1/services/{name}/logs: the last lines of a service's
// output, then with follow=1 every new piece, as a chunked text/plain body,
// until the client goes away or horust stops. The loop is asked only where
// the output goes; reading and waiting happen here, in the handler's
// goroutine.
func (s *server) logs(w *response, r *request) {
	if s.o.Logs == nil {
		writeError(w, 404, "no_endpoint", "this horust serves no logs", nil)
		return
	}
	q, err := parseLogsQuery(r)
	if err != nil {
		writeError(w, 400, "bad_request", err.Error(), nil)
		return
	}
	ctx, cancel := s.callCtx(r)
	rd, err := s.o.Logs(ctx, r.PathValue("name"), q.Stream, w.writePiece)
	cancel()
	switch {
	case errors.Is(err, logs.ErrNotKept):
		writeError(w, 409, "not_kept", err.Error(), nil)
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	defer rd.Close()
	if !w.startStream("text/plain; charset=utf-8") {
		return
	}
	if q.Follow {
		// A follow lasts as long as the client wants; each piece still has
		// streamWriteTimeout to go out.
		w.extendDeadline(time.Time{})
	}
	err = rd.Tail(q.Lines)
	if err == nil && q.Follow {
		err = rd.Follow(r.Context())
	}
	if err != nil && !w.broken {
		s.o.Log.Warn("logs request: cannot read the output", "service", r.PathValue("name"), "error", err)
		_ = w.writePiece([]byte("[horust: " + err.Error() + "]\n"))
	}
}
