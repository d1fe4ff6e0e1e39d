package server

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/horust-go/horust/internal/control"
	"github.com/horust-go/horust/internal/control/client"
	"github.com/horust-go/horust/internal/status"
)

func TestReloadEndpoint(t *testing.T) {
	b := newMemBackend(svc("a", status.Running))
	ts := startServer(t, b, Options{})
	hc := unixHTTP(ts.path)

	r := call(t, hc, "POST", "/v1/reload?dry_run=1", "")
	var rep control.ReloadReply
	if r.code != 200 || json.Unmarshal([]byte(r.body), &rep) != nil || !rep.DryRun || rep.Generation != 1 ||
		len(rep.Services) != 1 || rep.Services[0].Name != "a" || rep.Services[0].Change != control.ChangeUnchanged {
		t.Fatalf("dry run: %d %s", r.code, r.body)
	}
	if r := call(t, hc, "POST", "/v1/reload", ""); r.code != 200 || json.Unmarshal([]byte(r.body), &rep) != nil || rep.DryRun || rep.Generation != 2 {
		t.Fatalf("reload: %d %s", r.code, r.body)
	}
	for _, bad := range []string{"/v1/reload?dry_run=yes", "/v1/reload?force=1"} {
		if r := call(t, hc, "POST", bad, ""); r.code != 400 {
			t.Errorf("%s: %d %s, want 400", bad, r.code, r.body)
		}
	}
	if r := call(t, hc, "GET", "/v1/reload", ""); r.code != 405 {
		t.Errorf("GET /v1/reload: %d, want 405", r.code)
	}
	var st control.ConfigStatus
	if r := call(t, hc, "GET", "/v1/config", ""); r.code != 200 || json.Unmarshal([]byte(r.body), &st) != nil || st.Generation != 2 || st.ReloadsOK != 1 {
		t.Fatalf("config: %d %s", r.code, r.body)
	}

	b.mu.Lock()
	b.reloadErr = &control.InvalidConfigError{Problems: []string{"/etc/horust/services/a.toml:3: restart.strategy: bad value"}}
	b.mu.Unlock()
	r = call(t, hc, "POST", "/v1/reload", "")
	var er control.ErrorReply
	if r.code != 422 || json.Unmarshal([]byte(r.body), &er) != nil || er.Code != "invalid_config" || len(er.Problems) != 1 {
		t.Fatalf("invalid: %d %s", r.code, r.body)
	}
	_, err := client.New(ts.path).Reload(context.Background(), false)
	var apiErr *client.APIError
	if !errors.Is(err, control.ErrInvalidConfig) || !errors.As(err, &apiErr) || apiErr.Problems[0] != er.Problems[0] {
		t.Fatalf("client error: %v", err)
	}

	mfs := scrape(t, ts)
	for _, c := range []struct {
		result string
		want   float64
	}{{"ok", 1}, {"invalid", 2}} {
		if v, ok := value(mfs, "horust_config_reloads_total", map[string]string{"result": c.result}); !ok || v != c.want {
			t.Errorf("horust_config_reloads_total{result=%q} = %v (%v), want %v", c.result, v, ok, c.want)
		}
	}
	if v, ok := value(mfs, "horust_config_last_reload_success_timestamp_seconds", nil); !ok || v != 1700000100 {
		t.Errorf("last success = %v (%v)", v, ok)
	}

	b.mu.Lock()
	b.reloadErr, b.shutting = nil, true
	b.mu.Unlock()
	if r := call(t, hc, "POST", "/v1/reload", ""); r.code != 409 {
		t.Fatalf("during shutdown: %d %s, want 409", r.code, r.body)
	}
}
