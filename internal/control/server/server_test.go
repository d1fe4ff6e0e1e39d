package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/logs"
	"github.com/horust-go/horust/internal/status"
)

func TestAPIRequests(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		target   string
		body     string
		code     int
		contains []string // substrings of the reply body
		signals  []string // what the backend must have received
	}{
		{name: "list gives every service in order", method: "GET", target: "/v1/services", code: 200,
			contains: []string{`"name": "a.toml"`, `"name": "group/b.toml"`, `"name": ".."`}},
		{name: "get a known service", method: "GET", target: "/v1/services/a.toml", code: 200,
			contains: []string{`"state": "RUNNING"`, `"pid": 4242`}},
		{name: "get a name with an escaped slash", method: "GET", target: "/v1/services/group%2Fb.toml", code: 200,
			contains: []string{`"name": "group/b.toml"`, `"state": "FINISHED"`}},
		{name: "get a name made of dots", method: "GET", target: "/v1/services/%2E%2E", code: 200,
			contains: []string{`"name": ".."`}},
		{name: "get an unknown service is 404", method: "GET", target: "/v1/services/nope", code: 404,
			contains: []string{`"error": "no such service 'nope'"`, `"code": "not_found"`}},
		{name: "start a finished service", method: "POST", target: "/v1/services/group%2Fb.toml/start", code: 200,
			contains: []string{`"state": "STARTING"`, `"restarts": 1`}},
		{name: "stop a running service", method: "POST", target: "/v1/services/a.toml/stop", code: 200,
			contains: []string{`"state": "INKILLING"`}},
		{name: "restart a running service", method: "POST", target: "/v1/services/a.toml/restart", code: 200,
			contains: []string{`"state": "RUNNING"`, `"restarts": 1`}},
		{name: "restart an unknown service is 404", method: "POST", target: "/v1/services/nope/restart", code: 404},
		{name: "signal by name", method: "POST", target: "/v1/services/a.toml/signal", body: `{"signal":"HUP"}`,
			code: 200, contains: []string{`"signal": "HUP"`}, signals: []string{"a.toml:HUP"}},
		{name: "signal with the SIG prefix in lower case", method: "POST", target: "/v1/services/a.toml/signal",
			body: `{"signal":"sigusr1"}`, code: 200, signals: []string{"a.toml:USR1"}},
		{name: "signal by number", method: "POST", target: "/v1/services/a.toml/signal", body: `{"signal": 15}`,
			code: 200, contains: []string{`"signal": "TERM"`}, signals: []string{"a.toml:TERM"}},
		{name: "signal KILL is allowed", method: "POST", target: "/v1/services/a.toml/signal", body: `{"signal":"KILL"}`,
			code: 200, signals: []string{"a.toml:KILL"}},
		{name: "unknown signal is 400", method: "POST", target: "/v1/services/a.toml/signal", body: `{"signal":"FOO"}`,
			code: 400, contains: []string{`unknown signal`}},
		{name: "signal 0 is 400", method: "POST", target: "/v1/services/a.toml/signal", body: `{"signal":0}`, code: 400},
		{name: "malformed JSON is 400", method: "POST", target: "/v1/services/a.toml/signal", body: `{"signal":`, code: 400},
		{name: "unknown field is 400", method: "POST", target: "/v1/services/a.toml/signal", body: `{"sig":"HUP"}`, code: 400},
		{name: "missing body is 400", method: "POST", target: "/v1/services/a.toml/signal", code: 400,
			contains: []string{"empty request body"}},
		{name: "data after the object is 400", method: "POST", target: "/v1/services/a.toml/signal",
			body: `{"signal":"HUP"} {"signal":"HUP"}`, code: 400},
		{name: "signal to a service that is not running is 409", method: "POST", target: "/v1/services/group%2Fb.toml/signal",
			body: `{"signal":"HUP"}`, code: 409, contains: []string{`"code": "not_running"`}},
		{name: "signal to an unknown service is 404", method: "POST", target: "/v1/services/nope/signal",
			body: `{"signal":"HUP"}`, code: 404},
		{name: "oversized body is 413", method: "POST", target: "/v1/services/a.toml/signal",
			body: `{"signal":"` + strings.Repeat("H", 70<<10) + `"}`, code: 413},
		{name: "oversized body on an action is 413", method: "POST", target: "/v1/services/a.toml/restart",
			body: strings.Repeat("x", 65<<10), code: 413},
		{name: "wrong method on the list is 405", method: "DELETE", target: "/v1/services", code: 405,
			contains: []string{`"code": "method_not_allowed"`}},
		{name: "GET on an action is 405", method: "GET", target: "/v1/services/a.toml/restart", code: 405},
		{name: "GET on shutdown is 405", method: "GET", target: "/v1/shutdown", code: 405},
		{name: "unknown path is 404", method: "GET", target: "/v2/services", code: 404,
			contains: []string{`"code": "no_endpoint"`}},
		{name: "unknown action is 404", method: "POST", target: "/v1/services/a.toml/explode", code: 404},
		{name: "shutdown is accepted", method: "POST", target: "/v1/shutdown", code: 202,
			contains: []string{`"status": "shutting down"`}},
		{name: "wait without a service is 400", method: "GET", target: "/v1/wait?for=running", code: 400},
		{name: "wait for something else is 400", method: "GET", target: "/v1/wait?service=a.toml&for=dead", code: 400},
		{name: "wait with a bad timeout is 400", method: "GET", target: "/v1/wait?service=a.toml&timeout=soon", code: 400},
		{name: "wait with a negative timeout is 400", method: "GET", target: "/v1/wait?service=a.toml&timeout=-1s", code: 400},
		{name: "wait with an unknown parameter is 400", method: "GET", target: "/v1/wait?services=a.toml", code: 400},
		{name: "wait for a running service answers at once", method: "GET", target: "/v1/wait?service=a.toml", code: 200,
			contains: []string{`"name": "a.toml"`}},
		{name: "wait for an unknown service is 404", method: "GET", target: "/v1/wait?service=a.toml&service=nope", code: 404,
			contains: []string{`no such service 'nope'`}},
		{name: "wait for a failed service to run is 409", method: "GET", target: "/v1/wait?service=c.toml", code: 409,
			contains: []string{`"code": "unreachable"`, `FINISHEDFAILED`}},
		{name: "healthz on the socket", method: "GET", target: "/healthz", code: 200, contains: []string{`"status": "ok"`}},
		{name: "readyz on the socket", method: "GET", target: "/readyz", code: 503, contains: []string{`"not_ready"`}},
		{name: "metrics on the socket", method: "GET", target: "/metrics", code: 200,
			contains: []string{`horust_service_state{service="a.toml",state="RUNNING"} 1`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newMemBackend(svc("a.toml", status.Running), svc("group/b.toml", status.Finished), svc("..", status.Initial),
				svc("c.toml", status.FinishedFailed))
			ts := startServer(t, b, Options{})
			r := call(t, unixHTTP(ts.path), tc.method, tc.target, tc.body)
			if r.code != tc.code {
				t.Fatalf("%s %s: got %d, want %d; body:\n%s", tc.method, tc.target, r.code, tc.code, r.body)
			}
			if ct := r.header.Get("Content-Type"); tc.target != "/metrics" && ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if r.code >= 400 {
				var e control.ErrorReply
				if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Error == "" {
					if tc.target != "/readyz" {
						t.Errorf("error body is not {\"error\":...}: %v\n%s", err, r.body)
					}
				}
			}
			for _, s := range tc.contains {
				if !strings.Contains(r.body, s) {
					t.Errorf("body lacks %q:\n%s", s, r.body)
				}
			}
			signals, _, _ := b.snapshot()
			if !slices.Equal(signals, tc.signals) {
				t.Errorf("backend got signals %q, want %q", signals, tc.signals)
			}
		})
	}
}

func TestMethodNotAllowedNamesTheAllowedMethods(t *testing.T) {
	ts := startServer(t, newMemBackend(svc("a", status.Running)), Options{})
	r := call(t, unixHTTP(ts.path), "PUT", "/v1/services/a", "")
	if r.code != 405 || !strings.Contains(r.header.Get("Allow"), "GET") {
		t.Fatalf("got %d with Allow %q, want 405 with GET allowed", r.code, r.header.Get("Allow"))
	}
}

func TestChunkedOversizedBodyIs413(t *testing.T) {
	ts := startServer(t, newMemBackend(svc("a", status.Running)), Options{MaxBodyBytes: 1024})
	// An io.Reader of unknown length makes the client send it chunked, so
	// only reading tells the server how big it is.
	body := io.MultiReader(strings.NewReader(`{"signal":"`), strings.NewReader(strings.Repeat("H", 4096)), strings.NewReader(`"}`))
	req, err := http.NewRequest("POST", "http://horust/v1/services/a/signal", body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := unixHTTP(ts.path).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != 413 {
		t.Fatalf("got %d, want 413", resp.StatusCode)
	}
}

func TestShutdownTwiceIsAccepted(t *testing.T) {
	b := newMemBackend(svc("a", status.Running))
	ts := startServer(t, b, Options{})
	hc := unixHTTP(ts.path)
	for i := range 2 {
		if r := call(t, hc, "POST", "/v1/shutdown", ""); r.code != 202 {
			t.Fatalf("shutdown %d: got %d: %s", i+1, r.code, r.body)
		}
	}
	if r := call(t, hc, "POST", "/v1/services/a/restart", ""); r.code != 409 || !strings.Contains(r.body, "shutting_down") {
		t.Fatalf("restart while shutting down: got %d: %s", r.code, r.body)
	}
	if _, n, _ := b.snapshot(); n != 2 {
		t.Fatalf("backend saw %d shutdowns, want 2", n)
	}
}

func TestWaitReturnsWhenTheServiceRuns(t *testing.T) {
	b := newMemBackend(svc("a", status.Starting), svc("b", status.Initial))
	ts := startServer(t, b, Options{})
	got := make(chan reply, 1)
	go func() {
		r, err := callErr(unixHTTP(ts.path), "GET", "/v1/wait?service=a&service=b&for=running&timeout=20s", "")
		if err != nil {
			r.body = err.Error()
		}
		got <- r
	}()
	waitFor(t, "the backend to get the wait", func() bool { _, _, w := b.snapshot(); return w == 1 })
	b.setState("a", status.Running)
	select {
	case r := <-got:
		t.Fatalf("wait answered with only one service running: %d %s", r.code, r.body)
	default:
	}
	b.setState("b", status.Finished)
	select {
	case r := <-got:
		if r.code != 200 || !strings.Contains(r.body, `"state": "FINISHED"`) {
			t.Fatalf("got %d: %s", r.code, r.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wait did not answer after both services met the condition")
	}
}

func TestWaitTimesOutWithTheLateServices(t *testing.T) {
	b := newMemBackend(svc("a", status.Running), svc("b", status.Starting))
	ts := startServer(t, b, Options{})
	start := time.Now()
	r := call(t, unixHTTP(ts.path), "GET", "/v1/wait?service=a&service=b&timeout=300ms", "")
	if r.code != 408 {
		t.Fatalf("got %d, want 408: %s", r.code, r.body)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("answered after %s, before the 300ms timeout", d)
	}
	var e control.ErrorReply
	if err := json.Unmarshal([]byte(r.body), &e); err != nil {
		t.Fatal(err)
	}
	want := "timed out after 300ms waiting for 'b' (STARTING) to be running"
	if e.Error != want || e.Code != "timeout" || len(e.Services) != 1 || e.Services[0].Name != "b" {
		t.Fatalf("got %+v, want error %q with only b listed", e, want)
	}
}

func TestWaitLongerThanTheServerTimeouts(t *testing.T) {
	// The server's read and write deadlines are a few seconds with these
	// options; a wait must outlive them.
	b := newMemBackend(svc("a", status.Starting))
	ts := startServer(t, b, Options{CallTimeout: 50 * time.Millisecond, ReadHeaderTimeout: 50 * time.Millisecond})
	got := make(chan reply, 1)
	go func() {
		r, err := callErr(unixHTTP(ts.path), "GET", "/v1/wait?service=a&timeout=30s", "")
		if err != nil {
			r.body = err.Error()
		}
		got <- r
	}()
	waitFor(t, "the backend to get the wait", func() bool { _, _, w := b.snapshot(); return w == 1 })
	// The server's read deadline is 2*50ms + 2*50ms here: go well past it.
	select {
	case r := <-got:
		t.Fatalf("wait ended early: %d %s", r.code, r.body)
	case <-time.After(time.Second):
	}
	b.setState("a", status.Running)
	select {
	case r := <-got:
		if r.code != 200 {
			t.Fatalf("got %d: %s", r.code, r.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
	}
}

func TestWaitEndsWhenTheClientLeaves(t *testing.T) {
	b := newMemBackend(svc("a", status.Starting))
	ts := startServer(t, b, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", "http://horust/v1/wait?service=a&timeout=1h", nil)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		resp, err := unixHTTP(ts.path).Do(req)
		if err == nil {
			_ = resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, "the backend to get the wait", func() bool { _, _, w := b.snapshot(); return w == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v", err)
	}
	waitFor(t, "the backend's Wait to return", func() bool { _, _, w := b.snapshot(); return w == 0 })
}

func TestSilentClientDoesNotBlockOthers(t *testing.T) {
	b := newMemBackend(svc("a", status.Running), svc("b", status.Starting))
	// With a long header timeout, a server that served clients one by one
	// would keep the others waiting for 30 s.
	ts := startServer(t, b, Options{ReadHeaderTimeout: 30 * time.Second})
	silent, err := net.Dial("unix", ts.path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = silent.Close() }()
	half, err := net.Dial("unix", ts.path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = half.Close() }()
	if _, err := io.WriteString(half, "GET /v1/services HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}

	// 200 clients at once while the state keeps changing.
	stopFlip := make(chan struct{})
	flipped := make(chan struct{})
	go func() {
		defer close(flipped)
		for i := 0; ; i++ {
			select {
			case <-stopFlip:
				return
			default:
			}
			_ = b.update("b", func(s *status.ServiceStatus) { s.Restarts++; s.State = status.State(i % int(status.NumStates)) })
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	hc := unixHTTP(ts.path)
	start := time.Now()
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			target := "/v1/services"
			if i%2 == 1 {
				target = "/v1/services/b"
			}
			resp, err := hc.Get("http://horust" + target)
			if err != nil {
				errs <- err
				return
			}
			defer func() { _ = resp.Body.Close() }()
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				errs <- err
				return
			}
			if resp.StatusCode != 200 {
				errs <- fmt.Errorf("%s: %d", target, resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	close(stopFlip)
	<-flipped
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("200 clients took %s: the silent ones held them up", d)
	}
}

func TestSilentClientsAreDisconnected(t *testing.T) {
	ts := startServer(t, newMemBackend(svc("a", status.Running)), Options{ReadHeaderTimeout: 300 * time.Millisecond})
	silent, err := net.Dial("unix", ts.path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = silent.Close() }()
	half, err := net.Dial("unix", ts.path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = half.Close() }()
	if _, err := io.WriteString(half, "GET /v1/services HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]net.Conn{"silent": silent, "half a request": half} {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		data, err := io.ReadAll(c)
		if err != nil {
			t.Errorf("%s client: not disconnected: %v", name, err)
		}
		if strings.Contains(string(data), "200 OK") {
			t.Errorf("%s client got an answer: %q", name, data)
		}
	}
}

func TestBackendThatDoesNotAnswerGives504(t *testing.T) {
	b := newMemBackend(svc("a", status.Running))
	block := make(chan struct{})
	defer close(block)
	b.setBlock(block)
	ts := startServer(t, b, Options{CallTimeout: 200 * time.Millisecond})
	hc := unixHTTP(ts.path)
	r := call(t, hc, "GET", "/v1/services/a", "")
	if r.code != 504 || !strings.Contains(r.body, "did not answer within 200ms") {
		t.Fatalf("got %d: %s", r.code, r.body)
	}
	start := time.Now()
	if r := call(t, hc, "GET", "/healthz", ""); r.code != 503 {
		t.Fatalf("healthz with a stuck loop: got %d: %s", r.code, r.body)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("healthz took %s, want about 1s", d)
	}
}

func TestServerStopRemovesSocketAndAnswersRequestsInFlight(t *testing.T) {
	b := newMemBackend(svc("a", status.Running))
	block := make(chan struct{})
	defer close(block)
	ts := startServer(t, b, Options{})
	hc := unixHTTP(ts.path)
	if r := call(t, hc, "GET", "/v1/services", ""); r.code != 200 {
		t.Fatalf("got %d", r.code)
	}
	b.setBlock(block)
	got := make(chan reply, 1)
	go func() {
		r, err := callErr(hc, "GET", "/v1/services/a", "")
		if err != nil {
			r.body = err.Error()
		}
		got <- r
	}()
	waitFor(t, "the request to reach the backend", func() bool { return b.blockedCalls() == 1 })
	ts.stop(t)
	select {
	case r := <-got:
		if r.code != 503 && r.code != 504 {
			t.Fatalf("request in flight: got %d: %s", r.code, r.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("request in flight got no answer")
	}
	if _, err := os.Lstat(ts.path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket still there after Serve returned: %v", err)
	}
}

func TestReadyzFlipsWhenServicesRun(t *testing.T) {
	// A job is up only once it has finished, as for start-after.
	job := svc("job", status.Running)
	job.Oneshot = true
	b := newMemBackend(svc("a", status.Running), svc("b", status.Starting), svc("c", status.Finished), job)
	ts := startServer(t, b, Options{})
	hc := unixHTTP(ts.path)
	r := call(t, hc, "GET", "/readyz", "")
	var rr control.ReadyReply
	if err := json.Unmarshal([]byte(r.body), &rr); err != nil {
		t.Fatal(err)
	}
	if r.code != 503 || rr.Ready || len(rr.NotReady) != 2 || rr.NotReady[0].Name != "b" || rr.NotReady[0].State != status.Starting ||
		rr.NotReady[1].Name != "job" || !rr.NotReady[1].Oneshot || !strings.Contains(rr.Error, "'job' (RUNNING)") {
		t.Fatalf("before: got %d %+v", r.code, rr)
	}
	b.setState("b", status.Running)
	b.setState("job", status.Finished)
	if r := call(t, hc, "GET", "/readyz", ""); r.code != 200 || !strings.Contains(r.body, `"ready": true`) {
		t.Fatalf("after: got %d: %s", r.code, r.body)
	}
	b.setState("a", status.Failed)
	if r := call(t, hc, "GET", "/readyz", ""); r.code != 503 || !strings.Contains(r.body, `'a' (FAILED)`) {
		t.Fatalf("after a failed: got %d: %s", r.code, r.body)
	}
}

func TestProbeListenerIsReadOnly(t *testing.T) {
	b := newMemBackend(svc("a", status.Running))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	openLogs := func(context.Context, string, string, func([]byte) error) (*logs.Reader, error) {
		t.Error("the probe listener opened a service's output")
		return nil, control.ErrNotFound
	}
	go func() { done <- ServeProbes(ctx, l, Options{Backend: b, Version: "1.2.3", Logs: openLogs}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	hc := &http.Client{Timeout: 10 * time.Second}
	base := "http://" + l.Addr().String()
	tests := []struct {
		method, path string
		code         int
	}{
		{"GET", "/healthz", 200},
		{"HEAD", "/healthz", 200},
		{"GET", "/readyz", 200},
		{"GET", "/metrics", 200},
		{"POST", "/healthz", 405},
		{"DELETE", "/metrics", 405},
		{"GET", "/v1/services", 404},
		{"POST", "/v1/shutdown", 404},
		{"POST", "/v1/services/a/stop", 404},
		{"POST", "/v1/services/a/signal", 404},
		{"GET", "/v1/wait?service=a", 404},
		{"POST", "/v1/reload", 404},
		{"POST", "/v1/reload?dry_run=1", 404},
		{"GET", "/v1/config", 404},
		{"GET", "/v1/services/a/logs", 404},
	}
	for _, tc := range tests {
		req, err := http.NewRequest(tc.method, base+tc.path, strings.NewReader(`{"signal":"KILL"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s %s: got %d, want %d", tc.method, tc.path, resp.StatusCode, tc.code)
		}
	}
	st, _ := b.Get(context.Background(), "a")
	signals, shutdowns, _ := b.snapshot()
	if cfg, _ := b.Config(context.Background()); cfg.Generation != 1 || b.dryRuns != 0 {
		t.Fatalf("the probe listener reloaded: %+v, %d dry runs", cfg, b.dryRuns)
	}
	if st.State != status.Running || st.Restarts != 0 || len(signals) != 0 || shutdowns != 0 {
		t.Fatalf("the probe listener changed state: %+v, signals %q, shutdowns %d", st, signals, shutdowns)
	}
	resp, err := hc.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var h control.HealthReply
	if err := json.NewDecoder(bufio.NewReader(resp.Body)).Decode(&h); err != nil || h.Version != "1.2.3" || h.Services != 1 {
		t.Fatalf("healthz body: %+v, %v", h, err)
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
