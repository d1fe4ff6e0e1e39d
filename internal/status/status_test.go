package status

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestUp(t *testing.T) {
	for s := range NumStates {
		for _, job := range []bool{false, true} {
			want := s == Finished || s == Running && !job
			if got := s.Up(job); got != want {
				t.Errorf("%s.Up(oneshot %t) = %t, want %t", s, job, got, want)
			}
			if got := (ServiceStatus{State: s, Oneshot: job}).Ready(); got != want {
				t.Errorf("Ready of %s (oneshot %t) = %t, want %t", s, job, got, want)
			}
		}
	}
}

func TestNames(t *testing.T) {
	want := []string{"INITIAL", "STARTING", "STARTED", "RUNNING", "INKILLING", "SUCCESS", "FAILED", "FINISHED", "FINISHEDFAILED"}
	if int(NumStates) != len(want) {
		t.Fatalf("%d states, want %d", NumStates, len(want))
	}
	for s := range NumStates {
		if s.API() != want[s] || strings.ToUpper(s.String()) != want[s] {
			t.Errorf("state %d: API %q, String %q; want %q", s, s.API(), s.String(), want[s])
		}
		if p, err := Parse(want[s]); err != nil || p != s {
			t.Errorf("Parse(%q) = %v, %v", want[s], p, err)
		}
	}
	if _, err := Parse("Running"); err == nil {
		t.Error("Parse takes only the API name")
	}
	if NumStates.String() != "State(?)" || NumStates.API() != "STATE(?)" {
		t.Errorf("out of range: %q %q", NumStates.String(), NumStates.API())
	}
}

// The wire format is the original's: the state is a string in capitals.
func TestJSON(t *testing.T) {
	b, err := json.Marshal(ServiceStatus{Name: "a", State: FinishedFailed})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != `{"name":"a","state":"FINISHEDFAILED","restarts":0,"uptime_seconds":0,"health_failures":0}` {
		t.Errorf("marshal: %s", got)
	}
	var st ServiceStatus
	if err := json.Unmarshal([]byte(`{"name":"a","state":"INKILLING","oneshot":true}`), &st); err != nil || st.State != InKilling || !st.Oneshot {
		t.Errorf("unmarshal: %+v, %v", st, err)
	}
	err = json.Unmarshal([]byte(`{"state":"ASLEEP"}`), &st)
	if err == nil || !strings.Contains(err.Error(), `unknown service state "ASLEEP"`) {
		t.Errorf("unknown state: %v", err)
	}
	if _, err := json.Marshal(ServiceStatus{State: NumStates}); err == nil {
		t.Error("a state out of range marshals")
	}
}
