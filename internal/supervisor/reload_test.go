package supervisor

import (
	"context"
	"errors"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/horust-go/horust/internal/config"
	"github.com/horust-go/horust/internal/control"
)

// configFiles is what a test's Options.Load returns: the configuration "on
// disk", changed by the test.
type configFiles struct {
	mu    sync.Mutex
	cfg   Configuration
	err   error
	loads int
}

func (c *configFiles) set(err error, svcs ...*config.Service) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg, c.err = Configuration{Services: svcs}, err
}

func (c *configFiles) load() (Configuration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loads++
	return c.cfg, c.err
}

func (c *configFiles) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loads
}

// reload asks for a reload and lets the loop carry out what it can now.
func (h *harness) reload(dryRun bool) (control.ReloadReply, error) {
	h.t.Helper()
	rep, err := h.loop.Reload(context.Background(), dryRun)
	synctest.Wait()
	return rep, err
}

func (h *harness) pid(name string) int {
	h.t.Helper()
	st, err := h.loop.Get(context.Background(), name)
	if err != nil {
		h.t.Fatalf("Get(%q): %v", name, err)
	}
	return st.PID
}

func (h *harness) names() []string {
	h.t.Helper()
	list, err := h.loop.List(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, st := range list {
		out = append(out, st.Name)
	}
	return out
}

func count(events []string, e string) int {
	n := 0
	for _, x := range events {
		if x == e {
			n++
		}
	}
	return n
}

func plans(rep control.ReloadReply) map[string]string {
	out := map[string]string{}
	for _, p := range rep.Services {
		out[p.Name] = p.Change
	}
	return out
}

func TestReloadAddsRemovesAndChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		files := &configFiles{}
		always := func(s *config.Service) { s.Restart.Strategy = config.RestartAlways }
		h := start(t, f, Options{Load: files.load}, svc("keep"), svc("change"), svc("drop"))
		keepPID := h.pid("keep")

		files.set(nil, svc("keep"), svc("change", always), svc("new", func(s *config.Service) { s.StartAfter = []string{"keep"} }))
		dry, err := h.reload(true)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"keep": "unchanged", "change": "changed", "drop": "removed", "new": "added"}
		if got := plans(dry); !maps(got, want) || !dry.DryRun || dry.Generation != 1 {
			t.Fatalf("dry run plan %+v, want %v", dry, want)
		}
		if ev := f.events(); len(ev) != 3 {
			t.Fatalf("a dry run did something: %q", ev)
		}

		rep, err := h.reload(false)
		if err != nil {
			t.Fatal(err)
		}
		if got := plans(rep); !maps(got, want) || rep.Generation != 2 {
			t.Fatalf("plan %+v", rep)
		}
		for _, p := range rep.Services {
			if p.Name == "change" && !slices.Equal(p.Keys, []string{"restart.strategy"}) {
				t.Fatalf("keys of change: %q", p.Keys)
			}
		}
		ev := f.events()
		for e, n := range map[string]int{"start keep": 1, "signal keep TERM": 0, "signal change TERM": 1, "start change": 2, "signal drop TERM": 1, "start new": 1, "release change": 1} {
			if count(ev, e) != n {
				t.Errorf("%q %d times, want %d: %q", e, count(ev, e), n, ev)
			}
		}
		if h.pid("keep") != keepPID {
			t.Fatalf("the unchanged service's pid changed")
		}
		if got := h.names(); !slices.Equal(got, []string{"keep", "change", "new"}) {
			t.Fatalf("services after the reload: %q", got)
		}
		if _, err := h.loop.Get(context.Background(), "drop"); !errors.Is(err, control.ErrNotFound) {
			t.Fatalf("the removed service is still known: %v", err)
		}
		// The changed service runs with its new definition: always.
		p := f.lastProc("change")
		p.exit(exitStatus(0))
		synctest.Wait()
		if count(f.events(), "start change") != 3 {
			t.Fatalf("the changed service does not restart always: %q", f.events())
		}
		cs, _ := h.loop.Config(context.Background())
		if cs.Generation != 2 || cs.ReloadsOK != 1 || cs.LastReload == nil || cs.LastReload.Result != "ok" {
			t.Fatalf("config status %+v", cs)
		}
		h.signal(syscall.SIGTERM)
		h.waitExit()
	})
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestReloadInvalidChangesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		files := &configFiles{}
		h := start(t, f, Options{Load: files.load}, svc("a"))
		files.set(config.Problems{{File: "/s/a.toml", Line: 3, Key: "restart.strategy", Msg: "bad"}})
		_, err := h.reload(false)
		var ic *control.InvalidConfigError
		if !errors.As(err, &ic) || len(ic.Problems) != 1 || ic.Problems[0] != "/s/a.toml:3: restart.strategy: bad" {
			t.Fatalf("err %v", err)
		}
		if ev := f.events(); !slices.Equal(ev, []string{"start a"}) {
			t.Fatalf("an invalid reload did something: %q", ev)
		}
		cs, _ := h.loop.Config(context.Background())
		if cs.Generation != 1 || cs.ReloadsInvalid != 1 || cs.LastReload.Result != "invalid" || len(cs.LastReload.Problems) != 1 {
			t.Fatalf("config status %+v", cs)
		}
		h.signal(syscall.SIGTERM)
		h.waitExit()
	})
}

func TestReloadRemovesInShutdownAfterOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		files := &configFiles{}
		f.behave["db"] = trapTerm(2*time.Second, 0)
		h := start(t, f, Options{Load: files.load}, svc("keep"), svc("db"),
			svc("app", func(s *config.Service) { s.ShutdownAfter = []string{"db"} }))
		files.set(nil, svc("keep"))
		if _, err := h.reload(false); err != nil {
			t.Fatal(err)
		}
		ev := f.events()
		if !slices.Contains(ev, "signal db TERM") || slices.Contains(ev, "signal app TERM") {
			t.Fatalf("app must wait for db: %q", ev)
		}
		h.advance(2 * time.Second)
		if !slices.Contains(f.events(), "signal app TERM") {
			t.Fatalf("app not stopped once db was: %q", f.events())
		}
		if got := h.names(); !slices.Equal(got, []string{"keep"}) {
			t.Fatalf("services: %q", got)
		}
		// The slots are reused: adding two services takes no new one.
		files.set(nil, svc("keep"), svc("x"), svc("y"))
		if _, err := h.reload(false); err != nil {
			t.Fatal(err)
		}
		if n := len(h.loop.svcs); n != 3 {
			t.Fatalf("%d slots, want 3", n)
		}
		h.signal(syscall.SIGTERM)
		h.waitExit()
	})
}

func TestReloadDuringACrashLoopKeepsIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		files := &configFiles{}
		crash := func(s *config.Service) {
			s.Restart.Strategy = config.RestartAlways
			s.Restart.MinUptime = 10 * time.Second
		}
		f.behave["c"] = exitAfter(10*time.Millisecond, 1)
		h := start(t, f, Options{Load: files.load}, svc("c", crash))
		h.advance(time.Second)
		before, _ := h.loop.Get(context.Background(), "c")
		if before.QuickExits < 3 {
			t.Fatalf("not in a crash loop: %+v", before)
		}
		files.set(nil, svc("c", crash))
		if _, err := h.reload(false); err != nil {
			t.Fatal(err)
		}
		after, _ := h.loop.Get(context.Background(), "c")
		if after.Restarts != before.Restarts || after.QuickExits != before.QuickExits {
			t.Fatalf("an unchanged service lost its counters: %+v, before %+v", after, before)
		}
		// Changed while it waits out the delay: it starts over at once,
		// with a fresh record.
		files.set(nil, svc("c", crash, func(s *config.Service) { s.Command = "/bin/false" }))
		starts := count(f.events(), "start c")
		if _, err := h.reload(false); err != nil {
			t.Fatal(err)
		}
		st, _ := h.loop.Get(context.Background(), "c")
		if count(f.events(), "start c") != starts+1 || st.Restarts != 0 {
			t.Fatalf("the changed service did not start over: %+v, %q", st, f.events())
		}
		h.signal(syscall.SIGTERM)
		h.waitExit()
	})
}

func TestReloadDuringShutdownIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		files := &configFiles{}
		f.behave["a"] = ignoreTerm
		h := start(t, f, Options{Load: files.load}, svc("a"))
		files.set(nil, svc("a"), svc("b"))
		h.signal(syscall.SIGTERM)
		if _, err := h.reload(false); !errors.Is(err, control.ErrShuttingDown) {
			t.Fatalf("err %v, want ErrShuttingDown", err)
		}
		if slices.Contains(f.events(), "start b") {
			t.Fatal("a reload during shutdown started a service")
		}
		h.advance(5 * time.Second)
		h.waitExit()
	})
}

func TestHangup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		files := &configFiles{}
		files.set(nil, svc("a"), svc("b"))
		h := start(t, f, Options{Load: files.load, Forward: []os.Signal{syscall.SIGHUP}}, svc("a"))
		h.signal(syscall.SIGHUP)
		ev := f.events()
		if slices.Contains(ev, "signal a HUP") || !slices.Contains(ev, "start b") || files.count() != 1 {
			t.Fatalf("SIGHUP in service mode must reload, not be forwarded: %q", ev)
		}
		h.signal(syscall.SIGTERM)
		h.waitExit()
	})
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		h := start(t, f, Options{OneShot: true, Forward: []os.Signal{syscall.SIGHUP}}, svc("cmd"))
		h.signal(syscall.SIGHUP)
		if !slices.Contains(f.events(), "signal cmd HUP") {
			t.Fatalf("SIGHUP in one-shot mode is forwarded: %q", f.events())
		}
		if _, err := h.loop.Reload(context.Background(), false); !errors.Is(err, control.ErrNoConfig) {
			t.Fatalf("reload in one-shot mode: %v", err)
		}
		h.signal(syscall.SIGTERM)
		h.waitExit()
	})
}

func TestReloadAnswersWaitsOnRemovedServices(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeOS(t)
		files := &configFiles{}
		h := start(t, f, Options{Load: files.load}, svc("a"), svc("b"))
		errc := make(chan error, 1)
		go func() {
			_, err := h.loop.Wait(context.Background(), []string{"b"}, control.WaitFinished)
			errc <- err
		}()
		synctest.Wait()
		files.set(nil, svc("a"))
		if _, err := h.reload(false); err != nil {
			t.Fatal(err)
		}
		// b stopped cleanly: the wait for finished is met as it stops,
		// or answered as removed; it never hangs.
		select {
		case err := <-errc:
			if err != nil && !errors.Is(err, control.ErrUnreachable) {
				t.Fatalf("wait: %v", err)
			}
		default:
			t.Fatal("the wait on a removed service was not answered")
		}
		h.signal(syscall.SIGTERM)
		h.waitExit()
	})
}
