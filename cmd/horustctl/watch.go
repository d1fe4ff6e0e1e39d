package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gdamore/tcell/v2"
	"github.com/horust-go/horust/internal/control/client"
	"github.com/horust-go/horust/internal/status"
	"golang.org/x/term"
)

// watchInterval is how often the live view asks horust for the table.
const watchInterval = time.Second

// watchCallTimeout bounds one request of the live view; past it the view
// says horust does not answer, and asks again at the next tick.
const watchCallTimeout = 5 * time.Second

// snapshot is one answer of horust to the live view.
type snapshot struct {
	at   time.Time
	list []status.ServiceStatus
	err  error
}

// watch shows the table of the services (only those of names, when some
// are given) every watchInterval: redrawn in place on a terminal until q,
// Esc or Ctrl-C, printed again and again otherwise until SIGINT or SIGTERM
// (docs/design.md, the live view).
func (a *app) watch(names []string) error {
	if a.json {
		return &usageError{msg: "the live view has no --json; use status --json"}
	}
	// A first call tells a wrong socket or an unknown name at once, with
	// the hints every command gives.
	var c *client.Client
	err := a.withClient(callTimeout, names, func(ctx context.Context, cl *client.Client) error {
		c = cl
		for _, n := range names {
			if _, err := cl.Get(ctx, n); err != nil {
				return err
			}
		}
		_, err := cl.List(ctx)
		return err
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	snaps := make(chan snapshot)
	go poll(ctx, c, names, snaps)
	if f, ok := a.stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return a.watchScreen(ctx, snaps)
	}
	return a.watchPlain(ctx, snaps)
}

// poll asks horust for the services every watchInterval and sends each
// answer on snaps, until ctx ends. It is the view's only caller of horust,
// so a slow answer never holds up a key press.
func poll(ctx context.Context, c *client.Client, names []string, snaps chan<- snapshot) {
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	for {
		callCtx, cancel := context.WithTimeout(ctx, watchCallTimeout)
		list, err := c.List(callCtx)
		cancel()
		if len(names) > 0 {
			list = slices.DeleteFunc(list, func(st status.ServiceStatus) bool { return !slices.Contains(names, st.Name) })
		}
		select {
		case snaps <- snapshot{at: time.Now(), list: list, err: err}:
		case <-ctx.Done():
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// watchPlain prints a table for every snapshot, a blank line between them,
// for a pipe or a file. An error ends it (exit 1), an interrupt does not.
func (a *app) watchPlain(ctx context.Context, snaps <-chan snapshot) error {
	for first := true; ; first = false {
		select {
		case <-ctx.Done():
			return nil
		case s := <-snaps:
			if s.err != nil {
				return &runError{s.err}
			}
			if !first {
				fmt.Fprintln(a.stdout)
			}
			if err := printTable(a.stdout, s.list); err != nil {
				return &runError{err}
			}
		}
	}
}

// watchScreen redraws the table in place on the terminal with tcell, which
// knows the terminal's escape codes, its size and its keys.
func (a *app) watchScreen(ctx context.Context, snaps <-chan snapshot) error {
	screen, err := tcell.NewScreen()
	if err == nil {
		err = screen.Init()
	}
	if err != nil {
		return &runError{fmt.Errorf("terminal: %w", err)}
	}
	defer screen.Fini()
	events := make(chan tcell.Event)
	quit := make(chan struct{})
	defer close(quit)
	go screen.ChannelEvents(events, quit)

	var last snapshot
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-snaps:
			if s.err == nil || last.at.IsZero() {
				last = s
			} else {
				// Keep the last table, say what went wrong above it.
				last.err, last.at = s.err, s.at
			}
		case ev := <-events:
			switch ev := ev.(type) {
			case *tcell.EventKey:
				if ev.Key() == tcell.KeyCtrlC || ev.Key() == tcell.KeyEscape ||
					(ev.Key() == tcell.KeyRune && (ev.Rune() == 'q' || ev.Rune() == 'Q')) {
					return nil
				}
			case *tcell.EventResize:
				screen.Sync()
			}
		}
		drawScreen(screen, last)
	}
}

// drawScreen draws a header line and the table, each line cut at the
// terminal's width (with "…" where it was cut).
func drawScreen(screen tcell.Screen, s snapshot) {
	screen.Clear()
	width, height := screen.Size()
	header := "horustctl: services every " + watchInterval.String() + "; q to quit"
	if !s.at.IsZero() {
		header = s.at.Format("15:04:05") + "  " + header
	}
	lines := []string{header}
	if s.err != nil {
		lines = append(lines, "horust does not answer: "+oneLine(s.err.Error()))
	}
	lines = append(lines, "")
	bold := map[int]bool{0: true, len(lines): true} // the header and the table's head
	var table bytes.Buffer
	if !s.at.IsZero() {
		_ = printTable(&table, s.list)
	}
	lines = append(lines, strings.Split(strings.TrimSuffix(table.String(), "\n"), "\n")...)
	for y, l := range lines[:min(len(lines), height)] {
		screen.PutStrStyled(0, y, cut(l, width), tcell.StyleDefault.Bold(bold[y]))
	}
	screen.Show()
}

// cut shortens s to width runes, its last one "…" when something was cut.
func cut(s string, width int) string {
	if utf8.RuneCountInString(s) <= width || width < 1 {
		return s
	}
	r := []rune(s)
	return string(r[:width-1]) + "…"
}
