//go:build linux

package e2e

// End-to-end test of <path>.current (docs/logging.md "The current chunk"):
// after rotations and restarts the link points at the newest chunk, and a
// reader following the name, as tail -F does, sees every line.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/horust-go/horust/internal/status"
)

func init() {
	// logs-paced RUNS N: the run number r is the size of the file RUNS
	// (which grows by a byte per run); write N lines of tag "run<r>", one
	// write each, a millisecond apart, then exit 1 (0 from the third run).
	registerRole("logs-paced", func(args []string) int {
		f, err := os.OpenFile(logsArg(args, 0), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return 3
		}
		st, _ := f.Stat()
		r := st.Size()
		f.Write([]byte{'x'})
		f.Close()
		n, _ := strconv.Atoi(logsArg(args, 1))
		for seq := range n {
			if _, err := os.Stdout.Write([]byte(logsLine("run"+strconv.FormatInt(r, 10), seq, logsShort+20) + "\n")); err != nil {
				return 3
			}
			time.Sleep(time.Millisecond)
		}
		if r < 2 {
			return 1
		}
		return 0
	})
}

// followCurrent reads path's <path>.current the way tail -F follows a name:
// to the end of the file it has open, then, when the link names another
// chunk, the rest of the old file and on into the new one. Cuts may come
// faster than it looks (docs/logging.md: tail -F then skips the chunks in
// between), so it reads those in between in chunk order, which keeps the
// test independent of the machine's load. It returns what it read once done
// is closed and it has read to the end of the newest chunk.
func followCurrent(t *testing.T, link string, done <-chan struct{}) <-chan string {
	out := make(chan string, 1)
	go func() {
		var text strings.Builder
		var f *os.File
		var name string
		defer func() {
			if f != nil {
				f.Close()
			}
			out <- text.String()
		}()
		finished := false
		for {
			if f != nil {
				b, err := io.ReadAll(f)
				if err != nil {
					t.Errorf("reading %s: %v", name, err)
					return
				}
				text.Write(b)
			}
			target, err := os.Readlink(link)
			switch {
			case errors.Is(err, os.ErrNotExist):
				// Not made yet.
			case err != nil:
				t.Errorf("reading the link: %v", err)
				return
			case target != name:
				if f != nil {
					// The old chunk was complete before the link moved:
					// drain it, and the chunks cut since, then switch.
					b, _ := io.ReadAll(f)
					text.Write(b)
					f.Close()
					for k := chunkIndex(name) + 1; k < chunkIndex(target); k++ {
						b, err := os.ReadFile(filepath.Join(filepath.Dir(link), fmt.Sprintf("%s.%d", filepath.Base(strings.TrimSuffix(link, ".current")), k)))
						if err != nil {
							t.Errorf("reading a chunk cut between two looks: %v", err)
							return
						}
						text.Write(b)
					}
				}
				name = target
				if f, err = os.Open(filepath.Join(filepath.Dir(link), target)); err != nil {
					t.Errorf("opening the chunk the link names: %v", err)
					return
				}
				continue
			}
			if finished {
				return
			}
			select {
			case <-done:
				finished = true // one more pass reads what was written last
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return out
}

// chunkIndex is k of a chunk name <path>.<k>, 0 for <path>.
func chunkIndex(name string) int {
	k, _ := strconv.Atoi(name[strings.LastIndexByte(name, '.')+1:])
	return k
}

// TestLogsCurrentLink: a service that restarts twice writes three runs of
// 200 lines into 300-byte chunks. A reader following out.log.current from
// before the first start reads every line of every run in order; at the end
// the link names the newest chunk.
func TestLogsCurrentLink(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.log")
	const n = 200
	done := make(chan struct{})
	read := followCurrent(t, out+".current", done)
	h := startHorust(t, runOpts{files: map[string]string{
		"logs-cur.toml": logsSvc(role("logs-paced", filepath.Join(t.TempDir(), "runs"), strconv.Itoa(n)),
			fmt.Sprintf("stdout = %q", out), `stdout-rotate-size = "300"`,
			"[restart]", `strategy = "on-failure"`, `attempts = 2`),
		"logs-cur-keep.toml": logsSvc(role("sleep")),
	}})
	st := logsWaitFinished(t, h, "logs-cur.toml")
	if st[0].State != status.Finished || st[0].Restarts != 2 {
		t.Fatalf("want FINISHED after two restarts: %+v", st[0])
	}
	close(done)
	text := <-read
	if err := logsVerify(text, map[string]string{"run0": "", "run1": "", "run2": ""}, n, logsShort+20); err != nil {
		t.Fatalf("following out.log.current: %v", err)
	}
	files, _ := filepath.Glob(out + "*")
	files = logsSortChunks(files)
	if len(files) < 10 {
		t.Fatalf("only %d chunks: %v", len(files), logsDir(t, dir))
	}
	newest := filepath.Base(files[len(files)-1])
	if target, err := os.Readlink(out + ".current"); err != nil || target != newest {
		t.Fatalf("out.log.current -> %q (%v), want the newest chunk %s: %v", target, err, newest, logsDir(t, dir))
	}
}
