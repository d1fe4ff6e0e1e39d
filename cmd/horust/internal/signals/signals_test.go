package signals

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/cgroup"
)

func TestExecArgIsCgroups(t *testing.T) {
	if execArg != cgroup.ExecArg {
		t.Fatalf("execArg = %q, cgroup.ExecArg = %q: the re-exec step would subscribe to signals", execArg, cgroup.ExecArg)
	}
}

// The subscription made at init delivers each kind of signal to its own
// channel instead of its default action (TERM would end this test binary).
func TestSubscribedAtInit(t *testing.T) {
	Wait()
	for _, c := range []struct {
		sig syscall.Signal
		ch  chan os.Signal
	}{{syscall.SIGCHLD, Child}, {syscall.SIGTERM, Stop}, {syscall.SIGINT, Stop}, {syscall.SIGHUP, Other}, {syscall.SIGUSR1, Other}, {syscall.SIGWINCH, Other}} {
		if err := syscall.Kill(os.Getpid(), c.sig); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-c.ch:
			if got != c.sig {
				t.Errorf("sent %v, received %v", c.sig, got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%v never arrived on its channel", c.sig)
		}
	}
}
