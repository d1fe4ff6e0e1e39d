package control

import (
	"errors"
	"strings"
	"time"
)

// ErrInvalidConfig is what a reload of a configuration with problems
// returns (422); nothing was changed. The error is an *InvalidConfigError.
var ErrInvalidConfig = errors.New("the configuration is invalid; nothing was changed")

// ErrNoConfig is what a reload gets in one-shot mode (409): there is no
// configuration to reload.
var ErrNoConfig = errors.New("there is no configuration to reload")

// InvalidConfigError lists every problem of a configuration that a reload
// refused, each with its file, line and key ("web.toml:3: restart.strategy:
// ...").
type InvalidConfigError struct {
	Problems []string
}

func (e *InvalidConfigError) Error() string {
	return ErrInvalidConfig.Error() + ":\n" + strings.Join(e.Problems, "\n")
}

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *InvalidConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// The changes a reload makes to a service (ServicePlan.Change).
const (
	ChangeAdded     = "added"
	ChangeRemoved   = "removed"
	ChangeChanged   = "changed"
	ChangeUnchanged = "unchanged"
)

// ServicePlan is what a reload does to one service.
type ServicePlan struct {
	Name string `json:"name"`
	// Change is added, removed, changed or unchanged.
	Change string `json:"change"`
	// Keys are the keys whose values changed (for changed).
	Keys []string `json:"keys,omitempty"`
}

// ReloadReply is the body of a successful POST /v1/reload: the plan, and
// whether it was carried out.
type ReloadReply struct {
	// DryRun: the plan was only computed; nothing changed.
	DryRun bool `json:"dry_run"`
	// Generation is the configuration's generation after the reload (1 is
	// the one horust started with; a reload that changes nothing counts too).
	Generation uint64        `json:"generation"`
	Services   []ServicePlan `json:"services"`
	// Global lists the keys of horust.toml that changed.
	Global []string `json:"global,omitempty"`
}

// Changes counts the services the plan adds, removes and changes.
func (r ReloadReply) Changes() (added, removed, changed int) {
	for _, p := range r.Services {
		switch p.Change {
		case ChangeAdded:
			added++
		case ChangeRemoved:
			removed++
		case ChangeChanged:
			changed++
		}
	}
	return added, removed, changed
}

// ConfigStatus is the body of GET /v1/config: which configuration horust
// runs and how its reloads went.
type ConfigStatus struct {
	// Generation counts the configurations applied: 1 at start, one more
	// per successful reload.
	Generation uint64 `json:"generation"`
	// LoadedAt is when the current generation was applied.
	LoadedAt time.Time `json:"loaded_at"`
	// LastReload is the last reload that was not a dry run; nil when
	// there was none.
	LastReload *ReloadResult `json:"last_reload,omitempty"`
	// ReloadsOK and ReloadsInvalid count the reloads applied and refused.
	ReloadsOK      uint64 `json:"reloads_ok"`
	ReloadsInvalid uint64 `json:"reloads_invalid"`
}

// ReloadResult is the outcome of one reload.
type ReloadResult struct {
	At time.Time `json:"at"`
	// Result is "ok" or "invalid".
	Result string `json:"result"`
	// Trigger is what asked for it: "SIGHUP", "control socket", "watch".
	Trigger string `json:"trigger"`
	// Problems are the configuration's problems, when invalid.
	Problems []string `json:"problems,omitempty"`
}
